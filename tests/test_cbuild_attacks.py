"""The C demo cache attacked for real, as root: nothing another user wrote is executed.

Each attack plants a program where `demo c` would look for its binary. The planted
program only creates a marker file: if the marker ever exists, zombiectl ran code it
did not build. A refused cache is one line naming the path and the fix, exit 4, and
the directory is left as it was (never chmod-ed into shape).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from proctools import reap_adopted, wait_until, zombie_children

from zombiectl.demo import cbuild

NOBODY = 65534
DEMO_C = ["demo", "c", "--count", "2", "--interval", "0", "--lifetime", "0", "--hold", "0"]
MARKER_SRC = """
#include <fcntl.h>
#include <unistd.h>
int main(void) { int fd = open(MARKER, O_WRONLY | O_CREAT, 0644); return fd < 0; }
"""

pytestmark = [
    pytest.mark.needs_cc,
    pytest.mark.root,
    pytest.mark.skipif(cbuild.compiler() is None, reason="no C compiler"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to plant files as another user"),
]


@pytest.fixture(scope="module")
def attacker(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A real ELF program that creates a marker file, and the marker's path."""
    work = tmp_path_factory.mktemp("attacker")
    marker = work / "MARKER"
    (work / "evil.c").write_text(MARKER_SRC)
    cc = cbuild.compiler()
    assert cc is not None
    subprocess.run(
        [*cc, f'-DMARKER="{marker}"', "-o", str(work / "evil"), str(work / "evil.c")],
        check=True,
        capture_output=True,
    )
    return work / "evil", marker


@pytest.fixture
def evil(attacker: tuple[Path, Path]) -> Iterator[tuple[Path, Path]]:
    program, marker = attacker
    marker.unlink(missing_ok=True)
    yield program, marker
    marker.unlink(missing_ok=True)


def predictable_name(program: str = "fork_no_wait") -> str:
    cc = cbuild.compiler()
    assert cc is not None
    return cbuild.binary_name(program, cbuild.source_path(program), cc)


def plant(
    program: Path, where: Path, owner: int = NOBODY, mode: int = 0o755, name: str = "fork_no_wait"
) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    target = where / predictable_name(name)
    shutil.copyfile(program, target)
    os.chown(target, owner, owner)
    os.chmod(target, mode)
    return target


def demo_c(zombiectl) -> subprocess.CompletedProcess[str]:
    return zombiectl(*DEMO_C, "--json")


def assert_refused(res: subprocess.CompletedProcess[str], path: Path, *words: str) -> None:
    assert res.returncode == 4, res.stderr
    assert res.stdout == ""
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert str(path) in res.stderr and "fix:" in res.stderr
    for word in words:
        assert word in res.stderr


def assert_ran_ours(res: subprocess.CompletedProcess[str]) -> None:
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout.splitlines()[-1])
    assert summary["final_zombies"] == 2 and summary["ok"] and summary["leftover"] == 0


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "cache"
    home.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    return home


# ------------------------------------------------------------------ planted binaries


@pytest.mark.parametrize(
    "kind", ["foreign file", "group-writable file", "link to a root program", "fifo"]
)
def test_a_planted_binary_in_the_cache_is_rebuilt_never_run(
    zombiectl, cache_home: Path, evil: tuple[Path, Path], kind: str
) -> None:
    program, marker = evil
    cache = cache_home / "zombiectl"
    cache.mkdir(mode=0o700)
    target = cache / predictable_name()
    if kind == "foreign file":
        plant(program, cache)
    elif kind == "group-writable file":
        plant(program, cache, owner=0, mode=0o775)
    elif kind == "fifo":
        os.mkfifo(target, 0o700)  # opening it for reading would block for ever
    else:
        os.symlink(program, target)  # root's own program: only the link is wrong
    res = demo_c(zombiectl)
    assert_ran_ours(res)
    assert not marker.exists()
    st = target.lstat()  # replaced by a binary of ours
    assert stat.S_ISREG(st.st_mode) and st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o700


