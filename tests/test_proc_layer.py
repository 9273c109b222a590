"""The platform layer's readers against a real process, with Python's own file reading,
os.stat and the argv we gave as the oracles."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest
from proctools import GLOBAL_TIMEOUT

from zombiectl.proc import ns
from zombiectl.proc.files import SMALL, bcat, pid_path
from zombiectl.proc.table import parse_signal_masks, read_argv, read_cmdline, signal_masks

# Empty words, a byte that is not UTF-8, and a word longer than one small read.
ARGV = ["", "x\udcffy", "", "z" * 5000]


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    # Mappings of alternating protection never merge: a maps file of many pages.
    code = (
        "import mmap, sys, time\n"
        "held = [mmap.mmap(-1, 4096, prot=mmap.PROT_READ | (i % 2) * mmap.PROT_WRITE)"
        " for i in range(300)]\n"
        "sys.stdout.write('ready\\n'); sys.stdout.flush(); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, *ARGV], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        yield proc
    finally:
        proc.kill()
        proc.wait(GLOBAL_TIMEOUT)


def test_a_file_listed_record_by_record_is_read_whole(sleeper) -> None:
    """maps, like mountinfo, comes about a page per read: `whole` reads on to the end."""
    path = pid_path(sleeper.pid, "maps")
    with open(path, "rb") as f:
        expected = f.read()
    assert len(expected) > SMALL  # or the test proves nothing
    assert bcat(path, 1 << 20, whole=True) == expected
    assert bcat(path, 100, whole=True) == expected[:100]  # still bounded


def test_argv_keeps_empty_words_and_any_byte(sleeper) -> None:
    want = [sys.executable, "-c", sleeper.args[2], *ARGV]
    got = read_argv(sleeper.pid, 1 << 16)
    assert got[:3] == want[:3]
    assert got[3:] == ["", "x\\xffy", "", "z" * 5000]
    raw = read_cmdline(sleeper.pid)
    assert raw is not None and len(raw) == SMALL  # bounded by default


def test_argv_of_a_process_that_is_gone_is_empty() -> None:
    proc = subprocess.Popen(["true"])
    proc.wait(GLOBAL_TIMEOUT)
    assert read_argv(proc.pid) == [] and read_cmdline(proc.pid) is None


def test_namespace_inode_is_the_links_inode(sleeper) -> None:
    for kind in ("pid", "user", "mnt"):
        assert (
            ns.namespace_inode(sleeper.pid, kind)
            == os.stat(f"/proc/{sleeper.pid}/ns/{kind}").st_ino
        )
    assert ns.namespace_inode(2**40, "pid") is None


def test_entering_ones_own_namespaces_needs_no_user_namespace() -> None:
    assert ns.to_enter(os.getpid()) == ns.CLONE_NEWPID | ns.CLONE_NEWNS


def test_signal_masks_show_a_blocked_pending_signal() -> None:
    """A child that blocks SIGUSR1 and is sent it: pending (to the process) and blocked,
    as the kernel reports it, for a mask reader that reads the right bit."""
    code = (
        "import signal, sys, time\n"
        "signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])\n"
        "sys.stdout.write('ready\\n'); sys.stdout.flush(); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        bit = 1 << (signal.SIGUSR1 - 1)
        masks = signal_masks(proc.pid)
        assert masks is not None and masks["SigBlk"] & bit and not masks["ShdPnd"] & bit
        os.kill(proc.pid, signal.SIGUSR1)
        masks = signal_masks(proc.pid)
        assert masks is not None and masks["ShdPnd"] & bit
    finally:
        proc.kill()
        proc.wait(GLOBAL_TIMEOUT)
    assert signal_masks(proc.pid) is None
    assert parse_signal_masks("SigBlk:\tnot hex\n") is None
