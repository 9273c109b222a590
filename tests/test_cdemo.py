"""The bundled C program: built on first use into a private cache, by hand with make,
and `demo c` without a compiler (exit 5)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest
from proctools import reap_adopted, wait_until, zombie_children

from zombiectl.demo import cbuild as cdemo
from zombiectl.errors import NotSupported

HAVE_CC = cdemo.compiler() is not None
no_cc = pytest.mark.skipif(not HAVE_CC, reason="no C compiler")
C_DEMOS = Path(__file__).resolve().parent.parent / "c_demos"


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    return home


@pytest.mark.needs_cc
@no_cc
def test_build_once_into_a_private_cache(cache_home: Path) -> None:
    binary = cdemo.build("fork_no_wait")
    binary.close()
    assert binary.path.parent == cache_home / "zombiectl"
    assert stat.S_IMODE(binary.path.parent.stat().st_mode) == 0o700
    st = binary.path.lstat()
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700
    assert binary.path.name.startswith("fork_no_wait-") and st.st_uid == os.geteuid()
    again = cdemo.build("fork_no_wait")
    again.close()
    assert again.path == binary.path
    assert binary.path.stat().st_ino == st.st_ino  # reused, not rebuilt
    assert [p.name for p in binary.path.parent.iterdir()] == [binary.path.name]  # no temp left


@pytest.mark.needs_cc
@no_cc
def test_an_edited_source_is_rebuilt(
    cache_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    shutil.copytree(C_DEMOS, src, ignore=shutil.ignore_patterns("bin"))
    monkeypatch.setattr(cdemo, "source_dirs", lambda: [src])
    first = cdemo.build("fork_no_wait")
    first.close()
    with open(src / "fork_no_wait.c", "a") as f:
        f.write("\n/* edited */\n")
    second = cdemo.build("fork_no_wait")
    second.close()
    assert second.path != first.path and second.path.is_file()


def test_source_found_in_checkout_and_in_the_installed_package_layout() -> None:
    dirs = cdemo.source_dirs()
    pkg = Path(cdemo.__file__).resolve().parent.parent
    assert dirs == [pkg / "c_demos", pkg.parent / "c_demos"]  # wheel first, then checkout
    assert cdemo.source_path("fork_no_wait").read_text().startswith("/*")


def test_no_compiler_is_exit_5_with_what_to_install(
    zombiectl, cache_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("CC", raising=False)
    with pytest.raises(NotSupported):
        cdemo.build("fork_no_wait")
    res = zombiectl("demo", "c", "--count", "2")
    assert res.returncode == 5
    assert res.stderr.count("\n") == 1 and "apt-get install gcc" in res.stderr
    assert res.stdout == ""


@pytest.mark.needs_cc
@no_cc
def test_demo_c_matches_the_model(zombiectl, cache_home: Path) -> None:
    res = zombiectl(
        "demo",
        "c",
        "--json",
        "--count",
        "4",
        "--interval",
        "0.02",
        "--lifetime",
        "0.02",
        "--hold",
        "0.1",
    )
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout.splitlines()[-1])
    assert summary["strategy"] == "c" and summary["final_zombies"] == 4
    assert summary["ok"] and summary["leftover"] == 0


@pytest.mark.needs_cc
@no_cc
def test_makefile_builds_by_hand_and_the_program_leaks(tmp_path: Path) -> None:
    if shutil.which("make") is None:
        pytest.skip("no make")
    work = tmp_path / "c_demos"
    shutil.copytree(C_DEMOS, work, ignore=shutil.ignore_patterns("bin"))
    subprocess.run(["make", "-s", "-C", str(work)], check=True, capture_output=True)
    binary = work / "bin" / "fork_no_wait"
    usage = subprocess.run([str(binary), "0"], capture_output=True, text=True)
    assert usage.returncode == 2 and "COUNT" in usage.stderr
    # The post's C program without zombiectl: 3 children, never waited for.
    proc = subprocess.Popen([str(binary), "3", "0.01", "0"], stdout=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: len(zombie_children(proc.pid)) == 3)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        reap_adopted()


@pytest.mark.needs_cc
@no_cc
def test_a_build_removes_what_killed_builds_left_and_nothing_newer(cache_home: Path) -> None:
    cache = cache_home / "zombiectl"
    cache.mkdir(parents=True, mode=0o700)
    old_dir, old_tmp = cache / ".build-0123456789abcdef", cache / ".fork_no_wait-x.1234.tmp"
    fresh_dir = cache / ".build-fedcba9876543210"
    for d in (old_dir, fresh_dir):
        d.mkdir(mode=0o700)
        (d / "fork_no_wait-x").write_bytes(b"half a binary")
    old_tmp.write_bytes(b"half a copy")
    an_hour_ago = time.time() - 3600
    for path in (old_dir, old_tmp):
        os.utime(path, (an_hour_ago, an_hour_ago))
    binary = cdemo.build("fork_no_wait")
    binary.close()
    assert sorted(p.name for p in cache.iterdir()) == sorted([fresh_dir.name, binary.path.name])


@pytest.mark.needs_cc
@no_cc
def test_cc_with_bytes_that_are_not_utf8_builds(
    cache_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The environment is bytes: CC="gcc -DX=\xff" reaches Python as a lone surrogate.
    gcc = shutil.which("gcc") or shutil.which("cc")
    assert gcc is not None
    monkeypatch.setenv("CC", f"{gcc} -DZOMBIECTL_UNUSED=\udcff")
    binary = cdemo.build("fork_no_wait")
    binary.close()
    assert binary.path.name.startswith("fork_no_wait-")
