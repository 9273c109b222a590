"""Paths zombiectl writes to, reached without trusting another user's symbolic links.

zombiectl runs as root on shared hosts and writes where it is told (`--junit-xml`,
`--textfile`, `--gradescope`, the C cache). A directory on the way may belong to
another user, who can turn a component into a symbolic link to anywhere
(`/home/u/ws/reports` -> `/etc`). So a path is walked from `/` one component at a time,
each opened relative to the last with O_PATH|O_DIRECTORY|O_NOFOLLOW and checked with
fstat. A symbolic link is followed only when root or the caller owns it (its target is
walked the same way); any other is refused: PermissionDenied, exit 4, one line. What is
written then goes through the descriptor of the directory that was checked, so a
directory swapped in after the walk is never used.

    fd = create_file("/home/u/ws/reports/z.xml", what="--junit-xml")
    dir_fd = open_directory("/var/lib/node_exporter", what="--textfile")

Stdlib only: `list --textfile` runs on the fast path.
"""

from __future__ import annotations

import errno
import os
import stat

from zombiectl.errors import BadUsage, PermissionDenied
from zombiectl.untrusted import display

TYPE_CHECKING = False  # typing costs ~4 ms to import; mypy treats this name as true
if TYPE_CHECKING:
    from collections.abc import Callable

    Check = Callable[[os.stat_result, str, bool], None]

# O_PATH: a handle for fstat and the *at calls that needs no read permission and cannot
# block or trigger a device's open (a FIFO or a device node planted under the name).
DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
LINK_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_LINKS = 40  # the kernel's own limit (MAXSYMLINKS) before ELOOP


class LinkRefused(PermissionDenied):
    """A symbolic link on the way that is not followed (exit 4)."""

    def __init__(self, message: str, path: str, owner: int) -> None:
        super().__init__(message)
        self.path = path
        self.owner = owner


def _trusted_owner(uid: int) -> bool:
    return uid in (0, os.geteuid())


def walk(
    path: str | os.PathLike[str],
    *,
    follow_links: bool = True,
    create_mode: int | None = None,
    check: Check | None = None,
    what: str = "",
) -> int:
    """An O_PATH descriptor of directory PATH, reached one component at a time from `/`.

    A relative PATH starts at the working directory (its real path). `..` is the parent
    of the directory reached so far, as the kernel has it. A symbolic link owned by root
    or by the caller is followed when `follow_links`; any other link raises LinkRefused.
    `create_mode`: a missing directory is made with that mode. `check(st, shown, last)`
    sees the fstat of every directory reached, `/` included, and may raise.

    Any other failure is the OSError itself, with `filename` the component it failed on.
    """
    raw = os.fspath(path)
    if not raw.startswith("/"):
        raw = os.path.join(os.getcwd(), raw)
    pending = raw.split("/")
    fd = os.open("/", DIR_FLAGS)
    here = "/"
    links = 0
    try:
        if check is not None:
            check(os.fstat(fd), here, not any(p not in ("", ".") for p in pending))
        while pending:
            part = pending.pop(0)
            if part in ("", "."):
                continue
            shown = os.path.join(here, part)
            try:
                child = _open_dir(part, fd, create_mode)
            except OSError as err:
                target = _link_target(part, fd, shown, follow_links, raw, what)
                if target is None:
                    err.filename = shown
                    raise
                links += 1
                if links > MAX_LINKS:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), shown) from None
                pending[:0] = target.split("/")
                if target.startswith("/"):
                    os.close(fd)
                    fd = os.open("/", DIR_FLAGS)
                    here = "/"
                continue
            os.close(fd)
            fd = child
            # After "..", the shown path is the lexical one; the descriptor is the truth.
            here = os.path.dirname(here) if part == ".." else shown
            if check is not None:
                check(os.fstat(fd), here, not any(p not in ("", ".") for p in pending))
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_dir(name: str, parent: int, create_mode: int | None) -> int:
    try:
        return os.open(name, DIR_FLAGS, dir_fd=parent)
    except FileNotFoundError:
        if create_mode is None:
            raise
    try:
        os.mkdir(name, create_mode, dir_fd=parent)
    except FileExistsError:
        pass  # made meanwhile: the open below checks what it is
    return os.open(name, DIR_FLAGS, dir_fd=parent)


def _link_target(
    name: str, parent: int, shown: str, follow: bool, path: str, what: str
) -> str | None:
    """The target of NAME when it is a link to follow; None when it is no link at all."""
    try:
        fd = os.open(name, LINK_FLAGS, dir_fd=parent)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISLNK(st.st_mode):
            return None
        if not follow or not _trusted_owner(st.st_uid):
            why = (
                "only links owned by root or by you are followed"
                if follow
                else "no link is followed here"
            )
            prefix = f"{what} " if what else ""
            raise LinkRefused(
                f"{prefix}{display(path)}: {display(shown)} is a symbolic link owned by "
                f"uid {st.st_uid}; {why}",
                shown,
                st.st_uid,
            )
        # The link that was checked, read through its own descriptor: not one swapped in.
        return os.readlink("", dir_fd=fd)
    finally:
        os.close(fd)


def open_directory(path: str | os.PathLike[str], *, what: str = "") -> int:
    """A readable descriptor (for listdir, fsync and the *at calls) of directory PATH,
    walked as `walk` does. LinkRefused (exit 4) for a link not to follow; OSError else."""
    pfd = walk(path, what=what)
    try:
        return os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=pfd)
    finally:
        os.close(pfd)


def create_file(path: str, *, what: str, mode: int = 0o644) -> int:
    """Open PATH for writing, creating it with MODE; never truncated here.

    The directory is walked as `walk` does; PATH itself is never followed if it is a
    link. It must be a regular file of the caller's with no second name: another user's
    file (its owner could rewrite it afterwards) or a hard link planted beside the
    report is never written. Every refusal is one line: PermissionDenied (exit 4) when
    the path is not the caller's to write, BadUsage (exit 2) when it is not a file.
    """
    shown = display(path)
    directory, base = os.path.split(path)
    if not base:
        raise BadUsage(f"{what} {shown}: names a directory, not a file")
    try:
        dir_fd = walk(directory or ".", what=what)
    except OSError as err:
        raise _refusal(what, shown, err) from None
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    try:
        fd = os.open(base, flags, mode, dir_fd=dir_fd)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise BadUsage(f"{what} {shown}: is a symbolic link; name the file itself") from None
        raise _refusal(what, shown, err) from None
    finally:
        os.close(dir_fd)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise BadUsage(f"{what} {shown}: not a regular file")
    if st.st_uid != os.geteuid() or st.st_nlink > 1:
        os.close(fd)
        why = "owned by another user" if st.st_uid != os.geteuid() else "has other hard links"
        raise PermissionDenied(f"{what} {shown}: {why}; remove it or name another path")
    return fd


def _refusal(what: str, shown: str, err: OSError) -> BadUsage | PermissionDenied:
    reason = err.strerror or str(err)
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return PermissionDenied(f"{what} {shown}: {reason}")
    return BadUsage(f"{what} {shown}: {reason}")
