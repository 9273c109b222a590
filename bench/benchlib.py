"""Shared pieces of the benchmarks: timing a command, and a parent holding many zombies."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
ZOMBIECTL = (
    str(VENV_BIN / "zombiectl") if (VENV_BIN / "zombiectl").exists() else shutil.which("zombiectl")
)


def compile_bytecode() -> None:
    """Write zombiectl's bytecode, as an install does, so no timed start compiles source.

    (Where PYTHONDONTWRITEBYTECODE is set, an editable install would otherwise compile
    every module on every start.)
    """
    import compileall

    import zombiectl

    compileall.compile_dir(str(Path(zombiectl.__file__).parent), quiet=1)


# Forks N children that exit at once (zombies) and M that block on a pipe (alive); prints
# "ready"; on stdin EOF releases the live ones and reaps everything.
HOLDER = r"""
import os, sys
n, alive = int(sys.argv[1]), int(sys.argv[2])
r, w = os.pipe()
pids = []
for i in range(n + alive):
    pid = os.fork()
    if pid == 0:
        if i >= n:
            os.close(w)
            os.read(r, 1)
        os._exit(0)
    pids.append(pid)
os.close(r)
print("ready", flush=True)
sys.stdin.read()
os.close(w)
for pid in pids:
    os.waitpid(pid, 0)
"""


class Holder:
    """A parent with `zombies` zombie children and `alive` live ones, reaped on close."""

    def __init__(self, zombies: int, alive: int = 0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(zombies), str(alive)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout
        if self.proc.stdout.readline().strip() != "ready":
            self.close()
            raise RuntimeError("holder failed to start (pid_max or RLIMIT_NPROC too low?)")
        self.pid = self.proc.pid

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()

    def __enter__(self) -> Holder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_measured(cmd: list[str]) -> tuple[float, float, int]:
    """Run cmd (output discarded); return wall seconds, CPU seconds and peak RSS in KiB."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss


def alternate(cmds: dict[str, list[str]], rounds: int) -> dict[str, list[tuple[float, float, int]]]:
    """Run each command once per round, in turn, so drift in machine load hits all alike."""
    out: dict[str, list[tuple[float, float, int]]] = {k: [] for k in cmds}
    for _ in range(rounds):
        for name, cmd in cmds.items():
            out[name].append(run_measured(cmd))
    return out


def median(values: list[float]) -> float:
    return statistics.median(values)


def headroom() -> int:
    """How many more processes this machine allows (pid_max and threads-max minus in use)."""
    try:
        pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    except OSError:
        pid_max = 32768
    in_use = sum(1 for n in os.listdir("/proc") if n.isdigit())
    return pid_max - in_use - 500


def verdict(ok: bool) -> str:
    return "meets target" if ok else "MISSES target"
