"""`--textfile` in a directory other users can write to: symlinks and foreign files at
PATH, temporaries planted beside it, and the temporaries a killed writer leaves.

The writer runs as root here (the case that matters: a root cron job writing into
node_exporter's directory); the hostile files belong to nobody (uid 65534).
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from proctools import GLOBAL_TIMEOUT

from zombiectl.errors import PermissionDenied
from zombiectl.listing import textfile

NOBODY = 65534
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to own files as nobody")
TEMPORARY = re.compile(r"^\.z\.prom\.[0-9a-f]{16}\.tmp$")


def _owned_by_nobody(path: Path, mode: int, data: bytes = b"theirs\n") -> Path:
    path.write_bytes(data)
    os.chown(path, NOBODY, NOBODY)
    path.chmod(mode)
    return path


def _ages(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then), follow_symlinks=False)


@as_root
@pytest.mark.parametrize("target_mode", [0o666, 0o600], ids=oct)
def test_a_symlink_at_path_is_replaced_not_followed(tmp_path: Path, target_mode: int) -> None:
    """A link to root's 0666 file would make our metrics forgeable, to a 0600 one
    unreadable by node_exporter: PATH becomes our own 0644 file, the target is untouched."""
    target = tmp_path / "elsewhere"
    target.write_bytes(b"root's own\n")
    target.chmod(target_mode)
    path = tmp_path / "z.prom"
    path.symlink_to(target)
    textfile.write_atomically(str(path), b"zombiectl_zombies 1\n")
    st = path.lstat()
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o644
    assert (st.st_uid, path.read_bytes()) == (0, b"zombiectl_zombies 1\n")
    assert target.read_bytes() == b"root's own\n"
    assert stat.S_IMODE(target.stat().st_mode) == target_mode


def test_a_symlink_at_path_to_a_directory_is_replaced(tmp_path: Path) -> None:
    (tmp_path / "adir").mkdir()
    path = tmp_path / "z.prom"
    path.symlink_to(tmp_path / "adir")
    textfile.write_atomically(str(path), b"new\n")
    assert not path.is_symlink() and path.read_bytes() == b"new\n"
    assert os.listdir(tmp_path / "adir") == []


@as_root
@pytest.mark.parametrize("mode", [0o666, 0o644, 0o600], ids=oct)
def test_a_foreign_file_at_path_gives_no_mode(tmp_path: Path, mode: int) -> None:
    path = _owned_by_nobody(tmp_path / "z.prom", mode)
    textfile.write_atomically(str(path), b"zombiectl_zombies 1\n")
    st = path.lstat()
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o644)
    assert path.read_bytes() == b"zombiectl_zombies 1\n"


@pytest.mark.parametrize(
    ("mode", "kept"),
    [(0o640, 0o640), (0o600, 0o600), (0o664, 0o644), (0o646, 0o644), (0o4755, 0o755)],
    ids=oct,
)
def test_our_own_mode_is_kept_unless_group_or_others_may_write(
    tmp_path: Path, mode: int, kept: int
) -> None:
    path = tmp_path / "z.prom"
    path.write_bytes(b"old\n")
    path.chmod(mode)
    textfile.write_atomically(str(path), b"new\n")
    assert stat.S_IMODE(path.stat().st_mode) == kept


@as_root
def test_temporaries_planted_by_another_user_do_not_block_a_write(tmp_path: Path) -> None:
    # Every name the writer could have predicted: its pid, a counter, and a spread of others.
    planted = [f".z.prom.{os.getpid()}.{n}.tmp" for n in range(100)]
    for name in planted:
        _owned_by_nobody(tmp_path / name, 0o644)
        _ages(tmp_path / name, 3600)  # old, but not ours: left alone
    path = tmp_path / "z.prom"
    textfile.write_atomically(str(path), b"zombiectl_zombies 1\n")
    assert path.read_bytes() == b"zombiectl_zombies 1\n"
    assert sorted(os.listdir(tmp_path)) == sorted([*planted, "z.prom"])


@as_root
@pytest.mark.parametrize("owner", [NOBODY, 0], ids=["nobody's link", "root's link"])
def test_a_stale_symlink_planted_as_a_temporary_is_never_followed(
    tmp_path: Path, owner: int
) -> None:
    """An aged link under a temporary's name, to an aged regular file of the writer's:
    followed, it would pass for a stale temporary of ours and be removed."""
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep\n")
    _ages(victim, 3600)
    link = tmp_path / ".z.prom.0123456789abcdef.tmp"
    link.symlink_to(victim)
    os.chown(link, owner, owner, follow_symlinks=False)
    _ages(link, 3600)
    textfile.write_atomically(str(tmp_path / "z.prom"), b"new\n")
    assert victim.read_bytes() == b"keep\n"
    assert link.is_symlink()  # not a regular file: not removed either
    assert (tmp_path / "z.prom").read_bytes() == b"new\n"


@as_root
@pytest.mark.parametrize("planted", ["symlink", "file"])
def test_a_temporary_name_taken_first_is_never_written(
    tmp_path: Path, planted: str, monkeypatch
) -> None:
    """The random source forced, so the first temporary name is one another user has
    already made: a link to a file of root's, or a file of theirs that is writable by
    all. Neither is written through; the next name is used."""
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep\n")
    first, second = b"\x01" * 8, b"\x02" * 8
    taken = tmp_path / f".z.prom.{first.hex()}.tmp"
    if planted == "symlink":
        taken.symlink_to(victim)
        os.chown(taken, NOBODY, NOBODY, follow_symlinks=False)
    else:
        _owned_by_nobody(taken, 0o666)
    draws = iter([first, second])
    monkeypatch.setattr(textfile.os, "urandom", lambda n: next(draws))
    path = tmp_path / "z.prom"
    textfile.write_atomically(str(path), b"new\n")
    assert path.read_bytes() == b"new\n"
    st = path.lstat()
    assert stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid()
    assert victim.read_bytes() == b"keep\n"
    if planted == "symlink":
        assert taken.is_symlink()
    else:
        assert taken.read_bytes() == b"theirs\n" and taken.stat().st_uid == NOBODY
    assert next(draws, None) is None  # both names were drawn: the first one was taken


def test_our_stale_temporary_is_removed_and_a_fresh_one_kept(tmp_path: Path) -> None:
    stale = tmp_path / ".z.prom.00000000000000aa.tmp"
    fresh = tmp_path / ".z.prom.00000000000000bb.tmp"
    other = tmp_path / ".y.prom.00000000000000cc.tmp"  # another textfile's: not ours
    for f in (stale, fresh, other):
        f.write_bytes(b"left by a killed run\n")
    _ages(stale, 11 * 60)
    _ages(other, 11 * 60)
    _ages(fresh, 9 * 60)
    textfile.write_atomically(str(tmp_path / "z.prom"), b"new\n")
    assert sorted(os.listdir(tmp_path)) == sorted([fresh.name, other.name, "z.prom"])


# The writer, killed inside fsync: os.fsync is replaced by one that reports and then
# blocks, so SIGKILL lands after the temporary is written and before the rename.
KILLED_WRITER = """
import os, sys
from zombiectl.listing import textfile
ready, hold = int(sys.argv[2]), int(sys.argv[3])
def fsync(fd):
    os.write(ready, b"x")
    os.read(hold, 1)
