"""Containers on a busy node, with real runc containers: per-container metrics that no
number of host leakers pushes out, reap that never stops a container by accident,
attribution as an unprivileged user, trusted ids, the active probe, Kubernetes names.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from containers import (
    BUSYBOX,
    LEAKY_ARGS,
    LEAKY_ZOMBIES,
    TIMEOUT,
    WAIT_FOR_SLEEP,
    RuncContainer,
    container_name,
    orphans_then_sleep,
    pid_namespace,
    runc_container,
    wait_zombies,
)
from peers import require_peer
from proctools import proc_exists, wait_until, zombie_children
from promstack import families, node_exporter, prometheus, sample

from zombiectl.proc.containers import mount_of


@pytest.fixture(autouse=True)
def _container_peers() -> None:
    if os.geteuid() != 0:
        pytest.skip("runc containers need root")
    for peer in ("runc", "busybox-static", "tini-static"):
        require_peer(peer)


LEAKY = container_name("leaky")
LIMITED = container_name("limited")
PIDS_LIMIT = 64
HOST_PARENTS = 25
HOST_ZOMBIES = 10


@pytest.fixture
def leaky(tmp_path: Path) -> Iterator[RuncContainer]:
    with runc_container(tmp_path, "leaky", LEAKY_ARGS) as c:
        wait_zombies(c.init_pid, LEAKY_ZOMBIES)
        yield c


def _series(text: str) -> list[str]:
    return [ln.rsplit(" ", 1)[0] for ln in text.splitlines() if ln and not ln.startswith("#")]


# --------------------------------------------------------------------------- metrics


def test_container_series_hold_however_many_host_parents_leak_more(
    leaky: RuncContainer, tmp_path: Path, zombie_parent, zombiectl
) -> None:
    """25 host parents of 10 zombies each fill the top 20 of zombies_by_parent; the
    container's PID 1 (2 zombies) has no room there, and keeps its own series."""
    hosts = [zombie_parent(HOST_ZOMBIES) for _ in range(HOST_PARENTS)]
    with runc_container(tmp_path, "limited", LEAKY_ARGS, pids_limit=PIDS_LIMIT) as limited:
        wait_zombies(limited.init_pid, LEAKY_ZOMBIES)
        prom = tmp_path / "zombiectl.prom"
        res = zombiectl("list", "--textfile", str(prom))
        assert res.returncode == 0, res.stderr
        text = prom.read_text()
    fams = families(text)
    by_parent = {s.labels["ppid"] for s in fams["zombiectl_zombies_by_parent"]}
    assert len(by_parent) == 20
    assert len(by_parent & {str(h.pid) for h in hosts}) >= 20 - _bigger_elsewhere(fams, hosts)
    assert str(leaky.init_pid) not in by_parent
    for name in (LEAKY, LIMITED):
        assert sample(fams, "zombiectl_container_zombies", container=name) == LEAKY_ZOMBIES
        assert sample(fams, "zombiectl_container_init_zombies", container=name) == LEAKY_ZOMBIES
        # PID 1 (sleep) and its two zombies: zombies hold a pid in their cgroup.
        assert sample(fams, "zombiectl_container_pids", container=name) == 1 + LEAKY_ZOMBIES
    assert sample(fams, "zombiectl_container_pids_max", container=LIMITED) == PIDS_LIMIT
    assert sample(fams, "zombiectl_container_pids_max", container=LEAKY) is None  # unlimited
    assert len(_series(text)) == len(set(_series(text)))


def _bigger_elsewhere(fams: dict, hosts: list) -> int:
    """Parents of other suites running beside this one that hold more zombies than ours."""
    ours = {str(h.pid) for h in hosts}
    return sum(
        1
        for s in fams["zombiectl_zombies_by_parent"]
        if s.labels["ppid"] not in ours and s.value >= HOST_ZOMBIES
    )