def test_demo_server_c_never_runs_a_planted_server(
    zombiectl, cache_home: Path, evil: tuple[Path, Path]
) -> None:
    program, marker = evil
    target = plant(program, cache_home / "zombiectl", name="echo_server")
    os.chmod(target.parent, 0o700)
    res = zombiectl("demo", "server", "--impl", "c", "--clients", "2", "--json")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout.splitlines()[-1])
    assert summary["impl"] == "c" and summary["echoes_ok"] == 2 and summary["ok"]
    assert not marker.exists()
    assert target.lstat().st_uid == 0  # rebuilt over the planted file


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o777])
def test_a_cache_others_may_write_to_is_refused_and_left_alone(
    zombiectl, cache_home: Path, evil: tuple[Path, Path], mode: int
) -> None:
    program, marker = evil
    cache = cache_home / "zombiectl"
    cache.mkdir()
    os.chmod(cache, mode)
    plant(program, cache, owner=0, mode=0o700)  # as if planted while it was open
    res = demo_c(zombiectl)
    assert_refused(res, cache, "group or others may write", f"chmod go-w {cache}")
    assert not marker.exists()
    assert stat.S_IMODE(cache.stat().st_mode) == mode  # not chmod-ed behind the user's back


@pytest.mark.parametrize("which", ["cache", "parent"])
def test_a_directory_owned_by_another_user_is_refused(
    zombiectl, cache_home: Path, evil: tuple[Path, Path], which: str
) -> None:
    program, marker = evil
    cache = cache_home / "zombiectl"
    cache.mkdir(mode=0o700)
    plant(program, cache, owner=0, mode=0o700)
    foreign = cache if which == "cache" else cache_home
    os.chown(foreign, NOBODY, NOBODY)
    res = demo_c(zombiectl)
    assert_refused(res, foreign, f"owned by uid {NOBODY}")
    assert not marker.exists()


def test_a_symlinked_cache_dir_is_refused(
    zombiectl, cache_home: Path, tmp_path: Path, evil: tuple[Path, Path]
) -> None:
    program, marker = evil
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    # Root's own directory and file: only the link on the way makes them untrusted.
    plant(program, elsewhere, owner=0, mode=0o700)
    (cache_home / "zombiectl").symlink_to(elsewhere)
    res = demo_c(zombiectl)
    assert_refused(res, cache_home / "zombiectl", "symbolic link")
    assert not marker.exists()


@pytest.fixture
def user_tree() -> Iterator[Path]:
    """A home directory that belongs to another user, on a path that user can reach."""
    base = Path(tempfile.mkdtemp(prefix="zombiectl-home-"))
    os.chmod(base, 0o755)
    home = base / "home"
    home.mkdir()
    os.chown(home, NOBODY, NOBODY)
    try:
        yield home
    finally:
        shutil.rmtree(base)


@pytest.mark.parametrize("via", ["HOME", "XDG_CACHE_HOME"])
def test_a_cache_inside_another_users_tree_is_refused(
    zombiectl,
    user_tree: Path,
    evil: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    via: str,
) -> None:
    """`sudo -E zombiectl demo c`: HOME is the user's, who owns everything above the cache."""
    program, marker = evil
    cache = user_tree / ".cache" / "zombiectl"
    plant(program, cache, owner=0, mode=0o700)  # looks like an earlier root build
    os.chown(cache.parent, NOBODY, NOBODY)
    if via == "HOME":
        monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
        monkeypatch.setenv("HOME", str(user_tree))
    else:
        monkeypatch.setenv("XDG_CACHE_HOME", str(user_tree / ".cache"))
    res = demo_c(zombiectl)
    assert_refused(res, user_tree, f"owned by uid {NOBODY}")
    assert not marker.exists()


# ------------------------------------------------------------------ the race


def _swap_forever(cache: Path, attacker_dir: Path, stop: threading.Event) -> None:
    """Swap the cache directory for a link to the attacker's, and back, until told."""
    aside = cache.with_name("zombiectl.real")
    while not stop.is_set():
        try:
            os.rename(cache, aside)
            os.symlink(attacker_dir, cache)
            time.sleep(0.001)
            os.unlink(cache)
            os.rename(aside, cache)
        except OSError:
            # zombiectl made a fresh cache while the name was free: keep that one.
            shutil.rmtree(aside, ignore_errors=True)
        time.sleep(0.001)


