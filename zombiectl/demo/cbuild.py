"""The bundled C programs: found in a checkout or an installed wheel, built on first use.

    >>> build("fork_no_wait")
    PosixPath('/home/ann/.cache/zombiectl/fork_no_wait-3f2a9c0d41b7e8a2')

Binaries go to a per-user cache directory ($XDG_CACHE_HOME/zombiectl, else
~/.cache/zombiectl), created 0700 and refused if another user owns it or others may
write to it: never a predictable path in /tmp that someone else could plant first. The
file name carries a hash of the source, the compiler and the flags, so an edited source
or another compiler is rebuilt, and an up-to-date binary is simply reused.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

from zombiectl.errors import NotSupported, ZombiectlError

CFLAGS = ["-O2", "-Wall"]
INSTALL_HINT = (
    "install a C compiler (Debian/Ubuntu: apt-get install gcc; Fedora: dnf install gcc; "
    "Alpine: apk add build-base; macOS: xcode-select --install) or set CC"
)


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


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or ""
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
    path = root / "zombiectl"
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = path.lstat()
    except OSError as err:
        raise ZombiectlError(
            f"cannot use {path} to build the C demo: {err.strerror} (set XDG_CACHE_HOME)"
        ) from None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise ZombiectlError(f"{path} is not a directory owned by you: refusing to build there")
    if st.st_mode & 0o022:
        os.chmod(path, 0o700)
    return path


def compiler() -> list[str] | None:
    cc = os.environ.get("CC")
    if cc:
        words = shlex.split(cc)
        if words and shutil.which(words[0]):
            return words
        return None
    for name in ("cc", "gcc", "clang"):
        found = shutil.which(name)
        if found:
            return [found]
    return None


def build(name: str) -> Path:
    """The path of an up-to-date binary of c_demos/NAME.c, compiling it if needed.

    NotSupported (exit 5) when no compiler exists; ZombiectlError when it fails.
    """
    src = source_path(name)
    cc = compiler()
    if cc is None:
        raise NotSupported(
            f"building {src.name} needs a C compiler and none was found: {INSTALL_HINT}"
        )
    text = src.read_bytes()
    key = hashlib.sha256(text + b"\0" + " ".join(cc + CFLAGS).encode()).hexdigest()[:16]
    out = cache_dir() / f"{name}-{key}"
    if out.is_file() and os.access(out, os.X_OK):
        return out
    try:
        return _compile(cc, src, out)
    except OSError as err:
        raise ZombiectlError(f"cannot build {out}: {err.strerror}") from None


def _compile(cc: list[str], src: Path, out: Path) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}-", dir=out.parent)
    os.close(fd)
    try:
        try:
            res = subprocess.run(
                [*cc, *CFLAGS, "-o", tmp, str(src)],
                capture_output=True,
                text=True,
                check=False,
            )
        except OSError as err:
            raise NotSupported(f"cannot run the C compiler {cc[0]}: {err.strerror}") from None
        if res.returncode != 0:
            first = next((ln for ln in res.stderr.splitlines() if "error" in ln), "")
            raise ZombiectlError(
                f"compiling {src.name} failed ({cc[0]} exit {res.returncode}): "
                f"{first or res.stderr.strip()[:200]}"
            )
        os.chmod(tmp, 0o700)
        os.replace(tmp, out)  # atomic: a concurrent run sees the old state or the new binary
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out
