"""The programs the tests compare zombiectl against or run it with, and what a missing
one means.

On a workstation a missing peer skips the tests that need it, naming the Debian package
to install. Under CI (the ``CI`` environment variable set, as CI services and `.ci/run`
set it) it fails them instead: a comparison that was skipped proves nothing, and a
green run must mean every comparison ran.

Run as a script, it checks that every peer is installed (`.ci/run` does, after
installing them), printing one line naming what is missing, and exits 1 if anything is:

    $ python3 tests/peers.py
    missing peers: dumb-init (package dumb-init), runc (package runc)

Standard library only (pytest is imported when a test asks), so the script runs before
any virtual environment exists.
"""

from __future__ import annotations

import os
import shutil
import struct
import sys
from typing import NamedTuple


class Peer(NamedTuple):
    names: tuple[str, ...]  # executables that will do, first found wins
    package: str  # the Debian package that installs it
    static: bool = False  # must be statically linked (copied into a container's root)


PEERS = {
    "tini": Peer(("tini",), "tini"),
    "tini-static": Peer(("tini-static",), "tini", static=True),  # Debian ships it in tini
    "dumb-init": Peer(("dumb-init",), "dumb-init"),
    "node_exporter": Peer(
        ("prometheus-node-exporter", "node_exporter"), "prometheus-node-exporter"
    ),
    "prometheus": Peer(("prometheus",), "prometheus"),
    "promtool": Peer(("promtool",), "prometheus"),
    "runc": Peer(("runc",), "runc"),
    "busybox-static": Peer(("busybox",), "busybox-static", static=True),
    "systemd-analyze": Peer(("systemd-analyze",), "systemd"),
}

_PT_INTERP = 3  # an ELF program header that names a dynamic loader


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def is_static_elf(path: str) -> bool:
    """An ELF executable without a PT_INTERP header: it needs no dynamic loader."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if head[:4] != b"\x7fELF" or head[4] not in (1, 2) or head[5] not in (1, 2):
                return False
            end = "<" if head[5] == 1 else ">"
            if head[4] == 2:  # 64-bit
                phoff, phentsize, phnum = struct.unpack_from(end + "Q14xHH", head, 32)
            else:
                phoff, phentsize, phnum = struct.unpack_from(end + "I10xHH", head, 28)
            f.seek(phoff)
            table = f.read(phentsize * phnum)
    except (OSError, struct.error):
        return False
    if phentsize < 4 or len(table) < phentsize * phnum:
        return False
    types = [struct.unpack_from(end + "I", table, i * phentsize)[0] for i in range(phnum)]
    return _PT_INTERP not in types


def find_peer(name: str) -> str | None:
    peer = PEERS[name]
    for executable in peer.names:
        path = shutil.which(executable)
        if path and (not peer.static or is_static_elf(path)):
            return path
    return None


def _missing_text(name: str) -> str:
    return f"{name} (package {PEERS[name].package})"


def require_peer(name: str) -> str:
    """The path of peer NAME; skips the test when it is missing, or fails it under CI."""
    path = find_peer(name)
    if path is not None:
        return path
    import pytest

    reason = f"{_missing_text(name)} is not installed (.ci/run installs it)"
    if under_ci():
        pytest.fail(f"{reason}; under CI a missing peer fails instead of skipping", pytrace=False)
    pytest.skip(reason)


def missing_peers() -> list[str]:
    return [name for name in PEERS if find_peer(name) is None]


def main() -> int:
    missing = missing_peers()
    if missing:
        print("missing peers: " + ", ".join(_missing_text(n) for n in missing), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
