"""Containers on a busy node, with real runc containers: per-container metrics that no
number of host leakers pushes out, reap that never stops a container by accident,
attribution as an unprivileged user, trusted ids, the active probe, Kubernetes names.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from containers import (
    LEAKY_ARGS,
    LEAKY_ZOMBIES,
    TIMEOUT,
    WAIT_FOR_SLEEP,
    RuncContainer,
    container_name,
    runc_container,
    wait_zombies,
)
from peers import require_peer
from proctools import proc_exists, wait_until
from promstack import families, sample


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


def test_doctor_textfile_writes_each_verdict_and_leaves_unknown_out(
    leaky: RuncContainer, tmp_path: Path, zombiectl
) -> None:
    from containers import TINI_ARGS

    with (
        runc_container(tmp_path, "tini", TINI_ARGS) as tini,
        runc_container(tmp_path, "quiet", ["/bin/sleep", "1000"]) as quiet,
    ):
        prom = tmp_path / "doctor.prom"
        res = zombiectl("doctor", "--containers", "--timeout", "0.3", "--textfile", str(prom))
        assert res.returncode == 1, res.stderr
        fams = families(prom.read_text())
        assert sample(fams, "zombiectl_container_init_reaps", container=LEAKY) == 0
        assert sample(fams, "zombiectl_container_init_reaps", container=tini.name) == 1
        # sleep holding nothing: nothing seen either way.
        assert sample(fams, "zombiectl_container_init_reaps", container=quiet.name) is None


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
