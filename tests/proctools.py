"""Real processes for tests, in one place: zombie parents of every kind, synchronisation,
clean-up, namespaces and cgroups.

Modelled on psutil's test helpers (psutil/tests/__init__.py): a zombie is made for real
and synchronised on its state in /proc (never a bare sleep); every pid a helper starts
is registered where it is made, so `terminate_registered()` can end it at the end of the
session whatever happened; `terminate()` ends descendants before parents and reaps them;
every wait defaults to one `GLOBAL_TIMEOUT`.

The test session is a child subreaper (zombiectl's pytest plugin): a process orphaned by
a test is adopted by the session, not by PID 1, so nothing a test starts can escape the
leak guard.

Parents of each kind:
  ZombieParent(n, alive=m)   Python parent with n zombie and m live children; close()
                             lets it reap them and exit (the graceful path)
  start_parent(mode, n)      Python parent with n zombies and a signal behaviour:
    all     a SIGCHLD handler that loops waitpid(-1, WNOHANG): the correct fix
    one     a handler that reaps ONE child per signal (signals coalesce: the common bug)
    never   no handler: SIGCHLD is ignored by default, nothing is ever reaped
    noterm  never reaps, and ignores SIGTERM
    exit    exits (without reaping) when SIGCHLD arrives: a parent that ends mid-run
    record  blocks the catchable signals and logs every one it receives, with si_code
            and the sender's pid, to a file; runs an optional command (with {pid} and
            {zombie} filled in) and waits for that command only
  start_parent(mode, n, exe=compile_c_parent(tmp))   the same in C (all, one, never, noterm)
  StatesParent(*kinds)       one child per kind: zombie (Z), stopped (T, SIGSTOP),
                             traced (t, PTRACE_TRACEME), sleeping (S)
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import psutil

from zombiectl import errors
from zombiectl.proc.table import children_of, descendants_of, read_proc

# ===================================================================
# --- constants
# ===================================================================

# Every wait in the tests: long enough for a loaded 2-core host, short enough that a
# hang fails the test instead of the whole run. ZOMBIECTL_TEST_TIMEOUT overrides it.
GLOBAL_TIMEOUT = float(os.environ.get("ZOMBIECTL_TEST_TIMEOUT", "60"))
# How long a process gets between SIGTERM and SIGKILL in terminate().
TERM_GRACE = GLOBAL_TIMEOUT / 20

PYTHON_EXE = sys.executable
SI_USER = 0  # si_code of a signal sent by kill(2) or pidfd_send_signal(2)

# Every pid a helper started, so a test that dies half-way still has them ended.
_pids_started: set[int] = set()


def register(pid: int) -> int:
    """Remember pid for terminate_registered(); returns it."""
    _pids_started.add(pid)
    return pid


# ===================================================================
# --- sync primitives
# ===================================================================


def wait_until(
    cond: Callable[[], bool], timeout: float = GLOBAL_TIMEOUT, interval: float = 0.01
) -> bool:
    """Poll cond until it holds or timeout passes; return whether it held."""
    deadline = time.monotonic() + timeout
    while True:
        if cond():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def read_line(stream: IO[str], timeout: float = GLOBAL_TIMEOUT) -> str:
    """One line from a subprocess's pipe, or TimeoutError once timeout passes.

    A bare readline() on a process that hangs (a broken live `watch`) hangs the test
    run; this one fails the test instead. The stream must be line-buffered text read
    only through this function, so that no line waits in Python's buffer unseen.
    """
    deadline = time.monotonic() + timeout
    fd = stream.fileno()
    got = bytearray()
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise TimeoutError(f"no line within {timeout:g} s; read so far: {bytes(got)!r}")
        byte = os.read(fd, 1)
        got += byte
        if not byte or byte == b"\n":
            return got.decode("utf-8", "replace")


def read_until(
    stream: IO[str], cond: Callable[[str], bool], timeout: float = GLOBAL_TIMEOUT
) -> list[str]:
    """Lines from stream until one satisfies cond (returned last); TimeoutError after timeout."""
    deadline = time.monotonic() + timeout
    lines: list[str] = []
    while True:
        line = read_line(stream, max(deadline - time.monotonic(), 0))
        if not line:
            raise EOFError(f"stream ended before the expected line; got {lines!r}")
        lines.append(line)
        if cond(line):
            return lines


def into_closed_pipe(args: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run `zombiectl ARGS` with a stdout whose reader has left already (`| head -0`):
    (exit code, stderr)."""
    r, w = os.pipe()
    os.close(r)
    try:
        res = subprocess.run(
            [sys.executable, "-m", "zombiectl", *args],
            stdout=w,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            timeout=GLOBAL_TIMEOUT,
        )
    finally:
        os.close(w)
    return res.returncode, res.stderr


