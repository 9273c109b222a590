/*
 * echo_server.c - the forking echo server of the classic network-programming lab.
 *
 * One process per connection: socket, bind, listen, then an accept loop that forks a
 * handler for each client; the handler echoes until the client closes, then _exit(0).
 * What happens to a finished handler depends on the reap mode:
 *
 *   none         the server never waits: every finished handler stays a zombie
 *   sigchld      a SIGCHLD handler loops waitpid(-1, WNOHANG); accept() then fails
 *                with EINTR (no SA_RESTART) and the loop calls it again
 *   wait-once    a SIGCHLD handler calls wait() once: SIGCHLDs that arrive together
 *                merge into one, so one handler is reaped for a whole burst of exits
 *   ignore       SIGCHLD set to SIG_IGN: the kernel reaps, no zombie is ever made
 *   double-fork  the handler forks again and exits; the grandchild serves and is
 *                reaped by init (or the nearest subreaper)
 *
 * Usage: echo_server none|sigchld|wait-once|ignore|double-fork PORT
 *                    [HOST [MAX_CHILDREN [TIMEOUT_S [MAX_ZOMBIES [BATCH [BATCH_IDLE_S]]]]]]
 *   PORT 0 picks a free port; the first line on stdout says which:
 *   $ ./echo_server none 0
 *   echo server 4242 listening on 127.0.0.1 port 40321
 *
 * Safety rails a classroom version would not have: at most MAX_CHILDREN (default 64)
 * handlers at once (beyond that a connection is closed instead of forked); in mode none,
 * at most MAX_ZOMBIES (default 256; 0: no cap) handlers ever forked, since none is ever
 * reaped (beyond that every new connection is closed, and the server says so once); and
 * a handler whose client sends nothing for TIMEOUT_S seconds (default 30) gives up. With
 * ZOMBIECTL_PARENT_PID set, the server and its handlers die with their parent.
 * Port in use: one line on stderr, exit 2.
 *
 * In mode wait-once the rails make the merge of signals happen every time rather than
 * by luck: SIGCHLD stays blocked while a batch of handlers runs (BATCH forks, default 8,
 * or fewer when no client has come for BATCH_IDLE_S seconds, default 0.5), and is
 * unblocked once every handler of the batch has exited. The kernel keeps one pending
 * SIGCHLD however many children exited, so the handler runs once per batch.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

enum reap { REAP_NONE, REAP_SIGCHLD, REAP_WAIT_ONCE, REAP_IGNORE, REAP_DOUBLE_FORK };

static int slots[2];      /* a pipe holding one byte per free handler slot */
static int report_fd = -1; /* ZOMBIECTL_REPORT_FD: each fork is reported there */
static int max_zombies;    /* mode none: handlers the server may ever fork; 0: no cap */
static int held;           /* mode none: handlers forked so far, none of them reaped */
static pid_t *batch;       /* mode wait-once: the handlers of the current batch */
static int batch_size, batch_len;
static double batch_idle = 0.5;

/* the safety rails, below the lab */
static int admit(void);
static void handler_forked(pid_t pid);
static void give_slot(void);
static void handler_started(pid_t server, enum reap reap);
static void merge_start(void);

/* ------------------------------------------------------------------ the lab */

static void reap_children(int sig)
{
    int saved = errno; /* waitpid may change errno under the interrupted code */
    (void)sig;
    /* Signals coalesce: one SIGCHLD may stand for many exits, so reap until none is left. */
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    errno = saved;
}

static void reap_one(int sig)
{
    int saved = errno;
    (void)sig;
    wait(NULL);
    errno = saved;
}

static void handle(int conn, double timeout_s)
{
    struct timeval tv = {.tv_sec = (time_t)timeout_s,
                         .tv_usec = (suseconds_t)((timeout_s - (time_t)timeout_s) * 1e6)};
    char buf[4096];
    ssize_t n;

    setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv); /* a silent client is dropped */
    while ((n = read(conn, buf, sizeof buf)) > 0) {
        ssize_t off = 0;
        while (off < n) {
            ssize_t w = write(conn, buf + off, (size_t)(n - off));
            if (w < 0)
                return;
            off += w;
        }
    }
}

