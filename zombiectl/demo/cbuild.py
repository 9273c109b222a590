"""The bundled C programs: found in a checkout or an installed wheel, built on first use.

Use: ``binary = build("fork_no_wait")``, then ``os.execve(binary.fd, argv, env)``: run
the descriptor zombiectl checked, never the path (``binary.path`` is for messages).

zombiectl runs as root on shared hosts, so nothing it executes may be a file another
user could have written. Binaries live in a per-user cache ($XDG_CACHE_HOME/zombiectl,
else ~/.cache/zombiectl). That directory and every directory above it must be owned by
the current user or root and not writable by group or others (a root-owned sticky
directory such as /tmp may be above it); otherwise the cache is refused (exit 4) with
the fix, never chmod-ed into shape. The path is walked one component at a time from a
descriptor, without following symbolic links, and every later step (the build, the
copy into place, the open of the binary) goes through the descriptor of the directory
that was checked. The binary itself is opened without following links, checked with
fstat (a regular file of ours, not writable by others) and executed through that same
descriptor, so the file that was checked is the file that runs.

The file name carries a hash of the source, the compiler and the flags, so an edited
source or another compiler is rebuilt, and an up-to-date binary is simply reused.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shlex
import shutil
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from zombiectl.errors import NotSupported, PermissionDenied, ZombiectlError
from zombiectl.proc.files import pid_path
from zombiectl.untrusted import display

CFLAGS = ["-O2", "-Wall"]
INSTALL_HINT = (
    "install a C compiler (Debian/Ubuntu: apt-get install gcc; Fedora: dnf install gcc; "
    "Alpine: apk add build-base; macOS: xcode-select --install) or set CC"
)
# O_PATH: a handle for fstat, openat and exec that needs no read permission and cannot
# block or trigger a device's open (a FIFO or a device node planted under the name).
DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC  # as safepath's
FILE_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
LOOSE = stat.S_IWGRP | stat.S_IWOTH
STALE_AFTER = 600.0  # seconds: a build directory this old belongs to a killed run


@dataclass(frozen=True)
class Binary:
    """A checked executable: run `fd` (os.execve accepts it); `path` is for messages."""

    fd: int
    path: Path

    def close(self) -> None:
        os.close(self.fd)


@dataclass(frozen=True)
class CacheDir:
    """The cache directory, opened and checked: use `fd` for everything, `path` to tell."""

    fd: int
    path: Path


def source_dirs() -> list[Path]:
    """Where the C sources may be: inside the installed package, or beside it in a checkout."""
    package = Path(__file__).resolve().parent.parent
    return [package / "c_demos", package.parent / "c_demos"]


def source_path(name: str) -> Path:
    for d in source_dirs():
        path = d / f"{name}.c"
        if path.is_file():
            return path
    raise ZombiectlError(f"the C demo source {name}.c is missing from this installation")


def cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or ""
    root = base if os.path.isabs(base) else os.path.join(os.path.expanduser("~"), ".cache")
    # Lexical clean-up of "." and "..": the same as the kernel's since no link is followed.
    return Path(os.path.normpath(os.path.join(root, "zombiectl")))


# --------------------------------------------------------------------------- the cache


def _refuse(path: Path, what: str, fix: str) -> PermissionDenied:
    shown = display(str(path))
    return PermissionDenied(f"cannot use {shown} for the C demo: {what}; fix: {fix}")


OWN_DIR_FIX = "set XDG_CACHE_HOME to a directory of your own"


def check_dir(st: os.stat_result, path: Path, last: bool) -> None:
    """Refuse a directory another user could write to (PermissionDenied, exit 4).

    Above the cache a root-owned sticky directory (/tmp) is fine: nobody else can
    rename or remove what we make in it. The cache itself must be private.
    """
    uid = os.geteuid()
    if st.st_uid not in (uid, 0):
        raise _refuse(path, f"it is owned by uid {st.st_uid}, not by you or root", OWN_DIR_FIX)
    if not st.st_mode & LOOSE:
        return
    if not last and st.st_uid == 0 and st.st_mode & stat.S_ISVTX:
        return
    mode = f"mode {stat.S_IMODE(st.st_mode):04o}"
    fix = f"chmod go-w {display(str(path))}" if st.st_uid == uid else OWN_DIR_FIX
    raise _refuse(path, f"group or others may write to it ({mode})", fix)


def open_cache(path: Path | None = None) -> CacheDir:
    """Walk to the cache from / one directory at a time, creating what is missing (0700).

    `zombiectl.safepath.walk` opens each component relative to its checked parent with
    O_NOFOLLOW and checks it with fstat (`check_dir`), following no link at all, so no
    link and no directory swapped in after the check is ever used.
    """
    from zombiectl.safepath import LinkRefused, walk

    path = path or cache_path()
    try:
        fd = walk(
            path,
            follow_links=False,
            create_mode=0o700,
            check=lambda st, here, last: check_dir(st, Path(here), last),
        )
    except LinkRefused as err:
        raise _refuse(
            Path(err.path),
            "it is a symbolic link, and no link is followed on the way to the cache",
            "make it a real directory, or set XDG_CACHE_HOME to a path without links",
        ) from None
    except OSError as err:
        raise _refuse(Path(err.filename or path), err.strerror or str(err), OWN_DIR_FIX) from None
    return CacheDir(fd, path)


def open_binary(cache: CacheDir, name: str) -> Binary | None:
    """The cached binary NAME if it is a regular executable file of ours that nobody else
    may write; None when it is missing or fails (then it is rebuilt, never run)."""
    try:
        fd = os.open(name, FILE_FLAGS, dir_fd=cache.fd)
    except OSError:
        return None
    st = os.fstat(fd)
    if (
        stat.S_ISREG(st.st_mode)
        and st.st_uid == os.geteuid()
        and not st.st_mode & LOOSE
        and st.st_mode & stat.S_IXUSR
    ):
        return Binary(fd, cache.path / name)
    os.close(fd)
    return None


# --------------------------------------------------------------------------- the build


def compiler() -> list[str] | None:
    cc = os.environ.get("CC")
    if cc:
        try:
            words = shlex.split(cc)
        except ValueError:  # an unbalanced quote: no command to run
            return None
        if words and shutil.which(words[0]):
            return words
        return None
    for name in ("cc", "gcc", "clang"):
        found = shutil.which(name)
        if found:
            return [found]
    return None


def _no_compiler(src: Path) -> NotSupported:
    cc = os.environ.get("CC")
    if cc:
        return NotSupported(
            f"building {src.name} needs a C compiler and CC={display(cc)} was not found: "
            f"{INSTALL_HINT}"
        )
    return NotSupported(
        f"building {src.name} needs a C compiler and none was found: {INSTALL_HINT}"
    )


def binary_name(name: str, src: Path, cc: list[str]) -> str:
    # fsencode: CC is bytes from the environment, UTF-8 or not.
    key = hashlib.sha256(src.read_bytes() + b"\0" + os.fsencode(" ".join(cc + CFLAGS))).hexdigest()
    return f"{name}-{key[:16]}"


def build(name: str) -> Binary:
    """A checked, up-to-date binary of c_demos/NAME.c, compiled into the cache if needed.

    NotSupported (exit 5) when no compiler runs or it fails to build the bundled source;
    PermissionDenied (exit 4) when the cache is not private. The caller owns `fd`.
    """
    src = source_path(name)
    cc = compiler()
    if cc is None:
        raise _no_compiler(src)
    target = binary_name(name, src, cc)
    cache = open_cache()
    try:
        found = open_binary(cache, target)
        if found is not None:
            return found
        try:
            _compile_into(cache, cc, src, target)
        except OSError as err:
            raise _refuse(
                cache.path, f"cannot write {target}: {err.strerror}", OWN_DIR_FIX
            ) from None
        built = open_binary(cache, target)
        if built is None:
            raise _refuse(cache.path / target, "the binary just built fails its check", OWN_DIR_FIX)
        return built
    finally:
        os.close(cache.fd)


def _compile_into(cache: CacheDir, cc: list[str], src: Path, target: str) -> None:
    """Compile in a private directory made inside the checked cache, then copy the
    binary beside it under an exclusive temporary name and rename it into place."""
    _remove_stale(cache.fd)
    work = f".build-{secrets.token_hex(8)}"
    os.mkdir(work, 0o700, dir_fd=cache.fd)
    wfd = os.open(work, DIR_FLAGS, dir_fd=cache.fd)
    try:
        _run_compiler(cc, src, target, wfd)
        _copy_in(wfd, target, cache.fd)
    finally:
        _remove_flat_dir(work, wfd, cache.fd)


def _run_compiler(cc: list[str], src: Path, target: str, wfd: int) -> None:
    # The compiler needs paths: its working directory is reached through our descriptor
    # (kept open in it), and TMPDIR is that directory too, so neither its output nor its
    # intermediate objects sit where another user (a TMPDIR under sudo -E) could swap them.
    env = dict(os.environ, TMPDIR=".")
    try:
        res = subprocess.run(
            [*cc, *CFLAGS, "-o", target, str(src)],
            cwd=pid_path("self", "fd", str(wfd)),
            pass_fds=(wfd,),
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
        )
    except OSError as err:
        raise NotSupported(
            f"cannot run the C compiler {display(cc[0])}: {err.strerror}; {INSTALL_HINT}"
        ) from None
    if res.returncode != 0:
        raise NotSupported(_compile_failure(cc[0], src, res.returncode, res.stderr))


def _compile_failure(cc: str, src: Path, code: int, stderr: bytes) -> str:
    how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
    lines = stderr.decode("utf-8", "backslashreplace").splitlines()
    said = next((ln for ln in lines if "error" in ln), lines[0] if lines else "")
    tail = f": {display(said.strip())[:200]}" if said.strip() else " and printed nothing"
    return f"the C compiler {display(cc)} could not build {src.name} ({how}){tail}"


def _copy_in(wfd: int, target: str, cache_fd: int) -> None:
    src_fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=wfd)
    try:
        if not stat.S_ISREG(os.fstat(src_fd).st_mode):
            raise OSError(0, "the compiler's output is not a regular file")
        tmp = f".{target}.{secrets.token_hex(8)}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        dst_fd = os.open(tmp, flags, 0o700, dir_fd=cache_fd)
        try:
            _copy_fd(src_fd, dst_fd)
            os.fchmod(dst_fd, 0o700)
        except BaseException:
            os.close(dst_fd)
            os.unlink(tmp, dir_fd=cache_fd)
            raise
        os.close(dst_fd)
        # Atomic: a concurrent run sees no binary or a whole one, never half of one.
        os.rename(tmp, target, src_dir_fd=cache_fd, dst_dir_fd=cache_fd)
    finally:
        os.close(src_fd)


def _copy_fd(src_fd: int, dst_fd: int) -> None:
    while True:
        chunk = os.read(src_fd, 1 << 20)
        if not chunk:
            return
        view = memoryview(chunk)
        while view:
            view = view[os.write(dst_fd, view) :]


def _remove_stale(cache_fd: int) -> None:
    """Remove what a killed build left (a .build-* directory, a .*.tmp copy), once it is
    older than any build still running could be."""
    now = time.time()
    for name in os.listdir(pid_path("self", "fd", str(cache_fd))):
        if not (name.startswith(".build-") or (name.startswith(".") and name.endswith(".tmp"))):
            continue
        try:
            st = os.stat(name, dir_fd=cache_fd, follow_symlinks=False)
            if st.st_uid != os.geteuid() or now - st.st_mtime < STALE_AFTER:
                continue
            if stat.S_ISDIR(st.st_mode):
                fd = os.open(name, DIR_FLAGS, dir_fd=cache_fd)
                _remove_flat_dir(name, fd, cache_fd)
            else:
                os.unlink(name, dir_fd=cache_fd)
        except OSError:
            continue  # another run removed it first


def _remove_flat_dir(name: str, fd: int, parent: int) -> None:
    """Remove the build directory: it holds files only (the output, the compiler's temps)."""
    try:
        for entry in os.listdir(pid_path("self", "fd", str(fd))):
            os.unlink(entry, dir_fd=fd)
        os.rmdir(name, dir_fd=parent)
    except OSError:
        pass  # a leftover in our own private cache is untidy, not unsafe
    finally:
        os.close(fd)
