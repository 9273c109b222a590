/* A forking TCP echo server as a student writes it: one child per connection.
 *
 *   forking_echo PORT leak     the parent never waits: every handler stays a zombie
 *   forking_echo PORT fixed    a SIGCHLD handler reaps every finished child
 *   forking_echo PORT once     a SIGCHLD handler calls wait() once per signal: signals
 *                              coalesce, so some handlers stay zombies for a while
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

static void serve(int conn) {
    char buf[4096];
    ssize_t n;
    while ((n = read(conn, buf, sizeof buf)) > 0) {
        if (write(conn, buf, (size_t)n) != n) break;
    }
    close(conn);
    _exit(0);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s PORT leak|fixed|once\n", argv[0]);
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_flags = SA_RESTART;
    if (strcmp(argv[2], "fixed") == 0) sa.sa_handler = reap_all;
    else if (strcmp(argv[2], "once") == 0) sa.sa_handler = reap_one;
    else sa.sa_handler = SIG_DFL;
    sigaction(SIGCHLD, &sa, NULL);

    int s = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)atoi(argv[1]));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(s, 128) < 0) {
        perror("bind/listen");
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
            serve(conn);
        }
        close(conn);
    }
}
