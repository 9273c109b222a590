"""Paths zombiectl writes, walked without trusting another user's symbolic links.

As root (the case that matters: a CI runner or cron job writing a report into a user's
workspace): a directory on the way that is a link made by another user (nobody, uid
65534) is refused with exit 4 and one line, and nothing is written where it points;
links of root's or of the caller's own are followed, their targets walked the same way.
The oracle for where a walk ends is the kernel's own `os.stat` of the real path.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run_zombiectl
from proctools import GLOBAL_TIMEOUT

from zombiectl import safepath
from zombiectl.errors import BadUsage, PermissionDenied
from zombiectl.safepath import LinkRefused, create_file, open_directory, walk

NOBODY = 65534
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to own links as nobody")


def nobody_link(link: Path, target: Path | str) -> Path:
    link.symlink_to(target)
    os.chown(link, NOBODY, NOBODY, follow_symlinks=False)
    return link


def same_dir(fd: int, path: Path) -> bool:
    st, real = os.fstat(fd), os.stat(path)
    return (st.st_dev, st.st_ino) == (real.st_dev, real.st_ino)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """/…/home/u/ws: a user's workspace (owned by nobody), and /…/var/tmp of root's."""
    ws = tmp_path / "home" / "u" / "ws"
    ws.mkdir(parents=True)
    for d in (tmp_path / "home" / "u", ws):
        os.chown(d, NOBODY, NOBODY)
    (tmp_path / "var" / "tmp").mkdir(parents=True)
    return ws


# --------------------------------------------------------------------------- walk


def test_walk_ends_where_the_kernel_resolves(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "rel").symlink_to("a/b")  # the caller's own links: followed
    (tmp_path / "abs").symlink_to(tmp_path / "a")
    (tmp_path / "chain").symlink_to("abs")
    for given, real in (
        (tmp_path / "a" / "b", tmp_path / "a" / "b"),
        (tmp_path / "rel", tmp_path / "a" / "b"),
        (tmp_path / "abs" / "b", tmp_path / "a" / "b"),
        (tmp_path / "chain" / "b" / ".", tmp_path / "a" / "b"),
        (f"{tmp_path}/rel/..", tmp_path / "a"),  # .. of where the link led, as the kernel
        (f"{tmp_path}//a/./b/", tmp_path / "a" / "b"),
    ):
        fd = walk(given)
        try:
            assert same_dir(fd, real), given
        finally:
            os.close(fd)


def test_a_relative_path_starts_at_the_working_directory(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "x").mkdir()
    monkeypatch.chdir(tmp_path)
    fd = open_directory("x")
    try:
        assert same_dir(fd, tmp_path / "x")
        assert os.listdir(fd) == []  # a readable descriptor, not an O_PATH one
    finally:
        os.close(fd)


def test_a_loop_of_links_is_an_error_not_a_hang(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    with pytest.raises(OSError) as info:
        walk(tmp_path / "a")
    assert info.value.errno == errno.ELOOP


def test_a_missing_directory_names_the_component(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        walk(tmp_path / "no" / "such")
    assert info.value.filename == str(tmp_path / "no")


def test_a_file_on_the_way_is_not_a_directory(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    with pytest.raises(NotADirectoryError):
        walk(tmp_path / "f" / "x")


@as_root
def test_another_users_link_is_refused_wherever_it_is(tmp_path: Path) -> None:
    (tmp_path / "real" / "deep").mkdir(parents=True)
    nobody_link(tmp_path / "theirs", tmp_path / "real")
    (tmp_path / "mine").symlink_to("theirs")  # root's link to their link: still theirs
    for given in (tmp_path / "theirs", tmp_path / "theirs" / "deep", tmp_path / "mine"):
        with pytest.raises(LinkRefused) as info:
            walk(given)
        assert info.value.exit_code == 4 and info.value.owner == NOBODY
        assert info.value.path == str(tmp_path / "theirs")
        assert "\n" not in str(info.value)


@as_root
def test_without_follow_links_even_roots_link_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(LinkRefused, match="no link is followed"):
        walk(tmp_path / "link", follow_links=False)


def test_create_mode_makes_what_is_missing_and_check_sees_every_step(tmp_path: Path) -> None:
    leaf = tmp_path / "new" / "dir"
    seen: list[tuple[str, bool]] = []
    fd = walk(leaf, create_mode=0o700, check=lambda st, here, last: seen.append((here, last)))
    os.close(fd)
    assert leaf.is_dir() and (leaf.stat().st_mode & 0o077) == 0
    prefixes = [str(Path(*leaf.parts[: i + 1])) for i in range(len(leaf.parts))]
    assert seen == [(p, p == str(leaf)) for p in prefixes]


# --------------------------------------------------------------------------- create_file


@as_root
def test_the_reported_attack_on_junit_xml_is_refused(workspace: Path, tmp_path: Path) -> None:
    """As root, --junit-xml home/u/ws/reports/z.xml where u made reports a link to a
    directory of root's: refused before the check runs, nothing written there."""
    victim_dir = tmp_path / "var" / "tmp"
    nobody_link(workspace / "reports", victim_dir)
    marker = tmp_path / "ran"
    res = run_zombiectl(
        "check", "--junit-xml", str(workspace / "reports" / "z.xml"), "--", "touch", str(marker)
    )
    assert res.returncode == 4, res
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert f"{workspace / 'reports'} is a symbolic link owned by uid {NOBODY}" in res.stderr
    assert os.listdir(victim_dir) == [] and not marker.exists()


