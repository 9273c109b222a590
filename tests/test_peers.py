"""tests/peers.py: a missing peer skips a test locally and fails it under CI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import peers
import pytest
from proctools import GLOBAL_TIMEOUT

PEERS_SCRIPT = Path(__file__).parent / "peers.py"


@pytest.fixture
def empty_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PATH", str(tmp_path))
    return tmp_path


def test_a_missing_peer_skips_a_test_outside_ci(empty_path, monkeypatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"tini \(package tini\) is not installed"):
        peers.require_peer("tini")


@pytest.mark.parametrize("value", ["true", "1", "yes"])
def test_a_missing_peer_fails_a_test_under_ci(empty_path, monkeypatch, value: str) -> None:
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match="under CI a missing peer fails"):
        peers.require_peer("dumb-init")


@pytest.mark.parametrize("value", ["", "0", "false"])
def test_ci_unset_or_false_is_not_ci(monkeypatch, value: str) -> None:
    monkeypatch.setenv("CI", value)
    assert not peers.under_ci()


def test_a_present_peer_is_its_path(tmp_path: Path, monkeypatch) -> None:
    tool = tmp_path / "promtool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("CI", "true")
    assert peers.require_peer("promtool") == str(tool)


def test_a_dynamically_linked_busybox_is_not_busybox_static(tmp_path: Path, monkeypatch) -> None:
    # The container tests copy busybox into a root with no libc: only a static one will do.
    (tmp_path / "busybox").symlink_to(os.path.realpath("/bin/sh"))
    monkeypatch.setenv("PATH", str(tmp_path))
    assert not peers.is_static_elf("/bin/sh")
    assert peers.find_peer("busybox-static") is None


def test_static_elf_detection_reads_the_program_headers(tmp_path: Path) -> None:
    static = peers.find_peer("tini-static") or peers.find_peer("busybox-static")
    if static is not None:  # a real static binary, where one is installed
        assert peers.is_static_elf(static)
    assert not peers.is_static_elf(sys.executable)  # a dynamically linked interpreter
    (tmp_path / "script").write_text("#!/bin/sh\n")
    (tmp_path / "short").write_bytes(b"\x7fELF\x02\x01")
    assert not peers.is_static_elf(str(tmp_path / "script"))
    assert not peers.is_static_elf(str(tmp_path / "short"))
    assert not peers.is_static_elf(str(tmp_path / "missing"))


def test_the_check_names_every_missing_peer_in_one_line(empty_path) -> None:
    (empty_path / "tini").write_text("#!/bin/sh\n")
    (empty_path / "tini").chmod(0o755)
    env = {**os.environ, "PATH": str(empty_path)}
    res = subprocess.run(
        [sys.executable, str(PEERS_SCRIPT)],
        capture_output=True,
        text=True,
        env=env,
        timeout=GLOBAL_TIMEOUT,
    )
    assert res.returncode == 1 and res.stdout == ""
    assert res.stderr.count("\n") == 1, res.stderr
    missing = res.stderr.removeprefix("missing peers: ").strip().split(", ")
    assert [m.split()[0] for m in missing] == [n for n in peers.PEERS if n != "tini"]


def test_the_check_passes_when_every_peer_is_there(tmp_path: Path) -> None:
    # Every name found, the two static ones being real static binaries of this machine.
    statics = {n: peers.require_peer(n) for n, p in peers.PEERS.items() if p.static}
    for name, peer in peers.PEERS.items():
        target = statics.get(name) or "/bin/true"
        (tmp_path / peer.names[0]).symlink_to(target)
    env = {**os.environ, "PATH": str(tmp_path)}
    res = subprocess.run(
        [sys.executable, str(PEERS_SCRIPT)],
        capture_output=True,
        text=True,
        env=env,
        timeout=GLOBAL_TIMEOUT,
    )
    assert (res.returncode, res.stderr) == (0, "")