os.fsync = fsync
textfile.write_atomically(sys.argv[1], b"zombiectl_zombies 2\\n")
"""


def test_a_killed_writer_leaves_path_as_it_was_and_its_temporary_is_cleaned_later(
    tmp_path: Path,
) -> None:
    path = tmp_path / "z.prom"
    path.write_bytes(b"zombiectl_zombies 1\n")
    ready_r, ready_w = os.pipe()
    hold_r, hold_w = os.pipe()
    argv = [sys.executable, "-c", KILLED_WRITER, str(path), str(ready_w), str(hold_r)]
    proc = subprocess.Popen(argv, pass_fds=(ready_w, hold_r))
    os.close(ready_w)
    os.close(hold_r)
    try:
        assert os.read(ready_r, 1) == b"x"  # EOF (b"") if it died before fsync
        proc.kill()
        assert proc.wait(GLOBAL_TIMEOUT) == -9
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(GLOBAL_TIMEOUT)
        os.close(ready_r)
        os.close(hold_w)
    left = [n for n in os.listdir(tmp_path) if n != "z.prom"]
    assert len(left) == 1 and TEMPORARY.match(left[0]), left
    assert (tmp_path / left[0]).read_bytes() == b"zombiectl_zombies 2\n"
    assert path.read_bytes() == b"zombiectl_zombies 1\n"
    textfile.write_atomically(str(path), b"zombiectl_zombies 3\n")
    assert sorted(os.listdir(tmp_path)) == sorted([left[0], "z.prom"])  # still fresh: kept
    _ages(tmp_path / left[0], 11 * 60)
    textfile.write_atomically(str(path), b"zombiectl_zombies 4\n")
    assert os.listdir(tmp_path) == ["z.prom"]
    assert path.read_bytes() == b"zombiectl_zombies 4\n"


def test_temporary_names_are_unpredictable(tmp_path: Path, monkeypatch) -> None:
    names = []
    real_replace = os.replace

    def replace(src: str, dst: str, **kwargs: int) -> None:
        names.append(src)
        real_replace(src, dst, **kwargs)

    monkeypatch.setattr(textfile.os, "replace", replace)
    for _ in range(3):
        textfile.write_atomically(str(tmp_path / "z.prom"), b"x\n")
    assert len(set(names)) == 3 and all(TEMPORARY.match(n) for n in names), names


@as_root
def test_a_directory_linked_by_another_user_is_refused_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "real")
    os.chown(link, NOBODY, NOBODY, follow_symlinks=False)
    with pytest.raises(PermissionDenied, match="is a symbolic link owned by uid 65534") as info:
        textfile.write_atomically(str(link / "z.prom"), b"x\n")
    assert info.value.exit_code == 4 and "\n" not in str(info.value)
    assert os.listdir(tmp_path / "real") == []


def test_a_directory_linked_by_root_or_the_writer_is_followed(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")  # the writer's own link
    textfile.write_atomically(str(tmp_path / "link" / "z.prom"), b"x\n")
    assert os.listdir(tmp_path / "real") == ["z.prom"]


@pytest.mark.root
def test_a_full_disk_is_one_line_and_exit_74_and_the_old_file_stays(tmp_path: Path) -> None:
    """A tmpfs of 16 KiB, filled: the write fails with ENOSPC. The old textfile stays
    whole, no temporary is left, and the exit is the documented 74, not 1."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(disk)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        prom = disk / "z.prom"
        prom.write_text("# old\n")
        fd = os.open(disk / "fill", os.O_WRONLY | os.O_CREAT)
        try:
            with pytest.raises(OSError):
                while True:
                    os.write(fd, b"\0" * 4096)
        finally:
            os.close(fd)
        res = subprocess.run(
            [sys.executable, "-m", "zombiectl", "list", "--textfile", str(prom)],
            capture_output=True,
            text=True,
            timeout=GLOBAL_TIMEOUT,
        )
        assert res.returncode == 74, res
        assert res.stderr.count("\n") == 1 and "No space left" in res.stderr, res.stderr
        assert prom.read_text() == "# old\n"
        assert sorted(p.name for p in disk.iterdir()) == ["fill", "z.prom"]
    finally:
        subprocess.run(["umount", str(disk)], check=True)
