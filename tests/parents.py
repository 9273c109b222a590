"""Real parent processes for `reap`'s tests, written in Python and in C.

Each parent forks N children that exit at once, waits (polling /proc) until all of them
are zombies, only then installs its behaviour, prints "ready PID..." and waits for
signals. Installing the SIGCHLD handler after the children died means the handler runs
only when someone sends SIGCHLD: exactly what `reap` does.

Behaviours:
  all     a SIGCHLD handler that loops waitpid(-1, WNOHANG): the correct fix
  one     a handler that reaps ONE child per signal (signals coalesce: the common bug)
  never   no handler: SIGCHLD is ignored by default, nothing is ever reaped
  noterm  never reaps, and ignores SIGTERM
  exit    exits (without reaping) when SIGCHLD arrives: a parent that ends mid-run
  record  blocks the catchable signals and logs every one it receives, with si_code
          and the sender's pid, to a file; runs an optional command (with {pid} and
          {zombie} filled in) and waits for that command only
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from proctools import reap_adopted, wait_until, zombie_children

PY_PARENT = r"""
import os, signal, subprocess, sys, threading, time
mode, n = sys.argv[1], int(sys.argv[2])
log_path, uid = sys.argv[3], int(sys.argv[4])
cmd = sys.argv[5:]
log = open(log_path, "a", buffering=1) if log_path != "-" else None
if uid >= 0:
    os.setgid(uid)
    os.setuid(uid)
RECORDED = [signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGINT,
            signal.SIGUSR1, signal.SIGUSR2, signal.SIGQUIT]
if mode == "record":
    signal.pthread_sigmask(signal.SIG_BLOCK, RECORDED)
pids = []
for _ in range(n):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    pids.append(pid)

def state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]

while any(state(p) != "Z" for p in pids):
    time.sleep(0.005)

def reap_one(signum, frame):
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        pass

def reap_all(signum, frame):
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return

if mode == "one":
    signal.signal(signal.SIGCHLD, reap_one)
elif mode == "all":
    signal.signal(signal.SIGCHLD, reap_all)
elif mode == "noterm":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
elif mode == "exit":
    signal.signal(signal.SIGCHLD, lambda s, f: os._exit(0))
print("ready", *pids, flush=True)
if mode == "record":
    if cmd:
        args = [a.replace("{pid}", str(os.getpid())).replace("{zombie}", str(pids[0])) for a in cmd]
        def run():
            res = subprocess.run(args)  # waits for this pid only: the zombies stay
            print("rc", res.returncode, flush=True)
        threading.Thread(target=run, daemon=True).start()
    while True:
        info = signal.sigwaitinfo(RECORDED)
        log.write(f"{info.si_signo} {info.si_code} {info.si_pid}\n")
while True:
    time.sleep(3600)
"""

C_PARENT = r"""
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void reap_one(int sig) { (void)sig; waitpid(-1, NULL, WNOHANG); }
static void reap_all(int sig) { (void)sig; while (waitpid(-1, NULL, WNOHANG) > 0) {} }

static int is_zombie(pid_t pid) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = 0;
    char *end = strrchr(buf, ')');
    return end && end[1] == ' ' && end[2] == 'Z';
}

int main(int argc, char **argv) {
    const char *mode = argv[1];
    int n = atoi(argv[2]);
    pid_t *pids = calloc(n, sizeof *pids);
    for (int i = 0; i < n; i++) {
        pids[i] = fork();
        if (pids[i] == 0) _exit(0);
    }
    for (int i = 0; i < n; i++)
        while (!is_zombie(pids[i])) usleep(2000);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (!strcmp(mode, "one")) { sa.sa_handler = reap_one; sigaction(SIGCHLD, &sa, NULL); }
    if (!strcmp(mode, "all")) { sa.sa_handler = reap_all; sigaction(SIGCHLD, &sa, NULL); }
    if (!strcmp(mode, "noterm")) signal(SIGTERM, SIG_IGN);
    printf("ready");
    for (int i = 0; i < n; i++) printf(" %d", (int)pids[i]);
    printf("\n");
    fflush(stdout);
    for (;;) pause();
}
"""

SI_USER = 0  # si_code of a signal sent by kill(2) or pidfd_send_signal(2)


@dataclass
class Parent:
    """A running test parent: its pid, its zombies, and (record mode) its signal log."""

    proc: subprocess.Popen[str]
    zombie_pids: list[int]
    log: Path | None = None
    lines: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def user_signals(self) -> list[tuple[int, int]]:
        """(signal, sender pid) of every signal a process sent it (not the kernel's SIGCHLDs)."""
        if self.log is None or not self.log.exists():
            return []
        out = []
        for line in self.log.read_text().splitlines():
            signo, code, sender = (int(x) for x in line.split())
            if code == SI_USER:
                out.append((signo, sender))
        return out

    def read_line(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        self.lines.append(line)
        return line

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        # Zombies of a parent that died first were adopted by the test session.
        reap_adopted(pids=self.zombie_pids)


def start_parent(
    mode: str,
    n: int,
    *,
    exe: Path | None = None,
    log: Path | None = None,
    uid: int = -1,
    cmd: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> Parent:
    """Start a Python parent (or the compiled C one, given exe) and wait for its zombies."""
    if exe is not None:
        argv = [str(exe), mode, str(n)]
    else:
        argv = [sys.executable, "-c", PY_PARENT, mode, str(n), str(log or "-"), str(uid)]
        argv += cmd or []
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True, env=env
    )
    parent = Parent(proc, [], log)
    try:
        words = parent.read_line().split()
        if not words or words[0] != "ready":
            raise RuntimeError(f"test parent {mode} did not start: {words}")
        parent.zombie_pids = sorted(int(w) for w in words[1:])
        if not wait_until(lambda: len(zombie_children(proc.pid)) == n, 30):
            raise RuntimeError(f"{n} zombies did not appear under {proc.pid}")
    except BaseException:
        parent.close()
        raise
    return parent


def compile_c_parent(tmp: Path) -> Path:
    src = tmp / "parent.c"
    src.write_text(C_PARENT)
    exe = tmp / "parent"
    subprocess.run(["gcc", "-O2", "-o", str(exe), str(src)], check=True, capture_output=True)
    return exe


def reap_by_pid(pids: list[int]) -> list[int]:
    """Reap those of pids that are zombie children of this session now (WNOHANG)."""
    reaped = []
    for pid in pids:
        try:
            got, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            continue
        if got == pid:
            reaped.append(pid)
    return reaped


def kill_quietly(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