static void serve(int srv, enum reap reap, double timeout_s)
{
    if (reap == REAP_SIGCHLD || reap == REAP_WAIT_ONCE) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = reap == REAP_SIGCHLD ? reap_children : reap_one;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = 0; /* no SA_RESTART: accept() returns EINTR, see below */
        sigaction(SIGCHLD, &sa, NULL);
        if (reap == REAP_WAIT_ONCE)
            merge_start();
    } else if (reap == REAP_IGNORE) {
        signal(SIGCHLD, SIG_IGN);
    }
    pid_t server = getpid();
    for (;;) {
        int conn = accept(srv, NULL, NULL);
        if (conn < 0) {
            if (errno == EINTR) /* reap_children ran: accept again */
                continue;
            perror("echo server: accept");
            continue;
        }
        if (!admit()) { /* too many handlers, or zombies: refuse, do not fork */
            close(conn);
            continue;
        }
        pid_t pid = fork();
        if (pid < 0) {
            perror("echo server: fork");
            give_slot();
            close(conn);
            continue;
        }
        if (pid == 0) { /* the handler */
            close(srv);
            if (reap == REAP_DOUBLE_FORK && fork() != 0)
                _exit(0); /* the middle child exits at once; its child serves */
            handler_started(server, reap);
            handle(conn, timeout_s);
            give_slot();
            close(conn);
            _exit(0);
        }
        handler_forked(pid);
        close(conn); /* the handler has its own copy */
        if (reap == REAP_DOUBLE_FORK)
            while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
    }
}

/* ------------------------------------------------------------------ safety rails */

static int take_slot(void)
{
    char c;
    return read(slots[0], &c, 1) == 1;
}

static void give_slot(void)
{
    char c = '.';
    while (write(slots[1], &c, 1) < 0 && errno == EINTR)
        ;
}

static void report(const char *line)
{
    if (report_fd >= 0 && write(report_fd, line, strlen(line)) < 0)
        report_fd = -1; /* zombiectl is gone; the parent-death signal ends us */
}

/* Mode wait-once: wait until every handler of the batch has exited (WNOWAIT: they stay
 * zombies), then let the one pending SIGCHLD through, and block it again. */
static void merge_release(void)
{
    struct itimerval off;
    siginfo_t info;
    sigset_t chld;

    memset(&off, 0, sizeof off);
    setitimer(ITIMER_REAL, &off, NULL);
    for (int i = 0; i < batch_len; i++)
        while (waitid(P_PID, (id_t)batch[i], &info, WEXITED | WNOWAIT) < 0 && errno == EINTR)
            ;
    batch_len = 0;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_UNBLOCK, &chld, NULL); /* the lab's handler runs here, once */
    sigprocmask(SIG_BLOCK, &chld, NULL);
}

static void on_batch_idle(int sig)
{
    int saved = errno;
    (void)sig;
    merge_release();
    errno = saved;
}

static void merge_start(void)
{
    struct sigaction sa;
    sigset_t chld;

    batch = calloc((size_t)batch_size, sizeof *batch);
    if (!batch) {
        perror("echo server: calloc");
        exit(1);
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_batch_idle; /* no SA_RESTART: accept() sees EINTR and loops */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
}

static void merge_forked(pid_t pid)
{
    sigset_t alrm, old;
    struct itimerval idle;

    sigemptyset(&alrm);
    sigaddset(&alrm, SIGALRM);
    sigprocmask(SIG_BLOCK, &alrm, &old); /* the batch is not released half-updated */
    batch[batch_len++] = pid;
    if (batch_len >= batch_size) {
        merge_release();
    } else {
        memset(&idle, 0, sizeof idle);
        idle.it_value.tv_sec = (time_t)batch_idle;
        idle.it_value.tv_usec = (suseconds_t)((batch_idle - (time_t)batch_idle) * 1e6);
        setitimer(ITIMER_REAL, &idle, NULL);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
}

static void handler_forked(pid_t pid)
{
    char line[64];
    snprintf(line, sizeof line, "{\"event\": \"started\", \"pid\": %d}\n", (int)pid);
    report(line);
    if (max_zombies)
        held++;
    if (batch)
        merge_forked(pid);
}

/* One line for the user: a note in zombiectl's view, or on stderr when run alone. */
static void say_full(void)
{
    char text[160], line[256];
    snprintf(text, sizeof text,
             "echo server: %d handlers forked and never reaped, each a zombie once it exits "
             "(--max-zombies): closing new connections",
             held);
    if (report_fd >= 0) {
        snprintf(line, sizeof line, "{\"event\": \"note\", \"text\": \"%s\"}\n", text);
        report(line);
        if (report_fd >= 0)
            return;
    }
    fprintf(stderr, "%s\n", text);
}

static int admit(void)
{
    static int said_full;
    if (max_zombies && held >= max_zombies) {
        if (!said_full) { /* once, not once per connection */
            said_full = 1;
            say_full();
        }
        return 0;
    }
    return take_slot();
}

static void die_with_parent(pid_t expected_parent)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != expected_parent)
        _exit(1);
}

