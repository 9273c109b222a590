"""Atomic writes for node_exporter's textfile collector (`list --textfile PATH`).

node_exporter reads every ``*.prom`` file in its textfile directory on each scrape. A
file rewritten in place can be read half-written; so the text goes to a temporary file
in the same directory (a name that does not end in ``.prom``, so the collector never
reads it), is flushed to disk, and is renamed over PATH in one step. A scrape sees the
old file or the new one, never a mix.

    $ zombiectl list --textfile /var/lib/prometheus/node-exporter/zombiectl.prom
    $ zombiectl list --textfile /nonexistent/zombiectl.prom
    zombiectl: --textfile directory does not exist: /nonexistent

Stdlib only, and not `tempfile` (it costs more start-up than the whole scan of a
small process table): this runs on the fast path of `list`.
"""

from __future__ import annotations

import errno
import os
from stat import S_ISDIR

from zombiectl.errors import BadUsage, PermissionDenied, ZombiectlError

SUFFIX = ".prom"
# Readable by node_exporter's own user whatever the writer's umask (cron jobs often run
# with 077); an existing file keeps its mode instead.
DEFAULT_MODE = 0o644
_DENIED = (errno.EACCES, errno.EPERM, errno.EROFS)


def check_textfile(path: str) -> None:
    """Refuse, before any scan, a PATH node_exporter would ignore or that cannot be made."""
    if not path.endswith(SUFFIX):
        raise BadUsage(
            f"--textfile must name a *{SUFFIX} file (node_exporter's textfile collector "
            f"reads only those): {path}"
        )
    directory = os.path.dirname(path) or "."
    try:
        st = os.stat(directory)
    except OSError as exc:
        raise _error(exc, path) from None
    if not S_ISDIR(st.st_mode):
        raise BadUsage(f"--textfile directory is not a directory: {directory}")
    if os.path.isdir(path):
        raise BadUsage(f"--textfile is a directory: {path}")


def write_atomically(path: str, data: bytes) -> None:
    """Replace PATH with data so that no reader ever sees a partial file.

    Raises PermissionDenied (exit 4) when the directory is not writable, BadUsage (exit 2)
    when it does not exist, ZombiectlError (exit 1) for any other I/O error. On any
    failure, the temporary file is removed and PATH is left as it was.
    """
    check_textfile(path)
    directory = os.path.dirname(path) or "."
    try:
        mode = os.stat(path).st_mode & 0o7777
    except OSError:
        mode = DEFAULT_MODE
    fd, tmp = _create_temporary(path)
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
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise _error(exc, path) from None
        raise
    _sync_directory(directory)


def _create_temporary(path: str) -> tuple[int, str]:
    directory, base = os.path.split(path)
    # A leading dot and no .prom suffix: invisible to the collector. O_EXCL, so two
    # writers (say, in containers sharing the directory, with equal pids) never share one.
    for n in range(100):
        tmp = os.path.join(directory, f".{base}.{os.getpid()}.{n}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            continue
        except OSError as exc:
            raise _error(exc, path) from None
        return fd, tmp
    raise ZombiectlError(f"cannot write {path}: too many stale temporary files beside it")


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
    return ZombiectlError(f"cannot write {path}: {reason}")


def _sync_directory(directory: str) -> None:
    # Makes the rename itself durable; the swap is atomic either way, so a file system
    # that cannot sync a directory is not an error.
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
