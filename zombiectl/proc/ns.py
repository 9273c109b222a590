"""Namespaces: which ones a process is in, and entering a container's through a pidfd.

A namespace is named by its /proc/PID/ns/KIND link (`pid:[4026531836]`): two processes
share one when the links read the same. `enter` is setns(2) given a pidfd (Linux 5.8+),
which enters several of the process's namespaces at once and cannot be raced by pid
reuse: the pidfd names one process.
"""

from __future__ import annotations

import os

from zombiectl.proc import libc
from zombiectl.proc.files import pid_path

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
INITIAL_PID_NAMESPACE = 4026531836  # PROC_PID_INIT_INO: the initial PID namespace


def namespace_of(pid: int | str, kind: str) -> str | None:
    """pid's namespace of that kind ("pid", "user", "mnt"...), as its link reads; None
    when it cannot be read."""
    try:
        return os.readlink(pid_path(pid, "ns", kind))
    except OSError:
        return None


def namespace_inode(pid: int | str, kind: str) -> int | None:
    """The inode number that names pid's namespace of that kind, or None."""
    link = namespace_of(pid, kind)
    try:
        return None if link is None else int(link.split("[", 1)[1].rstrip("]"))
    except (ValueError, IndexError):
        return None


def to_enter(pid: int) -> int:
    """The setns flags to enter pid's PID and mount namespaces, and its user namespace
    when it is not this process's own (setns refuses to enter the one it is in)."""
    flags = CLONE_NEWPID | CLONE_NEWNS
    theirs = namespace_of(pid, "user")
    if theirs is not None and theirs != namespace_of("self", "user"):
        flags |= CLONE_NEWUSER
    return flags


def enter(pidfd: int, flags: int) -> None:
    """Enter the namespaces (flags) of the process pidfd names; OSError if refused.

    The C library is loaded before the call (`libc.load`): after it, the files of the
    mount namespace are the container's."""
    libc.call("setns", pidfd, flags)