@as_root
def test_the_same_attack_on_textfile_is_refused(workspace: Path, tmp_path: Path) -> None:
    victim_dir = tmp_path / "var" / "tmp"
    nobody_link(workspace / "reports", victim_dir)
    res = run_zombiectl("list", "--textfile", str(workspace / "reports" / "z.prom"))
    assert res.returncode == 4, res
    assert res.stderr.count("\n") == 1 and "symbolic link owned by uid 65534" in res.stderr
    assert os.listdir(victim_dir) == []


@as_root
def test_a_link_of_roots_own_is_followed(workspace: Path, tmp_path: Path) -> None:
    target = tmp_path / "var" / "tmp"
    (workspace / "reports").symlink_to(target)  # root's own link, in their directory
    res = run_zombiectl("check", "--junit-xml", str(workspace / "reports" / "z.xml"), "--", "true")
    assert res.returncode == 0, res
    assert os.listdir(target) == ["z.xml"] and (target / "z.xml").stat().st_uid == 0


def test_create_file_refuses_what_is_not_a_plain_file_of_ours(tmp_path: Path) -> None:
    (tmp_path / "target").write_text("keep")
    (tmp_path / "link.xml").symlink_to(tmp_path / "target")
    with pytest.raises(BadUsage, match="is a symbolic link"):
        create_file(str(tmp_path / "link.xml"), what="--junit-xml")
    (tmp_path / "dir.xml").mkdir()
    with pytest.raises(BadUsage):
        create_file(str(tmp_path / "dir.xml"), what="--junit-xml")
    os.link(tmp_path / "target", tmp_path / "hard.xml")
    with pytest.raises(PermissionDenied, match="other hard links"):
        create_file(str(tmp_path / "hard.xml"), what="--junit-xml")
    with pytest.raises(BadUsage, match="No such file"):
        create_file(str(tmp_path / "no" / "j.xml"), what="--junit-xml")
    assert (tmp_path / "target").read_text() == "keep"
    fd = create_file(str(tmp_path / "new.xml"), what="--junit-xml")
    os.close(fd)
    assert (tmp_path / "new.xml").is_file()


@as_root
def test_create_file_refuses_another_users_file(tmp_path: Path) -> None:
    theirs = tmp_path / "j.xml"
    theirs.write_text("theirs")
    os.chown(theirs, NOBODY, NOBODY)
    with pytest.raises(PermissionDenied, match="owned by another user"):
        create_file(str(theirs), what="--junit-xml")
    assert theirs.read_text() == "theirs"


# --------------------------------------------------------------------------- as another user

AS_USER = r"""
import os, sys
from zombiectl.safepath import walk, LinkRefused  # before the interpreter is out of reach
os.setgid(int(sys.argv[1])); os.setuid(int(sys.argv[1]))
for path in sys.argv[2:]:
    try:
        os.close(walk(path))
        print("followed", path)
    except LinkRefused as err:
        print("refused", path, err.owner)
"""


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A directory every user can reach (pytest's own tmp_path is root's, 0700)."""
    with tempfile.TemporaryDirectory(prefix="zombiectl-safepath-") as d:
        os.chmod(d, 0o755)
        yield Path(d)


@as_root
def test_an_unprivileged_caller_follows_its_own_links_and_roots_only(shared_tmp: Path) -> None:
    (shared_tmp / "real").mkdir()
    nobody_link(shared_tmp / "own", shared_tmp / "real")  # the caller's: followed
    (shared_tmp / "roots").symlink_to(shared_tmp / "real")  # root's: followed
    other = shared_tmp / "other"  # a third user's: refused
    other.symlink_to(shared_tmp / "real")
    os.chown(other, NOBODY - 1, NOBODY - 1, follow_symlinks=False)
    res = subprocess.run(
        [
            sys.executable,
            "-c",
            AS_USER,
            str(NOBODY),
            *(str(shared_tmp / n) for n in ("own", "roots", "other")),
        ],
        capture_output=True,
        text=True,
        timeout=GLOBAL_TIMEOUT,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [
        f"followed {shared_tmp / 'own'}",
        f"followed {shared_tmp / 'roots'}",
        f"refused {other} {NOBODY - 1}",
    ]


def test_the_c_cache_walks_with_the_same_function(monkeypatch, tmp_path: Path) -> None:
    """One walker serves every path written: the C cache goes through safepath.walk."""
    from zombiectl.demo import cbuild

    calls: list[dict[str, object]] = []
    real_walk = safepath.walk

    def spy(path: object, **kwargs: object) -> int:
        calls.append(kwargs)
        return real_walk(path, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(safepath, "walk", spy)
    cache = cbuild.open_cache(tmp_path / "cache")
    os.close(cache.fd)
    assert len(calls) == 1 and calls[0]["follow_links"] is False
    assert calls[0]["create_mode"] == 0o700