@pytest.mark.slow
def test_prometheus_alert_expressions_hold_the_container_on_a_busy_host(
    leaky: RuncContainer, tmp_path: Path, zombie_parent, zombiectl
) -> None:
    """The real pipeline: zombiectl's textfiles, node_exporter, Prometheus evaluating the
    shipped rules' expressions. With 25 host parents holding more, ContainerInitNotReaping
    still names the leaky container (its `for:` is left to promtool's tests)."""
    textdir = tmp_path / "textfile"
    textdir.mkdir()
    [zombie_parent(HOST_ZOMBIES) for _ in range(HOST_PARENTS)]
    res = zombiectl("list", "--textfile", str(textdir / "zombiectl.prom"))
    assert res.returncode == 0, res.stderr
    res = zombiectl("doctor", "--containers", "--timeout", "0.3", "--container", leaky.name,
                    "--textfile", str(textdir / "zombiectl-doctor.prom"))  # fmt: skip
    assert res.returncode == 1, res.stderr
    rules_file = Path(__file__).resolve().parent.parent / "contrib/prometheus/zombiectl-rules.yml"
    with node_exporter(require_peer("node_exporter"), textdir, tmp_path / "ne.log") as ne:
        workdir = tmp_path / "prometheus"
        workdir.mkdir()
        with prometheus(require_peer("prometheus"), ne.address, rules_file, workdir) as prom:

            def leaky_alerting() -> bool:
                rules = prom.alerting_rules()
                if "ContainerInitNotReaping" not in rules:
                    return False
                found = prom.query(rules["ContainerInitNotReaping"]["query"])
                return any(r["metric"].get("container") == leaky.name for r in found)

            assert wait_until(leaky_alerting, TIMEOUT), prom.log_tail()
            # zombies_by_parent, cut at 20, has no room for it: the old expression misses it.
            old = prom.query('zombiectl_zombies_by_parent{init="true",container!=""} > 0')
            assert not [r for r in old if r["metric"].get("container") == leaky.name]
            for rule in prom.alerting_rules().values():
                assert not rule.get("lastError"), rule


def test_doctor_textfile_writes_each_verdict_and_leaves_unknown_out(
    leaky: RuncContainer, tmp_path: Path, zombiectl
) -> None:
    from containers import TINI_ARGS

    with (
        runc_container(tmp_path, "tini", TINI_ARGS) as tini,
        runc_container(tmp_path, "quiet", ["/bin/sleep", "1000"]) as quiet,
    ):
        prom = tmp_path / "doctor.prom"
        res = zombiectl("doctor", "--containers", "--timeout", "0.3", "--textfile", str(prom),
                        *_only(leaky, tini, quiet))  # fmt: skip
        assert res.returncode == 1, res.stderr
        fams = families(prom.read_text())
        assert sample(fams, "zombiectl_container_init_reaps", container=LEAKY) == 0
        assert sample(fams, "zombiectl_container_init_reaps", container=tini.name) == 1
        # sleep holding nothing: nothing seen either way.
        assert sample(fams, "zombiectl_container_init_reaps", container=quiet.name) is None


def test_doctor_container_needs_containers_and_an_existing_id(zombiectl) -> None:
    res = zombiectl("doctor", "--container", "x")
    assert res.returncode == 2 and "--containers" in res.stderr
    res = zombiectl("doctor", "--containers", "--container", "no\nsuch")
    assert (res.returncode, res.stdout) == (3, "")
    assert res.stderr == "zombiectl: error: no such container: no\\nsuch\n"


def test_doctor_textfile_needs_containers_and_a_prom_name(tmp_path: Path, zombiectl) -> None:
    res = zombiectl("doctor", "--textfile", str(tmp_path / "x.prom"))
    assert res.returncode == 2 and "--containers" in res.stderr
    res = zombiectl("doctor", "--containers", "--textfile", str(tmp_path / "x.txt"))
    assert res.returncode == 2 and ".prom" in res.stderr
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- reap

# tini is PID 1; its one child (the main process) is sh, which leaves a child and then
# exec's sleep: sleep holds that child's zombie and never reaps it. Ending sleep ends
# tini, and with it the container.
MAIN_ARGS = ["/bin/tini", "--", "/bin/sh", "-c", f"({WAIT_FOR_SLEEP}) & exec sleep 1000"]


@pytest.fixture
def under_tini(tmp_path: Path) -> Iterator[tuple[RuncContainer, int]]:
    with runc_container(tmp_path, "main", MAIN_ARGS) as c:
        assert wait_until(lambda: len(_children(c.init_pid)) == 1, TIMEOUT)
        (main,) = _children(c.init_pid)
        wait_zombies(main, 1)
        yield c, main


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(x) for x in f.read().split()]


def _state(name: str) -> str:
    res = subprocess.run(
        ["runc", "state", name], capture_output=True, text=True, timeout=TIMEOUT, check=True
    )
    return str(json.loads(res.stdout)["status"])


