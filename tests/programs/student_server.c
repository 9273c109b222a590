/* Forking echo servers as students write them, right and wrong, one per mode:
 *
 *   student_server PORT MODE
 *
 *   listen5   correct: a SIGCHLD handler loops waitpid(WNOHANG); listen(fd, 5)
 *   once      one wait() per SIGCHLD: coalesced signals leave zombies behind
 *   ignore    SIGCHLD set to SIG_IGN: the kernel reaps, no zombie is ever made
 *   linger    never waits; each handler closes, then lingers 2 s before it exits
 *   noclose   reaps correctly, but the parent never closes its copy of connfd
 *   swapped   forgets htons(): listens on PORT with its two bytes swapped
 *   exit      bind() fails on purpose: prints why on stderr, exits 1 before listening
 *   daemon    forks into the background (the parent exits 0), the child serves
 *
 * Handlers echo until the client closes, as the lab's handlers do.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void reap_all(int sig) {
    int saved = errno;
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    errno = saved;
}

static void reap_one(int sig) {
    int saved = errno;
    (void)sig;
    wait(NULL);
    errno = saved;
}

static void serve(int conn, int linger) {
    char buf[4096];
    ssize_t n;
    while ((n = read(conn, buf, sizeof buf)) > 0) {
        if (write(conn, buf, (size_t)n) != n) break;
    }
    close(conn);
    if (linger) sleep(2);
    _exit(0);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s PORT MODE\n", argv[0]);
        return 2;
    }
    const char *mode = argv[2];
    unsigned short port = (unsigned short)atoi(argv[1]);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_flags = SA_RESTART;
    sa.sa_handler = SIG_DFL;
    if (!strcmp(mode, "listen5") || !strcmp(mode, "noclose") || !strcmp(mode, "daemon"))
        sa.sa_handler = reap_all;
    else if (!strcmp(mode, "once"))
        sa.sa_handler = reap_one;
    else if (!strcmp(mode, "ignore"))
        sa.sa_handler = SIG_IGN;
    sigaction(SIGCHLD, &sa, NULL);

    if (!strcmp(mode, "daemon")) {
        pid_t pid = fork();
        if (pid < 0) return 1;
        if (pid > 0) return 0; /* the shell gets its prompt back */
        setsid();
    }
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = !strcmp(mode, "swapped") ? port : htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (!strcmp(mode, "exit")) addr.sin_family = AF_UNIX; /* a wrong family: bind fails */
    if (bind(s, (struct sockaddr *)&addr, sizeof addr) < 0) {
        perror("bind");
        return 1;
    }
    if (listen(s, !strcmp(mode, "listen5") ? 5 : 128) < 0) {
        perror("listen");
        return 1;
    }
    for (;;) {
        int conn = accept(s, NULL, NULL);
        if (conn < 0) {
            if (errno == EINTR) continue;
            perror("accept");
            return 1;
        }
        pid_t pid = fork();
        if (pid == 0) {
            close(s);
            serve(conn, !strcmp(mode, "linger"));
        }
        if (strcmp(mode, "noclose") != 0) close(conn);
    }
}
