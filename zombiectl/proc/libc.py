"""Calls into the C library for the system calls Python does not wrap (prctl, setns).

ctypes is imported at the first call, not with the module: `run` imports `prctl` and
must start fast. The library is loaded once per process and kept: the demos call prctl
in every child they fork, and the doctor's probe calls setns after entering a
container's mount namespace, where no file of the host may be opened any more.
"""

from __future__ import annotations

import errno

_libc: list[object] = []


def load() -> object:
    """The C library, loaded now if it was not; OSError (ENOSYS) where there is none."""
    import ctypes

    if not _libc:
        try:
            _libc.append(ctypes.CDLL(None, use_errno=True))
        except OSError as err:
            raise OSError(errno.ENOSYS, f"no C library: {err}") from None
    return _libc[0]


def call(name: str, *args: object) -> None:
    """name(*args) from the C library; OSError with its errno where it fails or is missing."""
    import ctypes

    function = getattr(load(), name, None)
    if function is None:
        raise OSError(errno.ENOSYS, f"{name} does not exist here")
    if function(*args) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{name}: {errno.errorcode.get(err, err)}")