def test_reap_refuses_to_end_a_containers_main_process(
    under_tini: tuple[RuncContainer, int], zombiectl
) -> None:
    c, main = under_tini
    res = zombiectl("reap", "--pid", str(main), "--kill-parent", "--force", "--yes",
                    "--timeout", "0.2", "--json")  # fmt: skip
    assert res.returncode == 1, res.stderr
    (row,) = json.loads(res.stdout)["parents"]
    assert (row["result"], row["actions"]) == ("refused", ["SIGCHLD"])
    assert (row["container"], row["stops_container"]) == (c.name, c.name)
    assert f"ending it stops container {c.name}" in row["reason"]
    assert "--stop-container" in row["reason"]
    assert proc_exists(main) and _state(c.name) == "running"


def test_reap_all_never_stops_a_container_even_when_asked(
    under_tini: tuple[RuncContainer, int], zombiectl
) -> None:
    """Planned only (--dry-run): a real --all would signal every parent on the machine."""
    c, main = under_tini
    res = zombiectl("reap", "--all", "--kill-parent", "--force", "--stop-container",
                    "--dry-run", "--json")  # fmt: skip
    assert res.returncode == 0, res.stderr
    rows = {r["pid"]: r for r in json.loads(res.stdout)["parents"]}
    assert rows[main]["actions"] == ["SIGCHLD"]
    assert f"ending it stops container {c.name}" in rows[main]["reason"]
    # The dry run names each parent's container, the host's as null.
    assert rows[main]["container"] == c.name
    # Named, the same parent is planned to end, with the warning.
    res = zombiectl("reap", "--pid", str(main), "--kill-parent", "--stop-container",
                    "--dry-run", "--json")  # fmt: skip
    (row,) = json.loads(res.stdout)["parents"]
    assert row["actions"] == ["SIGCHLD", "SIGTERM"]
    assert f"ending it stops container {c.name}" in row["reason"]
    text = zombiectl("reap", "--pid", str(main), "--kill-parent", "--dry-run")
    assert "CONTAINER" in text.stdout and c.name in text.stdout
    assert f"ending it stops container {c.name}" in " ".join(text.stdout.split())


def test_reap_with_stop_container_ends_it_and_the_container_stops(
    under_tini: tuple[RuncContainer, int], zombiectl
) -> None:
    c, main = under_tini
    res = zombiectl("reap", "--pid", str(main), "--kill-parent", "--stop-container", "--yes",
                    "--timeout", "0.2", "--json")  # fmt: skip
    (row,) = json.loads(res.stdout)["parents"]
    assert "SIGTERM" in row["actions"], row
    assert wait_until(lambda: _state(c.name) == "stopped", TIMEOUT)


# --------------------------------------------------------------------------- attribution


