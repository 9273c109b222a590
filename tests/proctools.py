"""Real processes for tests: zombies made on demand, and clean-up that always happens.

Modelled on psutil's test helpers: a zombie is made for real and synchronised on its
state in /proc (never a bare sleep), and clean-up kills descendants before parents.

The test session is a child subreaper (see conftest.py): a process orphaned by a test
is adopted by the session, not by PID 1, so nothing a test starts can escape the
leak guard.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from zombiectl.proc.table import children_of, descendants_of, read_proc

PR_SET_CHILD_SUBREAPER = 36

# The parent forks N children that exit at once, reports "ready", then blocks on stdin.
# On EOF it reaps every child and exits 0: the graceful clean-up path.
_PARENT = r"""
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


def set_subreaper() -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def wait_until(cond: Callable[[], bool], timeout: float = 10.0, interval: float = 0.01) -> bool:
    """Poll cond until it holds or timeout passes; return whether it held."""
    deadline = time.monotonic() + timeout
    while True:
        if cond():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def zombie_children(pid: int) -> list[int]:
    return [p.pid for p in children_of(pid) if p.is_zombie]


class ZombieParent:
    """A real parent process with `zombies` zombie children and `alive` live ones."""

    def __init__(self, zombies: int, alive: int = 0, timeout: float = 60.0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _PARENT, str(zombies), str(alive)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.pid = self.proc.pid
        try:
            line = self.proc.stdout.readline() if self.proc.stdout else ""
            pids = [int(x) for x in line.split()]
            if len(pids) != zombies + alive:
                raise RuntimeError(f"zombie parent failed to start: {line!r}")
            self.zombie_pids = sorted(pids[:zombies])
            self.alive_pids = sorted(pids[zombies:])
            if not wait_until(lambda: len(zombie_children(self.pid)) == zombies, timeout):
                raise RuntimeError(f"{zombies} zombies did not appear under {self.pid}")
        except BaseException:
            self.kill()
            raise

    def close(self, timeout: float = 30.0) -> None:
        """Let the parent reap its children and exit; kill it if it does not."""
        if self.proc.poll() is None:
            try:
                if self.proc.stdin:
                    self.proc.stdin.close()
                self.proc.wait(timeout)
            except (subprocess.TimeoutExpired, BrokenPipeError, OSError):
                pass
        self.kill()

    def kill(self) -> None:
        family = (
            [self.pid, *self.zombie_pids, *self.alive_pids]
            if hasattr(self, "alive_pids")
            else [self.pid]
        )
        kill_tree(self.pid)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            if f:
                try:
                    f.close()
                except OSError:
                    pass
        # Children of a parent that died first were adopted by this session.
        reap_adopted(pids=family)


def kill_tree(pid: int) -> None:
    """SIGKILL pid's descendants, deepest first, then pid itself is left to its owner."""
    try:
        desc = descendants_of(pid)
    except Exception:
        return
    for p in reversed(desc):
        if not p.is_zombie:
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def reap_adopted(
    pids: Iterable[int] | None = None, exclude: Iterable[int] = (), timeout: float = 5.0
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


def leftover_descendants() -> list:
    return descendants_of(os.getpid())


def describe(procs: Iterable) -> str:
    return ", ".join(f"{p.pid} ({p.name}, {p.state}, ppid {p.ppid})" for p in procs)


def proc_exists(pid: int) -> bool:
    return read_proc(pid) is not None


def unshare_works() -> bool:
    """True where `unshare --pid --fork --mount-proc` runs (root, namespaces allowed)."""
    import shutil

    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    try:
        result = subprocess.run(
            ["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


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


PIDS_CGROUP = "/sys/fs/cgroup/pids"


def pids_cgroup(limit: int) -> str | None:
    """A fresh cgroup-v1 pids group with pids.max = limit, or None where that is impossible."""
    if not os.access(PIDS_CGROUP, os.W_OK):
        return None
    path = os.path.join(PIDS_CGROUP, f"zombiectl-test-{os.getpid()}-{time.monotonic_ns()}")
    try:
        os.mkdir(path)
        with open(os.path.join(path, "pids.max"), "w") as f:
            f.write(str(limit))
    except OSError:
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
            [sys.executable, "-m", "zombiectl", *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=dict(os.environ, NO_COLOR="1"),
            preexec_fn=enter,
        )
    finally:
        procs = Path(group, "cgroup.procs")
        wait_until(lambda: not procs.read_text().strip(), 15)
        os.rmdir(group)