# ===================================================================
# --- the process table, as the tests see it
# ===================================================================


def zombie_children(pid: int) -> list[int]:
    return [p.pid for p in children_of(pid) if p.is_zombie]


def proc_exists(pid: int) -> bool:
    return read_proc(pid) is not None


def proc_state(pid: int) -> str | None:
    """The one-letter state of pid from /proc/PID/stat, read here without zombiectl."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    return chr(raw[raw.rfind(b")") + 2])


CLK_TCK = os.sysconf("SC_CLK_TCK")


def uptime() -> float:
    """Seconds since boot from /proc/uptime (centisecond precision), read here."""
    with open("/proc/uptime") as f:
        return float(f.read().split()[0])


def start_ticks(pid: int) -> int:
    """Field 22 of /proc/PID/stat (clock ticks after boot), parsed here without zombiectl."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        raw = f.read()
    # Fields after the name start at field 3 (state): field 22 is the 20th of them.
    return int(raw[raw.rfind(b")") + 1 :].split()[19])


def age_of(pid: int) -> float:
    """Seconds since pid started: /proc/uptime minus its start ticks / SC_CLK_TCK.

    Not psutil's create_time(): psutil adds the ticks to `btime` of /proc/stat, which is
    whole seconds, so it is off by up to a second from the real start."""
    return uptime() - start_ticks(pid) / CLK_TCK


def real_start_time(pid: int) -> float:
    """pid's start on the system clock, from /proc/uptime (not the whole-second btime)."""
    return time.time() - age_of(pid)


def host_zombie_parents() -> set[int]:
    """Every pid that holds a zombie child now, read from /proc without zombiectl."""
    parents = set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    raw = f.read()
            except OSError:
                continue
            rest = raw[raw.rfind(b")") + 2 :].split(maxsplit=2)
            if rest[0] == b"Z":
                parents.add(int(rest[1]))
    return parents


def roomy_top() -> int:
    """A --top that lists every zombie parent on this host, whatever else runs on it."""
    return 2 * len(host_zombie_parents()) + 100


def in_top(counts: dict[int, float], pid: int, zombies: int, top: int) -> bool:
    """Whether a top-`top` list of zombie counts by parent is right about pid.

    Right means: it lists pid with exactly `zombies`, or it leaves pid out only because
    it is full of parents that hold at least as many (what a busy host does).
    """
    if pid in counts:
        return counts[pid] == zombies
    return len(counts) == top and min(counts.values()) >= zombies


def leftover_descendants() -> list:
    return descendants_of(os.getpid())


def describe(procs: Iterable) -> str:
    return ", ".join(f"{p.pid} ({p.name}, {p.state}, ppid {p.ppid})" for p in procs)


def signals_held(pid: int, sig: int = signal.SIGTERM) -> bool:
    """True once pid blocks sig, or sleeps in sigtimedwait (as tini and zombiectl run do).

    Inside sigtimedwait the kernel unblocks the awaited signals, so SigBlk alone would
    miss an init that is already waiting.
    """
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("SigBlk:") and int(line.split()[1], 16) & (1 << (sig - 1)):
                    return True
        with open(f"/proc/{pid}/wchan") as f:
            return "sigtimedwait" in f.read()
    except OSError:
        return False


# ===================================================================
# --- zombie parents
# ===================================================================

# The parent forks N children that exit at once, reports "ready", then blocks on stdin.
# On EOF it reaps every child and exits 0: the graceful clean-up path.
_ZOMBIE_PARENT = r"""
import os, sys
n = int(sys.argv[1])
alive = int(sys.argv[2])
r, w = os.pipe()
pids = []
for i in range(n + alive):
    pid = os.fork()
    if pid == 0:
        if i >= n:          # a live child: waits until the parent closes the pipe
            os.close(w)
            os.read(r, 1)
        os._exit(0)
    pids.append(pid)
os.close(r)
sys.stdout.write(" ".join(map(str, pids)) + "\n")
sys.stdout.flush()
sys.stdin.read()
os.close(w)
for pid in pids:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
"""


