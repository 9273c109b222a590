/*
 * fork_no_wait: the seed's C program. fork() in a loop; the parent never calls wait(),
 * so every child that exits stays a zombie (state Z, "<defunct>" in ps) until the
 * parent itself exits.
 *
 *   usage: fork_no_wait COUNT [INTERVAL [LIFETIME]]
 *     COUNT     children to fork (1..10000)
 *     INTERVAL  seconds between two forks (default 1; the seed slept 3)
 *     LIFETIME  seconds each child lives before exit() (default 0.2; the seed slept 1)
 *
 *   $ ./bin/fork_no_wait 3 0.5 &
 *   $ ps -o pid,ppid,stat,comm --ppid $!
 *       PID    PPID STAT COMMAND
 *     41003   41002 Z    fork_no_wait <defunct>
 *     ...
 *
 * After its last fork the parent sleeps until it is killed (Ctrl-C): then init, or the
 * nearest subreaper, adopts the zombies and reaps them.
 *
 * When ZOMBIECTL_REPORT_FD is set (zombiectl demo c), it writes one JSON line per event
 * to that descriptor, and waits (without reaping: waitid with WNOWAIT) until every child
 * has exited before it reports "settled", so zombiectl's count is final.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

static int report_fd = -1;

static void report(const char *line)
{
    if (report_fd >= 0 && write(report_fd, line, strlen(line)) < 0)
        _exit(1); /* zombiectl is gone */
}

static void sleep_seconds(double seconds)
{
    struct timespec ts;
    if (seconds <= 0)
        return;
    ts.tv_sec = (time_t)seconds;
    ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static double parse_seconds(const char *text, const char *what)
{
    char *end;
    double value = strtod(text, &end);
    if (*text == '\0' || *end != '\0' || value < 0 || value > 86400) {
        fprintf(stderr, "fork_no_wait: %s must be seconds from 0 to 86400, not '%s'\n", what, text);
        exit(2);
    }
    return value;
}

int main(int argc, char **argv)
{
    long count, i;
    double interval = 1.0, lifetime = 0.2;
    pid_t parent = getpid();
    pid_t *pids;
    const char *fd_text = getenv("ZOMBIECTL_REPORT_FD");
    char *end;

#ifdef __linux__
    /* Run from a descriptor (zombiectl executes the file it checked), the kernel would
     * name this process after the descriptor's number: take the program's own name. */
    prctl(PR_SET_NAME, "fork_no_wait");
#endif
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: fork_no_wait COUNT [INTERVAL [LIFETIME]]\n");
        return 2;
    }
    count = strtol(argv[1], &end, 10);
    if (*argv[1] == '\0' || *end != '\0' || count < 1 || count > 10000) {
        fprintf(stderr, "fork_no_wait: COUNT must be a whole number from 1 to 10000, not '%s'\n",
                argv[1]);
        return 2;
    }
    if (argc > 2)
        interval = parse_seconds(argv[2], "INTERVAL");
    if (argc > 3)
        lifetime = parse_seconds(argv[3], "LIFETIME");
    if (fd_text != NULL)
        report_fd = atoi(fd_text);
    pids = calloc((size_t)count, sizeof *pids);
    if (pids == NULL) {
        perror("fork_no_wait: calloc");
        return 1;
    }
    printf("parent %d: forking %ld children, never calling wait()\n", (int)parent, count);
    fflush(stdout);

    for (i = 0; i < count; i++) {
        pid_t pid;
        if (i > 0)
            sleep_seconds(interval);
        pid = fork();
        if (pid < 0) {
            int err = errno;
            fprintf(stderr, "fork_no_wait: fork failed after %ld children: %s\n", i, strerror(err));
            if (report_fd >= 0) {
                char line[256];
                int n = snprintf(line, sizeof line,
                                 "{\"event\": \"error\", \"kind\": \"fork\", \"message\": "
                                 "\"fork: %s\", \"started\": %ld}\n",
                                 strerror(err), i);
                if (n > 0)
                    report(line);
            }
            return 1;
        }
        if (pid == 0) {
#ifdef __linux__
            /* Die with the parent, so that no child outlives the demo. */
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent)
                _exit(1);
#endif
            printf("I am a child process, pid %d\n", (int)getpid());
            fflush(stdout);
            sleep_seconds(lifetime);
            _exit(1); /* the seed's exit(1) */
        }
        pids[i] = pid;
        if (report_fd >= 0) {
            char line[64];
            snprintf(line, sizeof line, "{\"event\": \"started\", \"pid\": %ld}\n", (long)pid);
            report(line);
        }
    }
    report("{\"event\": \"done\"}\n");

    if (report_fd >= 0) {
        /* Observe each exit without collecting it: WNOWAIT leaves the zombie in place. */
        for (i = 0; i < count; i++) {
            siginfo_t info;
            while (waitid(P_PID, (id_t)pids[i], &info, WEXITED | WNOWAIT) < 0 && errno == EINTR)
                ;
        }
        report("{\"event\": \"settled\"}\n");
    }
    for (;;)
        pause(); /* the parent lives on, never waiting: the zombies stay */
}