static void handler_started(pid_t server, enum reap reap)
{
    prctl(PR_SET_NAME, "echo-handler");
    /* A double fork's grandchild is not the server's child: zombiectl kills the server's
     * whole process group instead. */
    if (reap != REAP_DOUBLE_FORK && getenv("ZOMBIECTL_PARENT_PID"))
        die_with_parent(server);
}

static int usage(void)
{
    fprintf(stderr, "usage: echo_server none|sigchld|wait-once|ignore|double-fork PORT "
                    "[HOST [MAX_CHILDREN [TIMEOUT_S [MAX_ZOMBIES [BATCH [BATCH_IDLE_S]]]]]]\n");
    return 2;
}

int main(int argc, char **argv)
{
    static const char *modes[] = {"none", "sigchld", "wait-once", "ignore", "double-fork"};
    enum reap reap = REAP_NONE;
    const char *host = "127.0.0.1";
    int found = 0, port, max_children = 64;
    double timeout_s = 30;
    char *end;

    if (argc < 3 || argc > 9)
        return usage();
    for (int i = 0; i < 5; i++)
        if (strcmp(argv[1], modes[i]) == 0) {
            reap = (enum reap)i;
            found = 1;
        }
    port = (int)strtol(argv[2], &end, 10);
    if (!found || *end || port < 0 || port > 65535)
        return usage();
    if (argc > 3)
        host = argv[3];
    if (argc > 4 && (max_children = atoi(argv[4])) < 1)
        return usage();
    if (argc > 5 && ((timeout_s = strtod(argv[5], &end)) < 0.001 || *end))
        return usage();
    max_zombies = 256;
    if (argc > 6 && ((max_zombies = (int)strtol(argv[6], &end, 10)) < 0 || *end || !*argv[6]))
        return usage();
    batch_size = 8;
    if (argc > 7 && ((batch_size = (int)strtol(argv[7], &end, 10)) < 1 || batch_size > 100000 || *end))
        return usage();
    if (argc > 8 && ((batch_idle = strtod(argv[8], &end)) < 0.01 || batch_idle > 3600 || *end))
        return usage();
    if (reap != REAP_NONE && reap != REAP_WAIT_ONCE)
        max_zombies = 0; /* only modes none and wait-once hold their handlers */

    const char *report = getenv("ZOMBIECTL_REPORT_FD");
    if (report)
        report_fd = atoi(report);
    const char *parent = getenv("ZOMBIECTL_PARENT_PID");
    if (parent)
        die_with_parent((pid_t)atoi(parent));
    prctl(PR_SET_NAME, "echo-server");

    if (pipe(slots) < 0 || fcntl(slots[0], F_SETFL, O_NONBLOCK) < 0) {
        perror("echo server: pipe");
        return 1;
    }
    for (int i = 0; i < max_children; i++)
        give_slot();

    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        fprintf(stderr, "echo server: %s is not an IPv4 address\n", host);
        return 2;
    }
    int srv = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(srv, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(srv, (struct sockaddr *)&addr, sizeof addr) < 0) {
        if (errno == EADDRINUSE)
            fprintf(stderr, "echo server: %s port %d is in use\n", host, port);
        else
            fprintf(stderr, "echo server: %s port %d cannot be bound: %s\n", host, port,
                    strerror(errno));
        return 2;
    }
    if (listen(srv, 128) < 0) {
        perror("echo server: listen");
        return 1;
    }
    socklen_t len = sizeof addr;
    getsockname(srv, (struct sockaddr *)&addr, &len);
    printf("echo server %d listening on %s port %d\n", (int)getpid(), host, ntohs(addr.sin_port));
    fflush(stdout);
    serve(srv, reap, timeout_s);
    return 0;
}