class ZombieParent:
    """A real parent process with `zombies` zombie children and `alive` live ones."""

    def __init__(self, zombies: int, alive: int = 0) -> None:
        self.proc = subprocess.Popen(
            [PYTHON_EXE, "-c", _ZOMBIE_PARENT, str(zombies), str(alive)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.pid = register(self.proc.pid)
        self.zombie_pids: list[int] = []
        self.alive_pids: list[int] = []
        try:
            assert self.proc.stdout is not None
            line = read_line(self.proc.stdout)
            pids = [register(int(x)) for x in line.split()]
            if len(pids) != zombies + alive:
                raise RuntimeError(f"zombie parent failed to start: {line!r}")
            self.zombie_pids = sorted(pids[:zombies])
            self.alive_pids = sorted(pids[zombies:])
            if not wait_until(lambda: len(zombie_children(self.pid)) == zombies):
                raise RuntimeError(f"{zombies} zombies did not appear under {self.pid}")
        except BaseException:
            self.kill()
            raise

    def close(self) -> None:
        """Let the parent reap its children and exit; kill it if it does not."""
        if self.proc.poll() is None:
            try:
                if self.proc.stdin:
                    self.proc.stdin.close()
                self.proc.wait(GLOBAL_TIMEOUT)
            except (subprocess.TimeoutExpired, BrokenPipeError, OSError):
                pass
        self.kill()

    def kill(self) -> None:
        terminate(self.proc, signal.SIGKILL)
        reap_adopted(pids=[self.pid, *self.zombie_pids, *self.alive_pids])


_SIGNAL_PARENT = r"""
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


@dataclass
class Parent:
    """A running start_parent(): its pid, its zombies, and (record mode) its signal log."""

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
        line = read_line(self.proc.stdout)
        self.lines.append(line)
        return line

    def close(self) -> None:
        terminate(self.proc, signal.SIGKILL)
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
        argv = [PYTHON_EXE, "-c", _SIGNAL_PARENT, mode, str(n), str(log or "-"), str(uid)]
        argv += cmd or []
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True, env=env
    )
    register(proc.pid)
    parent = Parent(proc, [], log)
    try:
        words = parent.read_line().split()
        if not words or words[0] != "ready":
            raise RuntimeError(f"test parent {mode} did not start: {words}")
        parent.zombie_pids = sorted(register(int(w)) for w in words[1:])
        if not wait_until(lambda: len(zombie_children(proc.pid)) == n):
            raise RuntimeError(f"{n} zombies did not appear under {proc.pid}")
    except BaseException:
        parent.close()
        raise
    return parent


def build_c(directory: Path, source: Path) -> Path:
    """gcc -O2 SOURCE into DIRECTORY; the executable's path. Without a compiler the test
    is skipped, except under CI, where every comparison must run: there it fails."""
    import shutil

    import pytest

    if shutil.which("gcc") is None:
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail("no C compiler (gcc) under CI", pytrace=False)
        pytest.skip("no C compiler")
    exe = directory / source.stem
    subprocess.run(
        ["gcc", "-O2", "-o", str(exe), str(source)],
        check=True,
        capture_output=True,
        timeout=GLOBAL_TIMEOUT,
    )
    return exe


def compile_c_parent(tmp: Path) -> Path:
    src = tmp / "parent.c"
    src.write_text(C_PARENT)
    exe = tmp / "parent"
    subprocess.run(
        ["gcc", "-O2", "-o", str(exe), str(src)],
        check=True,
        capture_output=True,
        timeout=GLOBAL_TIMEOUT,
    )
    return exe


# One child per kind, each held in its state until the parent's stdin closes; then the
# parent kills and reaps them all. "traced" calls PTRACE_TRACEME and stops itself: the
# parent becomes its tracer and it waits in a tracing stop (state t), not a job stop (T).
_STATES_PARENT = r"""
import ctypes, os, signal, sys
PTRACE_TRACEME = 0
libc = ctypes.CDLL(None, use_errno=True)

def child(kind):
    pid = os.fork()
    if pid:
        return pid
    if kind == "zombie":
        os._exit(0)
    if kind == "traced" and libc.ptrace(PTRACE_TRACEME, 0, None, None) != 0:
        os._exit(3)
    if kind in ("stopped", "traced"):
        os.kill(os.getpid(), signal.SIGSTOP)
    while True:
        signal.pause()

pids = [child(k) for k in sys.argv[1:]]
print(*pids, flush=True)
sys.stdin.read()
for pid in pids:
    os.kill(pid, signal.SIGKILL)
for pid in pids:
    while True:  # a tracer also hears of stops: wait until each has really ended
        _, status = os.waitpid(pid, 0)
        if os.WIFEXITED(status) or os.WIFSIGNALED(status):
            break
"""

STATE_OF_KIND = {"zombie": "Z", "stopped": "T", "traced": "t", "sleeping": "S"}


class StatesParent:
    """A parent with one child in each of `kinds` (zombie, stopped, traced, sleeping).

    Each child's state is read back from /proc before the constructor returns, so a
    test starts with exactly the states it names.
    """

    def __init__(self, *kinds: str) -> None:
        self.proc = subprocess.Popen(
            [PYTHON_EXE, "-c", _STATES_PARENT, *kinds],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.pid = register(self.proc.pid)
        self.kids: dict[str, int] = {}
        try:
            assert self.proc.stdout is not None
            pids = [register(int(x)) for x in read_line(self.proc.stdout).split()]
            self.kids = dict(zip(kinds, pids, strict=True))
            want = {pid: STATE_OF_KIND[kind] for kind, pid in self.kids.items()}
            if not wait_until(lambda: {p: proc_state(p) for p in want} == want):
                raise RuntimeError(f"children never reached {want}")
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self.proc.poll() is None and self.proc.stdin:
            try:
                self.proc.stdin.close()
                self.proc.wait(GLOBAL_TIMEOUT)
            except (subprocess.TimeoutExpired, OSError):
                pass
        terminate(self.proc, signal.SIGKILL)
        reap_adopted(pids=self.kids.values())


# ===================================================================
# --- clean-up
# ===================================================================


def _gone_or_zombie(pid: int) -> bool:
    return proc_state(pid) in (None, "Z", "X")


def _end(pid: int, sig: int) -> None:
    """sig to pid (after SIGCONT, so a stopped process can act on it); SIGKILL if it stays."""
    try:
        if sig != signal.SIGKILL:
            os.kill(pid, signal.SIGCONT)
        os.kill(pid, sig)
        if sig != signal.SIGKILL and not wait_until(lambda: _gone_or_zombie(pid), TERM_GRACE):
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    wait_until(lambda: _gone_or_zombie(pid))


def _still_there(target: int | psutil.Process | subprocess.Popen) -> bool:
    """False once target is known to be gone, so that its pid is never signalled again."""
    if isinstance(target, subprocess.Popen):
        return target.returncode is None
    if isinstance(target, psutil.Process):
        return target.is_running()
    return proc_exists(target)


def _reap(target: int | psutil.Process | subprocess.Popen) -> int | None:
    """Collect target's exit status where this session is its parent; None otherwise."""
    if isinstance(target, subprocess.Popen):
        status = target.wait(GLOBAL_TIMEOUT)
        for f in (target.stdin, target.stdout, target.stderr):
            if f:
                try:
                    f.close()
                except OSError:
                    pass
        return status
    try:
        _, status = os.waitpid(target if isinstance(target, int) else target.pid, 0)
    except ChildProcessError:
        return None
    return os.waitstatus_to_exitcode(status)


def terminate(
    target: int | psutil.Process | subprocess.Popen, sig: int = signal.SIGTERM
) -> int | None:
    """End target and all its descendants, deepest first, and reap what is ours.

    Each gets sig, then SIGKILL if it is still running TERM_GRACE later; descendants the
    session adopted are reaped by pid. Returns target's exit status where the session
    is its parent (a Popen, or a child's pid), None otherwise. Nothing there: no-op.
    """
    pid = target if isinstance(target, int) else target.pid
    if not _still_there(target):
        return _reap(target)  # already reaped: its pid may name someone else by now
    try:
        family = list(reversed(descendants_of(pid)))
    except (errors.NoSuchProcess, errors.PermissionDenied):
        family = []
    for p in [*(p.pid for p in family if not p.is_zombie), pid]:
        _end(p, sig)
    status = _reap(target)
    reap_adopted(pids=[p.pid for p in family])  # orphans, and zombies, the session adopted
    return status


def reap_adopted(
    pids: Iterable[int] | None = None, exclude: Iterable[int] = (), timeout: float = GLOBAL_TIMEOUT
) -> list[int]:
    """Reap the zombie children of the test session (orphans it adopted as subreaper).

    Waits up to timeout until `pids` (default: every child of the session outside
    `exclude`) are gone, reaping each zombie child by pid, never with waitpid(-1), so
    that children in `exclude` (live Popen objects) keep their status for their owner.
    Returns the reaped pids.
    """
    skip = set(exclude)
    wanted = None if pids is None else set(pids)
    reaped: list[int] = []
    me = os.getpid()

    def settled() -> bool:
        others = [p for p in children_of(me) if p.pid not in skip]
        for p in others:
            if p.is_zombie:
                try:
                    os.waitpid(p.pid, os.WNOHANG)
                    reaped.append(p.pid)
                except ChildProcessError:
                    pass
        if wanted is None:
            return not others
        return not any(
            proc_exists(pid) and pid in {o.pid for o in others} for pid in wanted
        ) and not any(o.is_zombie for o in others)

    wait_until(settled, timeout, 0.02)
    return reaped


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


def terminate_registered() -> None:
    """terminate() every registered pid that still runs: the end-of-session safety net.

    A pid is signalled only while it is still a descendant of this session, so a pid
    reused by someone else's process is left alone.
    """
    mine = {p.pid for p in leftover_descendants() if not p.is_zombie}
    for pid in sorted(_pids_started & mine, reverse=True):
        terminate(pid, signal.SIGKILL)
    _pids_started.clear()


# ===================================================================
# --- namespaces and cgroups
# ===================================================================


def unshare_works() -> bool:
    """True where `unshare --pid --fork --mount-proc` runs (root, namespaces allowed)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    try:
        result = subprocess.run(
            ["unshare", "--pid", "--fork", "--mount-proc", "true"],
            capture_output=True,
            timeout=GLOBAL_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


MOUNTINFO = "/proc/self/mountinfo"


def cgroup_mounts(mountinfo: str = MOUNTINFO) -> list[tuple[str, str, set[str]]]:
    """(filesystem type, mount point, super options) of every cgroup mount."""
    out = []
    with open(mountinfo) as f:
        for line in f:
            before, _, after = line.partition(" - ")
            fstype, _source, options = after.split()[:3]
            if fstype in ("cgroup", "cgroup2"):
                mount_point = before.split()[4].replace("\\040", " ")
                out.append((fstype, mount_point, set(options.split(","))))
    return out


def pids_hierarchy(mountinfo: str = MOUNTINFO) -> tuple[str, str] | None:
    """("v2", mount) where the unified hierarchy has the pids controller, else ("v1",
    mount) of cgroup v1's pids controller; None where neither is mounted.

    A hybrid host mounts both, but a controller lives in one hierarchy only: v2's
    cgroup.controllers lists pids only where v1 does not hold it.
    """
    mounts = cgroup_mounts(mountinfo)
    for fstype, mount, _ in mounts:
        if fstype == "cgroup2" and "pids" in _words(os.path.join(mount, "cgroup.controllers")):
            return "v2", mount
    for fstype, mount, options in mounts:
        if fstype == "cgroup" and "pids" in options:
            return "v1", mount
    return None


def _words(path: str) -> list[str]:
    try:
        with open(path) as f:
            return f.read().split()
    except OSError:
        return []


def _pids_base(mountinfo: str = MOUNTINFO) -> str | None:
    """The directory to make a pids-limited group in; on v2, pids is first enabled for
    the root's children (the root itself may hold processes: it is exempt)."""
    found = pids_hierarchy(mountinfo)
    if found is None:
        return None
    version, mount = found
    if version == "v2":
        control = os.path.join(mount, "cgroup.subtree_control")
        if "pids" not in _words(control):
            try:
                with open(control, "w") as f:
                    f.write("+pids")
            except OSError:
                return None
    return mount if os.access(mount, os.W_OK) else None


def pids_cgroup(limit: int) -> str | None:
    """A fresh cgroup with pids.max = limit (cgroup v2, or v1's pids controller), or None
    where that is impossible."""
    base = _pids_base()
    if base is None:
        return None
    path = os.path.join(base, f"zombiectl-test-{os.getpid()}-{time.monotonic_ns()}")
    try:
        os.mkdir(path)
    except OSError:
        return None
    try:
        with open(os.path.join(path, "pids.max"), "w") as f:
            f.write(str(limit))
    except OSError:
        os.rmdir(path)
        return None
    return path


def run_zombiectl_in_pids_cgroup(limit: int, args: list[str]) -> subprocess.CompletedProcess[str]:
    """`python -m zombiectl ARGS` in a pids cgroup of `limit` tasks: fork() really fails.

    Root ignores RLIMIT_NPROC, a cgroup does not. Skips where no cgroup can be made.
    The group is removed once every task in it is gone.
    """
    import pytest

    group = pids_cgroup(limit)
    if group is None:
        pytest.skip("cannot create a pids cgroup here")

    def enter() -> None:
        with open(os.path.join(group, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))

    try:
        return subprocess.run(
            [PYTHON_EXE, "-m", "zombiectl", *args],
            capture_output=True,
            text=True,
            timeout=GLOBAL_TIMEOUT,
            env=dict(os.environ, NO_COLOR="1"),
            preexec_fn=enter,
        )
    finally:
        procs = Path(group, "cgroup.procs")
        wait_until(lambda: not procs.read_text().strip())
        os.rmdir(group)
