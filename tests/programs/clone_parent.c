/* clone_parent: CMD makes a sibling with clone(CLONE_PARENT), so the sibling's parent is
 * CMD's parent (the checker), not CMD. The sibling forks five children that exit at once
 * and holds them as zombies for 3 s without reaping, then exits; CMD exits after 4 s. */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

static char stack[256 * 1024];

static int sibling(void *arg) {
    (void)arg;
    for (int i = 0; i < 5; i++) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(0);
        if (pid < 0)
            return 1;
    }
    sleep(3);
    return 0;
}

int main(void) {
    if (clone(sibling, stack + sizeof stack, CLONE_PARENT | SIGCHLD, NULL) < 0)
        return 1;
    sleep(4);
    return 0;
}
