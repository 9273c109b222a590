"""Atomic writes for node_exporter's textfile collector (`list --textfile PATH`).

node_exporter reads every ``*.prom`` file in its textfile directory on each scrape. A
file rewritten in place can be read half-written; so the text goes to a temporary file
in the same directory (a name that does not end in ``.prom``, so the collector never
reads it), is flushed to disk, and is renamed over PATH in one step. A scrape sees the
old file or the new one, never a mix.

    $ zombiectl list --textfile /var/lib/prometheus/node-exporter/zombiectl.prom
    $ zombiectl list --textfile /nonexistent/zombiectl.prom
    zombiectl: --textfile directory does not exist: /nonexistent

PATH and its directory may be writable by others (a shared textfile directory), so
nothing there is trusted: the directory is reached as `zombiectl.safepath` walks (a
symlink on the way is followed only if root or the caller owns it, else exit 4), PATH
is never followed as a symlink, its mode is copied only from our own file, temporary
names are random and created exclusively, and stale ones are removed only when they
are regular files of ours (never through a symlink).

Stdlib only, and not `tempfile` (it costs more start-up than the whole scan of a
small process table): this runs on the fast path of `list`.
"""

from __future__ import annotations

import errno
import os
import time
from stat import S_ISDIR, S_ISREG

from zombiectl.errors import BadUsage, OutputFailed, PermissionDenied, ZombiectlError
from zombiectl.stdout import WRITE_ERRNOS

SUFFIX = ".prom"
# Readable by node_exporter's own user whatever the writer's umask (cron jobs often run
# with 077); an existing file keeps its mode instead.
DEFAULT_MODE = 0o644
TMP_SUFFIX = ".tmp"
# A temporary of ours this old was left by a killed writer (a write takes milliseconds).
STALE_AFTER = 600.0
_DENIED = (errno.EACCES, errno.EPERM, errno.EROFS)


def check_textfile(path: str) -> None:
    """Refuse, before any scan, a PATH node_exporter would ignore or that cannot be made."""
    if not path.endswith(SUFFIX):
        raise BadUsage(
            f"--textfile must name a *{SUFFIX} file (node_exporter's textfile collector "
            f"reads only those): {path}"
        )
    directory = os.path.dirname(path) or "."
    os.close(_open_directory(directory, path))
    try:
        is_dir = S_ISDIR(os.lstat(path).st_mode)  # a symlink at PATH is replaced, not followed
    except OSError:
        is_dir = False
    if is_dir:
        raise BadUsage(f"--textfile is a directory: {path}")


def write_atomically(path: str, data: bytes) -> None:
    """Replace PATH with data so that no reader ever sees a partial file.

    Raises PermissionDenied (exit 4) when the directory is not writable, BadUsage (exit 2)
    when it does not exist, ZombiectlError (exit 1) for any other I/O error. On any
    failure, the temporary file is removed and PATH is left as it was.

    The directory is opened once and every name in it is used through that descriptor,
    so the file written, the one renamed and the one synced are in the same directory.
    """
    check_textfile(path)
    directory, base = os.path.split(path)
    dir_fd = _open_directory(directory or ".", path)
    try:
        mode = _mode_to_keep(base, dir_fd)
        remove_stale_temporaries(base, dir_fd)
        fd, tmp = _create_temporary(base, dir_fd, path)
        try:
            try:
                os.fchmod(fd, mode)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                # Without this, a crash just after the rename can leave an empty PATH.
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, base, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException as exc:
            try:
                os.unlink(tmp, dir_fd=dir_fd)
            except OSError:
                pass
            if isinstance(exc, OSError):
                raise _error(exc, path) from None
            raise
        _sync_directory(dir_fd)
    finally:
        os.close(dir_fd)


def _open_directory(directory: str, path: str) -> int:
    from zombiectl.safepath import open_directory

    try:
        return open_directory(directory, what="--textfile")
    except OSError as exc:
        raise _error(exc, path) from None


def _mode_to_keep(base: str, dir_fd: int) -> int:
    """The mode of the file at PATH if it is ours to copy, else DEFAULT_MODE.

    An operator's chmod on our own file is kept. A symbolic link (to a 0666 file, or to a
    0600 one node_exporter cannot read) or another user's file says nothing about what
    our metrics should be, and a file writable by group or others would let them forge
    them: those get DEFAULT_MODE. Set-id and sticky bits are never copied.
    """
    try:
        st = os.lstat(base, dir_fd=dir_fd)
    except OSError:
        return DEFAULT_MODE
    if not S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        return DEFAULT_MODE
    return st.st_mode & 0o777


def _is_temporary_of(base: str, name: str) -> bool:
    return name.startswith(f".{base}.") and name.endswith(TMP_SUFFIX)


def remove_stale_temporaries(base: str, dir_fd: int) -> list[str]:
    """Remove our own temporaries of PATH older than STALE_AFTER; return their names.

    A writer killed between creating its temporary and renaming it leaves one behind.
    Only regular files owned by the writer's user are removed: another user's files are
    none of our business (and, with random names, cannot get in the way of a write).
    """
    try:
        names = os.listdir(dir_fd)
    except OSError:
        return []
    cutoff = time.time() - STALE_AFTER
    removed = []
    for name in names:
        if not _is_temporary_of(base, name):
            continue
        try:
            st = os.lstat(name, dir_fd=dir_fd)
            if S_ISREG(st.st_mode) and st.st_uid == os.geteuid() and st.st_mtime < cutoff:
                os.unlink(name, dir_fd=dir_fd)
                removed.append(name)
        except OSError:
            continue  # gone meanwhile, or not ours to remove
    return removed


def _create_temporary(base: str, dir_fd: int, path: str) -> tuple[int, str]:
    # A leading dot and no .prom suffix: invisible to the collector. A random name, so no
    # one can create it first (O_EXCL would then fail); O_NOFOLLOW, so a symlink planted
    # under it is never followed. A clash of 64 random bits is retried, not expected.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for _ in range(8):
        tmp = f".{base}.{os.urandom(8).hex()}{TMP_SUFFIX}"
        try:
            return os.open(tmp, flags, 0o600, dir_fd=dir_fd), tmp
        except FileExistsError:
            continue
        except OSError as exc:
            raise _error(exc, path) from None
    raise ZombiectlError(f"cannot write {path}: no free temporary name beside it")


def _error(exc: OSError, path: str) -> ZombiectlError:
    directory = os.path.dirname(path) or "."
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    if exc.errno in _DENIED:
        return PermissionDenied(f"cannot write to {directory}: {reason}")
    if exc.errno == errno.ENOTDIR:
        return BadUsage(f"--textfile directory is not a directory: {directory}")
    if exc.errno == errno.ENOENT:
        if os.path.isdir(directory):  # /proc, say: there, but no new files allowed
            return PermissionDenied(f"cannot create files in {directory}")
        return BadUsage(f"--textfile directory does not exist: {directory}")
    if exc.errno in WRITE_ERRNOS:
        return OutputFailed(f"cannot write {path}: {reason}")
    return ZombiectlError(f"cannot write {path}: {reason}")


def _sync_directory(dir_fd: int) -> None:
    # Makes the rename itself durable; the swap is atomic either way, so a file system
    # that cannot sync a directory is not an error.
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
