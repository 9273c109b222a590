"""Real containers for the tests: OCI bundles run with runc, and bare PID namespaces.

A bundle's rootfs is a directory holding busybox (and tini-static), so nothing is
downloaded. A detached container (`runc run -d`) keeps the stdio it is given, so it
gets /dev/null, never a pipe that would hold up whoever reads it. Every container is
named with PREFIX; `delete_leftovers()` removes those a killed session left behind,
and `runc_container()` deletes its container whatever happens.

The container's init is re-parented to the test session (a child subreaper) once
`runc run -d` returns, so after the delete the session reaps it here.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from proctools import GLOBAL_TIMEOUT, wait_until, zombie_children

PREFIX = "zombiectl-test-"
BUSYBOX = "/bin/busybox"
TINI = "/usr/bin/tini-static"
TIMEOUT = GLOBAL_TIMEOUT


# A subshell that returns once the script's shell ($$) has exec'd `sleep`.
WAIT_FOR_SLEEP = 'until read c < /proc/$$/comm && [ "$c" = sleep ]; do sleep 0.01; done'


def orphans_then_sleep(orphans: int) -> str:
    """A sh script whose subshell leaves `orphans` children to the script's shell, which then
    exec's `sleep` and so never reaps them.

    Each orphan exits only once the shell has become `sleep` (its comm, read through $$,
    which names the script's shell in every subshell), so however loaded the machine, sh
    never gets the chance to reap one: the zombies are there by construction, not timing.
    The shell's /proc must be its namespace's own (a container's, or `--mount-proc`).
    """
    if not orphans:
        return "exec sleep 1000"
    return "(" + " ".join([f"({WAIT_FOR_SLEEP}) &"] * orphans) + " exit); exec sleep 1000"


# PID 1 is sh; the subshell leaves two orphans to PID 1, which has exec'd `sleep` by the
# time they exit, and never reaps them.
LEAKY_ARGS = ["/bin/sh", "-c", orphans_then_sleep(2)]
LEAKY_ZOMBIES = 2
# The same under tini -s: tini is PID 1 and reaps what it adopts.
TINI_ARGS = ["/bin/tini", "-s", "--", *LEAKY_ARGS]


def runc_missing() -> str | None:
    """Why runc containers cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "runc containers need root"
    for tool in ("runc", BUSYBOX, TINI):
        if shutil.which(tool) is None and not os.path.exists(tool):
            return f"{tool} is not installed"
    return None


def _runc(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["runc", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=check,
    )


def container_name(suffix: str) -> str:
    """PREFIX, the pid of the test process that owns it, suffix: sessions running side by
    side (xdist workers, two checkouts) never share a name or delete each other's."""
    return f"{PREFIX}{os.getpid()}-{suffix}"


def _owner_alive(name: str) -> bool:
    owner = name[len(PREFIX) :].split("-", 1)[0]
    return owner.isdigit() and os.path.exists(f"/proc/{owner}")


def delete_leftovers() -> list[str]:
    """Force-delete every container named with PREFIX whose owning test process is gone
    (left by an earlier, killed session)."""
    if shutil.which("runc") is None or os.geteuid() != 0:
        return []
    listed = _runc("list", "-q")
    names = [n for n in listed.stdout.split() if n.startswith(PREFIX) and not _owner_alive(n)]
    for name in names:
        _runc("delete", "-f", name)
    return names


def make_bundle(
    root: Path,
    args: list[str],
    *,
    pids_limit: int | None = None,
    cgroups_path: str | None = None,
    capabilities: list[str] = (),  # type: ignore[assignment]
    applets: tuple[str, ...] = (),
    files: dict[str, str] | None = None,
) -> Path:
    """An OCI bundle in root: busybox and tini in a read-only rootfs, PID 1 runs args.

    pids_limit: the container's pids.max; cgroups_path: where runc makes its cgroup
    (a kubepods-style path, say) instead of /NAME; capabilities: more for PID 1;
    applets: more busybox names in /bin; files: path in the rootfs -> text.
    """
    bindir = root / "rootfs" / "bin"
    bindir.mkdir(parents=True)
    shutil.copy2(BUSYBOX, bindir / "busybox")
    shutil.copy2(TINI, bindir / "tini")
    for applet in ("sh", "sleep", *applets):
        (bindir / applet).symlink_to("busybox")
    for path, text in (files or {}).items():
        target = root / "rootfs" / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    subprocess.run(["runc", "spec"], cwd=root, check=True, timeout=TIMEOUT)
    config = json.loads((root / "config.json").read_text())
    config["process"]["terminal"] = False
    config["process"]["args"] = args
    config["root"]["readonly"] = True
    if pids_limit is not None:
        config["linux"].setdefault("resources", {})["pids"] = {"limit": pids_limit}
    if cgroups_path is not None:
        config["linux"]["cgroupsPath"] = cgroups_path
    for kind in config["process"]["capabilities"].values():
        kind.extend(c for c in capabilities if c not in kind)
    (root / "config.json").write_text(json.dumps(config))
    return root


class RuncContainer:
    def __init__(self, name: str, init_pid: int) -> None:
        self.name = name
        self.init_pid = init_pid

    @property
    def pidns(self) -> int:
        link = os.readlink(f"/proc/{self.init_pid}/ns/pid")
        return int(link[5:-1])


@contextlib.contextmanager
def runc_container(
    tmp: Path, suffix: str, args: list[str], **bundle: object
) -> Iterator[RuncContainer]:
    """A detached runc container named PREFIX + suffix; deleted, and its init reaped, after.

    bundle: make_bundle's keyword arguments."""
    name = container_name(suffix)
    bundle_dir = make_bundle(tmp / name, args, **bundle)  # type: ignore[arg-type]
    pidfile = tmp / f"{name}.pid"
    init_pid = None
    try:
        init_pid = run_detached(bundle_dir, name, pidfile)
        yield RuncContainer(name, init_pid)
    finally:
        # Kill first and reap the init (our child once adopted): `runc delete -f` waits
        # for the container's processes, and a zombie of ours would hold it up.
        _runc("kill", name, "KILL")
        if init_pid is not None:
            _reap(init_pid)
        _runc("delete", "-f", name)
        if bundle.get("cgroups_path"):
            remove_cgroup_parents(str(bundle["cgroups_path"]))


def remove_cgroup_parents(path: str) -> None:
    """runc removes a container's own cgroup, not the ones above it that it made: those
    go here, deepest first, in every hierarchy (each is empty by now, or not ours)."""
    elements = [e for e in path.split("/") if e][:-1]
    for mount in Path("/sys/fs/cgroup").iterdir():
        for depth in range(len(elements), 0, -1):
            with contextlib.suppress(OSError):
                (mount.joinpath(*elements[:depth])).rmdir()


def run_detached(bundle: Path, name: str, pidfile: Path) -> int:
    """`runc run -d`; its init's host pid. Its log (not a pipe: see above) is in the error."""
    log = pidfile.with_suffix(".log")
    with open(log, "wb") as out:
        rc = subprocess.run(
            ["runc", "run", "-d", "--pid-file", str(pidfile), "--bundle", str(bundle), name],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            timeout=TIMEOUT,
        ).returncode
    assert rc == 0, f"runc run {name} failed: {log.read_text(errors='replace')}"
    return int(pidfile.read_text())


def _reap(pid: int) -> None:
    """Reap pid if it became our child (a subreaper adopts the container's init)."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return  # not ours, or already reaped
        if done:
            return
        time.sleep(0.01)


def wait_zombies(pid: int, count: int) -> list[int]:
    """Wait until pid has exactly count zombie children; return them."""
    assert wait_until(lambda: len(zombie_children(pid)) == count, TIMEOUT), (
        f"pid {pid} has zombies {zombie_children(pid)}, expected {count}"
    )
    return zombie_children(pid)


@contextlib.contextmanager
def pid_namespace(zombies: int) -> Iterator[int]:
    """`unshare --pid --fork`: a PID namespace without a cgroup of its own.

    Its PID 1 (sh, then `sleep`) holds `zombies` orphans it never reaps. Yields the host
    pid of that PID 1; kills the namespace after (its init's death ends every process in
    it) and reaps the unshare process.
    """
    proc = subprocess.Popen(
        [
            "unshare",
            "--pid",
            "--fork",
            "--mount-proc",
            BUSYBOX,
            "sh",
            "-c",
            orphans_then_sleep(zombies),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_until(lambda: _child_of(proc.pid) is not None, TIMEOUT)
        init = _child_of(proc.pid)
        assert init is not None
        yield init
    finally:
        init = _child_of(proc.pid)
        if init is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(init, signal.SIGKILL)
        try:
            proc.wait(timeout=TIMEOUT)  # unshare exits once its child has
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=TIMEOUT)


def _child_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = f.read().split()
    except OSError:
        return None
    return int(kids[0]) if kids else None