def _forget_binary(cache: Path) -> None:
    """Remove the cached binary, through the real directory only (never via the link)."""
    try:
        fd = os.open(cache, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return  # the link (or nothing) is in place right now
    try:
        for name in os.listdir(fd):
            if name.startswith("fork_no_wait-"):
                os.unlink(name, dir_fd=fd)
    finally:
        os.close(fd)


@pytest.mark.slow
def test_a_cache_swapped_for_a_link_while_demo_c_runs_never_runs_the_attackers_binary(
    zombiectl, cache_home: Path, tmp_path: Path, evil: tuple[Path, Path]
) -> None:
    program, marker = evil
    attacker_dir = tmp_path / "attacker"
    plant(program, attacker_dir)
    os.chown(attacker_dir, NOBODY, NOBODY)
    os.chmod(attacker_dir, 0o777)
    cache = cache_home / "zombiectl"
    cache.mkdir(mode=0o700)
    stop = threading.Event()
    swapper = threading.Thread(target=_swap_forever, args=(cache, attacker_dir, stop))
    swapper.start()
    codes = []
    try:
        for run in range(20):
            if run % 2 == 0:  # half the runs build while the swapping goes on
                _forget_binary(cache)
            res = demo_c(zombiectl)
            codes.append(res.returncode)
            assert res.returncode in (0, 4), res.stderr
            if res.returncode == 4:
                assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
            assert not marker.exists(), f"run {run} executed the attacker's binary"
    finally:
        stop.set()
        swapper.join()
    assert not marker.exists()
    assert (attacker_dir / predictable_name()).exists()  # the bait was there all along
    assert set(codes) <= {0, 4}


# ------------------------------------------------------------------ by descriptor


def _run_as(uid: int | None, home: Path | None) -> tuple[int, int]:
    """Fork; the child (as `uid`, with its own HOME) builds fork_no_wait and execs it from
    the descriptor it checked. Returns (pid, read end of a pipe carrying any error)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            os.close(r)
            if uid is not None:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
            if home is not None:
                os.environ["HOME"] = str(home)
                os.environ.pop("XDG_CACHE_HOME", None)
            binary = cbuild.build("fork_no_wait")
            os.close(w)
            os.execve(binary.fd, ["fork_no_wait", "2", "0", "0"], dict(os.environ))
        except BaseException as err:
            os.write(w, repr(err).encode())
        finally:
            os._exit(70)
    os.close(w)
    return pid, r


def _comm(pid: int) -> str:
    with open(f"/proc/{pid}/comm") as f:
        return f.read().strip()


def _check_named_and_leaking(pid: int, r: int) -> None:
    try:
        assert wait_until(
            lambda: len(zombie_children(pid)) == 2 or os.waitpid(pid, os.WNOHANG)[0] != 0, 20
        )
        error = os.read(r, 4096).decode()
        assert not error, error
        assert _comm(pid) == "fork_no_wait"  # not the descriptor's number
        assert {_comm(z) for z in zombie_children(pid)} == {"fork_no_wait"}
    finally:
        os.close(r)
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except OSError:
            pass  # it had already exited (and was reaped) with an error
        reap_adopted()


def test_a_descriptor_exec_keeps_the_programs_name(cache_home: Path) -> None:
    pid, r = _run_as(None, None)
    _check_named_and_leaking(pid, r)


def test_an_unprivileged_user_builds_and_runs_from_a_private_cache(user_tree: Path) -> None:
    pid, r = _run_as(NOBODY, user_tree)
    _check_named_and_leaking(pid, r)
    cache = user_tree / ".cache" / "zombiectl"
    st = cache.stat()
    assert st.st_uid == NOBODY and stat.S_IMODE(st.st_mode) == 0o700
    (built,) = cache.iterdir()
    assert built.stat().st_uid == NOBODY and built.name == predictable_name()


# ------------------------------------------------------------------ compilers


@pytest.mark.parametrize(
    ("cc", "code", "words"),
    [
        ("false", 5, ["the C compiler false", "exit status 1", "printed nothing"]),
        ("/nonexistent", 5, ["CC=/nonexistent was not found", "apt-get install gcc"]),
        ("sh -c 'kill -9 $$'", 5, ["the C compiler sh", "killed by signal 9"]),
    ],
)
def test_a_compiler_that_does_not_run_or_fails_is_one_line(
    zombiectl,
    cache_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    cc: str,
    code: int,
    words: list[str],
) -> None:
    monkeypatch.setenv("CC", cc)
    res = demo_c(zombiectl)
    assert res.returncode == code, res.stderr
    assert res.stdout == "" and res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    for word in words:
        assert word in res.stderr
    cache = cache_home / "zombiectl"
    assert not cache.exists() or list(cache.iterdir()) == []  # nothing half-built is left
