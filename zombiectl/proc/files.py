"""The one reader of kernel files, and the paths below /proc.

Like psutil's `cat` and `bcat`: each read is one bounded `os.read` of a file opened
without following links, and a file that cannot be read (the process has gone, or it
is not ours to read) is None, never an error. The kernel files zombiectl reads are
small; the caller states a bigger bound where a file can grow (mountinfo, cgroup).

    >>> bcat(pid_path(os.getpid(), "stat"))[:len(str(os.getpid()))] == str(os.getpid()).encode()
    True
    >>> cat(pid_path(2**40, "stat")) is None
    True
"""

from __future__ import annotations

import os

PROC = "/proc"
SMALL = 4096


def have_proc() -> bool:
    """True where /proc can be read (Linux); elsewhere psutil stands in."""
    return os.path.exists(f"{PROC}/self/stat")


def pid_path(pid: int | str, *names: str) -> str:
    """/proc/PID/NAME...: `pid_path(42, "task")`, `pid_path("self", "fdinfo", "3")`."""
    return "/".join((PROC, str(pid), *names))


def proc_path(*names: str) -> str:
    """/proc/NAME...: `proc_path("sys", "kernel", "pid_max")`."""
    return "/".join((PROC, *names))


def bcat(path: str, size: int = SMALL, whole: bool = False) -> bytes | None:
    """Up to `size` bytes of the file at path, in one read; None when it cannot be read.

    `whole` reads on to the end (still at most `size` bytes): a file the kernel lists
    record by record (mountinfo, net/tcp) gives about a page per read, where the one
    read of a small file gives it all.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        data = os.read(fd, size)
        if whole and data:
            chunks = [data]
            left = size - len(data)
            while left > 0 and (data := os.read(fd, min(left, 65536))):
                chunks.append(data)
                left -= len(data)
            data = b"".join(chunks)
        return data
    except OSError:
        return None
    finally:
        os.close(fd)


def cat(path: str, size: int = SMALL, whole: bool = False) -> str | None:
    """The same as text: kernel files are ASCII, and any other byte reads as U+FFFD."""
    raw = bcat(path, size, whole)
    return None if raw is None else raw.decode("ascii", "replace")
