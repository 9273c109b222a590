"""The guard: a process that kills every lab if zombiectl itself is killed (SIGKILL).

`demo` and `check` start one before any lab or command; it lives until they close it.
"""

from __future__ import annotations

import os
import signal
import time

from zombiectl.proc.prctl import set_name


def kill_group(pgid: int) -> bool:
    """SIGKILL a whole process group; False once no process (not even a zombie) is in it."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Guard:
    """A process that outlives zombiectl by moments, to kill the labs if zombiectl is killed.

    It is forked before any thread exists, closes every inherited descriptor but one
    pipe, ignores the terminal's signals, and blocks on that pipe. zombiectl writes
    "+PGID" for each lab it starts. End-of-file (zombiectl exited, however) makes the
    guard SIGKILL every group it was told about, a few times so that a fork in flight
    is caught too, then exit.
    """

    def __init__(self) -> None:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the forked guard
            code = 1
            try:
                os.close(w)
                self._serve(r)
                code = 0
            finally:
                os._exit(code)
        os.close(r)
        self.pid = pid
        self._w: int | None = w

    @staticmethod
    def _serve(r: int) -> None:  # pragma: no cover - runs in the forked guard
        # A session of its own: a signal to zombiectl's process group (Ctrl-C, kill -9
        # -PGID, the terminal hanging up) does not reach the guard.
        os.setsid()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGTSTP):
            signal.signal(sig, signal.SIG_IGN)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1):
            os.dup2(devnull, fd)
        keep = sorted({0, 1, 2, r})
        for low, high in zip(keep, [*keep[1:], 65536], strict=True):
            os.closerange(low + 1, high)
        set_name(b"zombiectl-guard")
        groups: set[int] = set()
        buf = b""
        while True:
            try:
                data = os.read(r, 4096)
            except InterruptedError:
                continue
            if not data:
                break
            buf += data
            *lines, buf = buf.split(b"\n")
            for line in lines:
                if line.startswith(b"+"):
                    groups.add(int(line[1:]))
                elif line.startswith(b"-"):
                    groups.discard(int(line[1:]))
        for _ in range(3):
            if not [pg for pg in list(groups) if kill_group(pg)]:
                break
            time.sleep(0.05)

    def _write(self, text: str) -> None:
        if self._w is not None:
            try:
                os.write(self._w, text.encode())
            except OSError:
                pass

    def watch(self, pgid: int) -> None:
        self._write(f"+{pgid}\n")

    def forget(self, pgid: int) -> None:
        self._write(f"-{pgid}\n")

    def close(self) -> None:
        if self._w is not None:
            os.close(self._w)
            self._w = None
        wait_for(self.pid)


def wait_for(pid: int) -> int | None:
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            return status
        except ChildProcessError:
            return None
        except InterruptedError:
            continue
