"""`.ci/run` fails, with one line, when the peers cannot be installed or are missing,
before it lints or tests anything. apt-get, dpkg and make are stubs on a PATH of their
own (the real ones would touch the machine); the shell, python3 and tests/peers.py are
real."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from proctools import GLOBAL_TIMEOUT

ROOT = Path(__file__).resolve().parent.parent
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason=".ci/run installs only as root")


def _stub_path(tmp_path: Path, apt_status: int) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname", "id"):
        real = shutil.which(tool)
        assert real, tool
        (bin_dir / tool).symlink_to(real)
    (bin_dir / "python3").symlink_to(sys.executable)
    stubs = {
        "apt-get": f'echo apt-get "$@" >> {tmp_path}/calls; exit {apt_status}',
        "dpkg": "exit 1",  # nothing is installed yet
        "sleep": "exit 0",
        "systemctl": "exit 0",
        "make": f'echo make "$@" >> {tmp_path}/calls; exit 0',
    }
    for name, body in stubs.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    return bin_dir


def _ci_run(tmp_path: Path, apt_status: int) -> tuple[subprocess.CompletedProcess[str], str]:
    env = {"PATH": str(_stub_path(tmp_path, apt_status)), "HOME": str(tmp_path)}
    res = subprocess.run(
        ["/bin/bash", str(ROOT / ".ci" / "run")],
        capture_output=True,
        text=True,
        env=env,
        timeout=GLOBAL_TIMEOUT,
    )
    calls = tmp_path / "calls"
    return res, calls.read_text() if calls.exists() else ""


@needs_root
def test_a_failed_apt_get_retry_loop_fails_the_run(tmp_path: Path) -> None:
    res, calls = _ci_run(tmp_path, apt_status=100)
    assert res.returncode == 1
    assert res.stderr.splitlines()[-1].startswith("ci: could not install tini dumb-init")
    assert calls.count("apt-get update") == 3
    assert "make" not in calls  # neither lint nor tests ran


@needs_root
def test_a_peer_still_missing_after_installing_fails_the_run(tmp_path: Path) -> None:
    res, calls = _ci_run(tmp_path, apt_status=0)  # "installed", yet nothing is on PATH
    assert res.returncode == 1
    assert res.stderr.count("\n") == 1, res.stderr
    assert res.stderr.startswith("missing peers: tini (package tini), ")
    assert "make" not in calls