@contextlib.contextmanager
def exec_leaker(name: str, tmp_path: Path) -> Iterator[int]:
    """`runc exec -d` into container name: a process whose parent is outside the
    container's namespace, holding one zombie it never reaps."""
    pidfile = tmp_path / f"exec-{name}.pid"
    subprocess.run(
        ["runc", "exec", "-d", "--pid-file", str(pidfile), name,
         "/bin/sh", "-c", f"({WAIT_FOR_SLEEP}) & exec sleep 1000"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        timeout=TIMEOUT, check=True,
    )  # fmt: skip
    entered = int(pidfile.read_text())
    try:
        wait_zombies(entered, 1)
        yield entered
    finally:
        # The session adopted it when `runc exec` returned: ours to kill and reap.
        os.kill(entered, signal.SIGKILL)
        assert wait_until(lambda: _reaped(entered), TIMEOUT)


def _reaped(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done == pid


def _as_nobody(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups",
         sys.executable, "-m", "zombiectl", *args],
        capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def _placed(stdout: str, pids: list[int]) -> dict[int, tuple[str, int] | None]:
    parents = {p["pid"]: p for p in json.loads(stdout)["parents"]}
    out: dict[int, tuple[str, int] | None] = {}
    for pid in pids:
        c = parents[pid]["container"]
        out[pid] = None if c is None else (c["id"], c["init_pid"])
    return out


def test_a_non_root_list_names_the_same_containers_as_root(
    leaky: RuncContainer, tmp_path: Path, zombie_parent, zombiectl
) -> None:
    """As nobody, no /proc/PID/ns/pid of root's processes can be read; NSpid, the
    cgroup file and cgroup.procs can. The leaker entered with `runc exec -d` has its
    parent outside the container: it is placed all the same."""
    host = zombie_parent(1)
    with (
        runc_container(tmp_path, "other", LEAKY_ARGS) as other,
        exec_leaker(leaky.name, tmp_path) as entered,
        exec_leaker(other.name, tmp_path) as entered_other,
    ):
        wait_zombies(other.init_pid, LEAKY_ZOMBIES)
        pids = [leaky.init_pid, other.init_pid, entered, entered_other, host.pid]
        root = zombiectl("list", "--json")
        nobody = _as_nobody("list", "--json")
        assert root.returncode == nobody.returncode == 0, nobody.stderr
        expected = {
            leaky.init_pid: (leaky.name, leaky.init_pid),
            entered: (leaky.name, leaky.init_pid),
            other.init_pid: (other.name, other.init_pid),
            entered_other: (other.name, other.init_pid),
            host.pid: None,
        }
        assert _placed(root.stdout, pids) == expected
        assert _placed(nobody.stdout, pids) == expected


def test_a_namespace_nested_in_a_container_reports_the_container(tmp_path: Path, zombiectl) -> None:
    """PID 1 of the container is `unshare`, whose child is PID 1 of a nested namespace
    (sh, then sleep) holding two zombies: the nested one has no cgroup of its own."""
    nested = ["/bin/busybox", "unshare", "-p", "-f", "--mount-proc", "/bin/sh", "-c",
              orphans_then_sleep(LEAKY_ZOMBIES)]  # fmt: skip
    with runc_container(tmp_path, "nest", nested, capabilities=["CAP_SYS_ADMIN"]) as c:
        assert wait_until(lambda: len(_children(c.init_pid)) == 1, TIMEOUT)
        (inner,) = _children(c.init_pid)
        wait_zombies(inner, LEAKY_ZOMBIES)
        inner_ns = int(os.readlink(f"/proc/{inner}/ns/pid")[5:-1])
        assert inner_ns != c.pidns
        res = zombiectl("list", "--json", "--by", "container")
        data = json.loads(res.stdout)
        got = {p["pid"]: p["container"] for p in data["parents"]}[inner]
        assert (got["id"], got["runtime"], got["pidns"], got["init_pid"]) == (
            c.name, "runc", inner_ns, inner)  # fmt: skip
        fams = families(zombiectl("list", "--format", "prometheus").stdout)
        assert sample(fams, "zombiectl_container_zombies", container=c.name) == LEAKY_ZOMBIES
        assert sample(fams, "zombiectl_container_init_zombies", container=c.name) == LEAKY_ZOMBIES


# --------------------------------------------------------------------------- trusted ids


@contextlib.contextmanager
def cgroup_at(path: str, owner: int = 0) -> Iterator[Path]:
    """A cgroup of the unified hierarchy at path (its elements made, owned by owner from
    the first one down), removed after once empty."""
    base = Path(mount_of("") or "/nonexistent")
    made: list[Path] = []
    try:
        current = base
        for element in path.strip("/").split("/"):
            current = current / element
            current.mkdir()
            made.append(current)
            if owner:
                os.chown(current, owner, -1)
        yield current
    finally:
        for d in reversed(made):
            # Whatever a test put here goes back to the root first.
            for pid in (d / "cgroup.procs").read_text().split():
                with contextlib.suppress(OSError):
                    (base / "cgroup.procs").write_text(pid)
            assert wait_until(lambda d=d: _rmdir(d), TIMEOUT), f"{d} stays busy"


def _rmdir(d: Path) -> bool:
    try:
        d.rmdir()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


def _move(pid: int, cgroup: Path) -> None:
    (cgroup / "cgroup.procs").write_text(str(pid))


HEX = "5eed" * 16


def test_a_cgroup_delegated_to_a_user_never_gives_a_runtime_id(tmp_path: Path, zombiectl) -> None:
    """A user who may name cgroups (systemd's user@UID.service, or any subtree chowned to
    them) names one docker-<64 hex>.scope: no docker id comes out of it."""
    if mount_of("") is None:
        pytest.skip("no unified cgroup hierarchy mounted")
    tag = container_name("deleg")
    systemd_style = f"{tag}/user.slice/user-65534.slice/user@65534.service/docker-{HEX}.scope"
    with (
        pid_namespace(1) as by_name,
        pid_namespace(1) as by_owner,
        cgroup_at(systemd_style) as named,
        cgroup_at(f"{tag}-owned/docker-{HEX}.scope", owner=65534) as owned,
    ):
        _move(by_name, named)
        _move(by_owner, owned)
        wait_zombies(by_name, 1)
        wait_zombies(by_owner, 1)
        res = zombiectl("list", "--json")
        got = {p["pid"]: p["container"] for p in json.loads(res.stdout)["parents"]}
        assert (got[by_name]["id"], got[by_name]["runtime"]) == (
            f"user:65534/docker-{HEX}.scope", None)  # fmt: skip
        assert (got[by_owner]["id"], got[by_owner]["runtime"]) == (
            f"user:65534/{tag}-owned/docker-{HEX}.scope", None)  # fmt: skip


def test_two_containers_never_share_an_id(tmp_path: Path, zombiectl) -> None:
    """A runc container named HEX, and a namespace put by root in a cgroup whose last
    element is HEX too: the runtime's own keeps the id, the other gets its namespace's."""
    if mount_of("") is None:
        pytest.skip("no unified cgroup hierarchy mounted")
    tag = container_name("copy")
    with (
        runc_container(tmp_path, "hex", LEAKY_ARGS, cgroups_path=f"/{tag}-{HEX}") as real,
        pid_namespace(1) as copy,
        cgroup_at(f"{tag}/x/{tag}-{HEX}") as cgroup,
    ):
        _move(copy, cgroup)
        wait_zombies(real.init_pid, LEAKY_ZOMBIES)
        wait_zombies(copy, 1)
        res = zombiectl("list", "--json")
        got = {p["pid"]: p["container"] for p in json.loads(res.stdout)["parents"]}
        assert got[real.init_pid]["id"] == f"{tag}-{HEX}"
        assert got[copy]["id"] == f"pidns:{os.readlink(f'/proc/{copy}/ns/pid')[5:-1]}"


# --------------------------------------------------------------------------- the probe

# PID 1 waits 2 s on a fifo nobody writes (no wait() meanwhile), then runs a command,
# whose wait() reaps any orphan that died meanwhile: it reaps, every 2 s.
POLLING_ARGS = ["/bin/sh", "-c", "busybox mkfifo /dev/f; exec 3<>/dev/f; "
                "while :; do read -t 2 x <&3; busybox true; done"]  # fmt: skip
PROBE_TIMEOUT = "4"


def test_the_probe_tells_reaps_slow_and_never(tmp_path: Path, zombiectl) -> None:
    """busybox init and `sh -c` (which reap while they wait) are no longer unknown; an
    init that polls every 2 s is slow, not never; sleep never reaps."""
    inittab = {"/etc/inittab": "::sysinit:/bin/sleep 0\n::respawn:/bin/sleep 1000\n"}
    with (
        runc_container(
            tmp_path, "busyinit", ["/bin/init"], applets=("init",), files=inittab
        ) as init,
        runc_container(tmp_path, "shc", ["/bin/sh", "-c", "sleep 1000; exit 0"]) as shc,
        runc_container(tmp_path, "polling", POLLING_ARGS) as polling,
        runc_container(tmp_path, "never", ["/bin/sleep", "1000"]) as never,
        runc_container(tmp_path, "tini", ["/bin/tini", "--", "/bin/sleep", "1000"]) as tini,
    ):
        mine = {c.init_pid: c.name for c in (init, shc, polling, never, tini)}
        # Only these: a probe leaves a zombie in a PID 1 that never reaps, and other
        # tests' containers count theirs.
        only = _only(init, shc, polling, never, tini)
        before = zombiectl("doctor", "--containers", "--json", "--timeout", "0.2", *only)
        unprobed = _verdicts(before.stdout, mine)
        assert unprobed[init.name] == unprobed[shc.name] == ("unknown", None)
        res = zombiectl(
            "doctor", "--containers", "--probe", "--json", "--timeout", PROBE_TIMEOUT, *only
        )
        assert {a["init_pid"] for a in json.loads(res.stdout)["containers"]} == set(mine)
        assert res.returncode == 1, res.stderr  # never: a PID 1 that does not reap
        got = _verdicts(res.stdout, mine)
        assert got[init.name][0] == got[shc.name][0] == got[tini.name][0] == "reaps"
        assert got[polling.name][0] == "slow"
        assert 1.0 < (got[polling.name][1] or 0) <= float(PROBE_TIMEOUT)
        assert got[never.name] == ("never", None)
        # The cost, as documented: one zombie of the PID 1 that never reaps.
        assert len(zombie_children(never.init_pid)) == 1
        # The orphan was made inside: it is the container's PID 1's child, in its cgroup.
        (orphan,) = zombie_children(never.init_pid)
        assert _nspid(orphan)[-1] != orphan
        # Nothing of the probe is left anywhere else.
        for pid, name in mine.items():
            if name != never.name:
                assert zombie_children(pid) == [], name


def _only(*containers: RuncContainer) -> list[str]:
    return [arg for c in containers for arg in ("--container", c.name)]


def _verdicts(stdout: str, mine: dict[int, str]) -> dict[str, tuple[str, float | None]]:
    out = {}
    for a in json.loads(stdout)["containers"]:
        if a["init_pid"] in mine:
            probe = a["probe"] or {}
            out[mine[a["init_pid"]]] = (a["verdict"], probe.get("seconds"))
    return out


def _nspid(pid: int) -> list[int]:
    with open(f"/proc/{pid}/status") as f:
        (line,) = [ln for ln in f if ln.startswith("NSpid:")]
    return [int(x) for x in line.split()[1:]]


def test_a_name_alone_is_not_a_reaping_init(zombiectl) -> None:
    """`exec -a tini sleep`: argv[0] says tini, the executable is sleep."""
    with spoofed_tini() as init:
        cid = f"pidns:{os.readlink(f'/proc/{init}/ns/pid')[5:-1]}"
        res = zombiectl("doctor", "--containers", "--json", "--timeout", "0.2", "--container", cid)
        (a,) = json.loads(res.stdout)["containers"]
        assert a["init_pid"] == init
        assert (a["reaps"], a["verdict"], a["init_guess"]) == (None, "unknown", "tini")


@contextlib.contextmanager
def spoofed_tini() -> Iterator[int]:
    proc = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--mount-proc", "bash", "-c", "exec -a tini sleep 1000"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert wait_until(lambda: _comm_of_child(proc.pid) == "sleep", TIMEOUT)
        (init,) = _children(proc.pid)
        yield init
    finally:
        for pid in _children(proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(TIMEOUT)


def _comm_of_child(pid: int) -> str | None:
    kids = _children(pid)
    if not kids:
        return None
    try:
        with open(f"/proc/{kids[0]}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


# --------------------------------------------------------------------------- kubernetes

POD_UID = "0b7c9d2e-4f1a-4c3b-9e8d-7a6b5c4d3e2f"
K8S_ID = "c0ffee" + "0" * 58


@pytest.fixture
def kubelet_logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory laid out as kubelet's /var/log/containers: one symlink per container,
    named <pod>_<namespace>_<container>-<id>.log, pointing into /var/log/pods."""
    logs = tmp_path / "containers"
    logs.mkdir()
    target = f"/var/log/pods/shop_web-7d4b9_{POD_UID}/app/0.log"
    (logs / f"web-7d4b9_shop_app-{K8S_ID}.log").symlink_to(target)
    # Another container's, and names kubelet never makes: ignored.
    (logs / f"db-0_shop_pg-{'d' * 64}.log").symlink_to("/nonexistent")
    (logs / "README").write_text("not a log")
    (logs / f"a_b-{K8S_ID}.log").symlink_to("/nonexistent")
    monkeypatch.setenv("ZOMBIECTL_K8S_LOG_DIR", str(logs))
    return logs


def test_kubernetes_names_in_json_tables_and_labels(
    kubelet_logs: Path, tmp_path: Path, zombiectl
) -> None:
    cgroups = f"/{container_name('kubepods')}/besteffort/pod{POD_UID}/{K8S_ID}"
    with runc_container(tmp_path, "k8s", LEAKY_ARGS, cgroups_path=cgroups) as c:
        wait_zombies(c.init_pid, LEAKY_ZOMBIES)
        res = zombiectl("list", "--json")
        got = {p["pid"]: p["container"] for p in json.loads(res.stdout)["parents"]}[c.init_pid]
        assert (got["id"], got["runtime"], got["pod"]) == (K8S_ID, "kubernetes", POD_UID)
        assert (got["k8s_namespace"], got["k8s_pod"], got["k8s_container"]) == (
            "shop", "web-7d4b9", "app")  # fmt: skip
        fams = families(zombiectl("list", "--format", "prometheus").stdout)
        assert sample(fams, "zombiectl_container_zombies", container=K8S_ID, k8s_namespace="shop",
                      k8s_pod="web-7d4b9", k8s_container="app") == LEAKY_ZOMBIES  # fmt: skip
        table = zombiectl("list").stdout
        assert f"{K8S_ID} (shop/web-7d4b9/app)" in " ".join(table.split())
        doctor = zombiectl("doctor", "--containers", "--json", "--timeout", "0.2",
                           "--container", K8S_ID)  # fmt: skip
        (a,) = [a for a in json.loads(doctor.stdout)["containers"] if a["init_pid"] == c.init_pid]
        assert (a["k8s_namespace"], a["k8s_pod"], a["k8s_container"]) == (
            "shop", "web-7d4b9", "app")  # fmt: skip


def test_kubelet_log_names_parse_exactly() -> None:
    from zombiectl.proc.containers import parse_kubelet_log_name

    assert parse_kubelet_log_name(f"web-7d4b9_shop_app-{K8S_ID}.log") == (
        K8S_ID, "shop", "web-7d4b9", "app")  # fmt: skip
    for bad in ("x.log", f"a_b-{K8S_ID}.log", f"a_b_c_d-{K8S_ID}.log", "a_b_c-.log",
                f"a_b_c-{K8S_ID}.txt", "a_b_c-ff\n.log", "__-ab.log"):  # fmt: skip
        assert parse_kubelet_log_name(bad) is None, bad


def test_a_name_cannot_forge_the_nspid_line(zombiectl) -> None:
    """The kernel escapes "\\n" in a status's Name line, not "\\x1c", at which
    str.splitlines also splits: a host process so named is still on the host, also for
    a user who cannot read its namespace link (and so reads its NSpid)."""
    from promstack import GrowingParent

    parent = GrowingParent("x\x1cNSpid: 5 1")
    try:
        parent.grow(1)
        for res in (
            zombiectl("list", "--json", "--pid", str(parent.pid)),
            _as_nobody("list", "--json", "--pid", str(parent.pid)),
        ):
            (row,) = json.loads(res.stdout)["parents"]
            assert row["container"] is None
    finally:
        parent.close()


@contextlib.contextmanager
def entered_namespace() -> Iterator[int]:
    """A bare PID namespace (no cgroup of its own) and a leaker nsenter'd into it: the
    leaker's parent, nsenter, is outside. Yields the leaker, holding one zombie."""
    with pid_namespace(0) as init:
        proc = subprocess.Popen(
            ["nsenter", "-t", str(init), "-p", "-m", "--", BUSYBOX, "sh", "-c",
             f"({WAIT_FOR_SLEEP}) & exec sleep 1000"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            assert wait_until(lambda: len(_children(proc.pid)) == 1, TIMEOUT)
            (leaker,) = _children(proc.pid)
            wait_zombies(leaker, 1)
            yield leaker
        finally:
            # The namespace's end (pid_namespace) ends the leaker; nsenter then exits.
            os.kill(leaker, signal.SIGKILL)
            proc.wait(TIMEOUT)


def test_an_entered_process_whose_init_cannot_be_told_is_still_in_a_container(
    zombiectl,
) -> None:
    """As nobody, two bare namespaces in one cgroup hold an init each at the same depth:
    which is the leakers' cannot be told. They are in a container all the same."""
    with entered_namespace() as a, entered_namespace() as b:
        root = _placed_full(zombiectl("list", "--json").stdout, [a, b])
        nobody = _placed_full(_as_nobody("list", "--json").stdout, [a, b])
        assert root[a]["id"] != root[b]["id"] and root[a]["init_pid"] > 0
        for pid in (a, b):
            assert nobody[pid] is not None, "NSpid says it is in a container"
            assert nobody[pid]["init_pid"] is None


def _placed_full(stdout: str, pids: list[int]) -> dict[int, dict | None]:
    parents = {p["pid"]: p for p in json.loads(stdout)["parents"]}
    return {pid: parents[pid]["container"] for pid in pids}
