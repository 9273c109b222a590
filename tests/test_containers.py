"""Container attribution against real containers: runc with busybox, and bare PID namespaces.

One runc container's PID 1 is `sleep` and holds zombies it adopted from a subshell;
another runs the same under `tini -s`, which reaps them; `unshare --pid --fork`
namespaces have no cgroup of their own. Ids, verdicts and counts are exact.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from containers import (
    LEAKY_ARGS,
    LEAKY_ZOMBIES,
    PREFIX,
    TIMEOUT,
    TINI_ARGS,
    WAIT_FOR_SLEEP,
    RuncContainer,
    container_name,
    delete_leftovers,
    pid_namespace,
    runc_container,
    wait_zombies,
)
from peers import require_peer
from proctools import wait_until, zombie_children
from promstack import families, node_exporter, sample

from zombiectl.doctor.containers import audit_containers
from zombiectl.proc.containers import Attributor, all_containers


@pytest.fixture(autouse=True)
def _container_peers() -> None:
    """runc and the static binaries a rootfs holds: a skip locally, a failure under CI."""
    if os.geteuid() != 0:
        pytest.skip("runc containers need root")
    for peer in ("runc", "busybox-static", "tini-static"):
        require_peer(peer)


LEAKY = container_name("leaky")
TINI = container_name("tini")
NS_ZOMBIES = 3


class Host:
    """The containers of one test: leaky (sleep as PID 1), tini, and a bare namespace."""

    def __init__(self, leaky: RuncContainer, tini: RuncContainer, ns_init: int) -> None:
        self.leaky = leaky
        self.tini = tini
        self.ns_init = ns_init

    @property
    def ns_inode(self) -> int:
        return int(os.readlink(f"/proc/{self.ns_init}/ns/pid")[5:-1])


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    with (
        runc_container(tmp_path, "leaky", LEAKY_ARGS) as leaky,
        runc_container(tmp_path, "tini", TINI_ARGS) as tini,
        pid_namespace(NS_ZOMBIES) as ns_init,
    ):
        wait_zombies(leaky.init_pid, LEAKY_ZOMBIES)
        wait_zombies(ns_init, NS_ZOMBIES)
        # tini's orphans have exited and been reaped once its PID 1 has one child left.
        assert wait_until(
            lambda: _children(tini.init_pid) == 1 and not zombie_children(tini.init_pid), TIMEOUT
        )
        yield Host(leaky, tini, ns_init)


def _children(pid: int) -> int:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return len(f.read().split())


def ps_zombies_of(ppid: int) -> int:
    """How many zombies `ps` says ppid has: the count zombiectl must match."""
    out = subprocess.run(
        ["ps", "-eo", "ppid=,stat="], capture_output=True, text=True, check=True
    ).stdout
    return sum(
        1
        for line in out.splitlines()
        if line.split()[0] == str(ppid) and line.split()[1].startswith("Z")
    )


def parents_by_pid(data: dict) -> dict[int, dict]:
    return {p["pid"]: p for p in data["parents"]}


# --------------------------------------------------------------------------- list


def test_list_json_names_each_container_and_counts_as_ps(host: Host, zombiectl) -> None:
    res = zombiectl("list", "--json")
    assert res.returncode == 0, res.stderr
    parents = parents_by_pid(json.loads(res.stdout))
    leaky = parents[host.leaky.init_pid]
    assert leaky["zombies"] == LEAKY_ZOMBIES == ps_zombies_of(host.leaky.init_pid)
    assert leaky["container"] == {
        "id": LEAKY,
        "runtime": "runc",
        "pod": None,
        "pidns": host.leaky.pidns,
        "init_pid": host.leaky.init_pid,
        "cgroup": leaky["container"]["cgroup"],
        "k8s_namespace": None,
        "k8s_pod": None,
        "k8s_container": None,
    }
    assert leaky["container"]["cgroup"].endswith("/" + LEAKY)
    # No cgroup of its own: the id falls back to the namespace.
    ns = parents[host.ns_init]
    assert ns["zombies"] == NS_ZOMBIES == ps_zombies_of(host.ns_init)
    assert ns["container"]["id"] == f"pidns:{host.ns_inode}"
    assert ns["container"]["runtime"] is None
    assert (ns["container"]["pidns"], ns["container"]["init_pid"]) == (host.ns_inode, host.ns_init)
    # tini reaped its orphans: its container holds nothing.
    assert host.tini.init_pid not in parents
    # Everything on the host says so.
    me = os.getpid()
    assert all(p["container"] is None for pid, p in parents.items() if pid == me)


def test_list_by_container_gives_one_row_per_container(host: Host, zombiectl) -> None:
    res = zombiectl("list", "--json", "--by", "container")
    assert res.returncode == 0, res.stderr
    rows = {(r["container"] or {}).get("id"): r for r in json.loads(res.stdout)["containers"]}
    assert rows[LEAKY]["zombies"] == LEAKY_ZOMBIES
    assert rows[LEAKY]["parents"] == 1
    assert rows[LEAKY]["worst_parent"] == {
        "pid": host.leaky.init_pid,
        "name": "sleep",
        "zombies": LEAKY_ZOMBIES,
    }
    assert rows[f"pidns:{host.ns_inode}"]["zombies"] == NS_ZOMBIES
    assert TINI not in rows


def test_list_table_has_a_container_column(host: Host, zombiectl) -> None:
    res = zombiectl("list")
    assert res.returncode == 0, res.stderr
    assert "CONTAINER" in res.stdout.splitlines()[0]
    (line,) = [ln for ln in res.stdout.splitlines() if ln.split()[:1] == [str(host.leaky.init_pid)]]
    assert line.rstrip().endswith(f"{LEAKY} (init)")
    res = zombiectl("list", "--by", "container")
    (line,) = [ln for ln in res.stdout.splitlines() if ln.startswith(LEAKY)]
    assert line.split()[:5] == [LEAKY, "runc", str(host.leaky.init_pid), "2", "1"]


def test_a_process_entered_later_is_attributed_to_its_container(
    host: Host, tmp_path: Path, zombiectl
) -> None:
    """`runc exec` (as `docker exec`): the process's parent is outside the container."""
    pidfile = tmp_path / "exec.pid"
    subprocess.run(
        ["runc", "exec", "-d", "--pid-file", str(pidfile), LEAKY,
         "/bin/sh", "-c", f"({WAIT_FOR_SLEEP}) & exec sleep 1000"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        timeout=TIMEOUT, check=True,
    )  # fmt: skip
    entered = int(pidfile.read_text())
    try:
        wait_zombies(entered, 1)
        res = zombiectl("list", "--json")
        parents = parents_by_pid(json.loads(res.stdout))
        container = parents[entered]["container"]
        assert (container["id"], container["init_pid"]) == (LEAKY, host.leaky.init_pid)
    finally:
        # The session adopted it when `runc exec` returned: ours to kill and reap.
        os.kill(entered, signal.SIGKILL)
        assert wait_until(lambda: _reaped(entered), TIMEOUT)


def test_without_the_namespace_link_nspid_finds_the_init(host: Host) -> None:
    """As nobody, /proc/PID/ns/pid of root's processes cannot be read; status can."""
    data = _listing_as_nobody()
    leaky = parents_by_pid(data)[host.leaky.init_pid]["container"]
    assert (leaky["id"], leaky["pidns"], leaky["init_pid"]) == (LEAKY, None, host.leaky.init_pid)
    ns = parents_by_pid(data)[host.ns_init]["container"]
    assert (ns["id"], ns["pidns"], ns["init_pid"]) == (f"init:{host.ns_init}", None, host.ns_init)


def _listing_as_nobody() -> dict:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        rc = 1
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            from zombiectl.listing.zombies import list_zombies

            data = json.dumps(list_zombies().as_dict()).encode()
            while data:
                data = data[os.write(w, data) :]
            rc = 0
        finally:
            os._exit(rc)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        raw = f.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return json.loads(raw)


def test_two_namespaces_without_cgroups_get_distinct_ids() -> None:
    with pid_namespace(1) as a, pid_namespace(1) as b:
        wait_zombies(a, 1)
        wait_zombies(b, 1)
        attributor = Attributor()
        ca, cb = attributor.container_of(a), attributor.container_of(b)
        attributor.finish()
        assert ca is not None and cb is not None
        assert ca.id != cb.id
        assert {ca.id, cb.id} == {
            f"pidns:{os.readlink(f'/proc/{a}/ns/pid')[5:-1]}",
            f"pidns:{os.readlink(f'/proc/{b}/ns/pid')[5:-1]}",
        }


# --------------------------------------------------------------------------- metrics


def test_metrics_carry_container_and_init(host: Host, zombiectl) -> None:
    res = zombiectl("list", "--format", "prometheus", "--top", "1000")
    assert res.returncode == 0, res.stderr
    fams = families(res.stdout)
    leaky = str(host.leaky.init_pid)
    assert sample(fams, "zombiectl_zombies_by_parent", ppid=leaky, container=LEAKY,
                  init="true") == LEAKY_ZOMBIES  # fmt: skip
    assert sample(fams, "zombiectl_zombies_by_container", container=LEAKY) == LEAKY_ZOMBIES
    assert (
        sample(fams, "zombiectl_zombies_by_container", container=f"pidns:{host.ns_inode}")
        == NS_ZOMBIES
    )
    assert sample(fams, "zombiectl_zombies_by_container", container=TINI) is None
    series = [line.rsplit(" ", 1)[0] for line in res.stdout.splitlines()
              if line and not line.startswith("#")]  # fmt: skip
    assert len(series) == len(set(series)), "a repeated series makes node_exporter drop the file"


def test_node_exporter_serves_the_container_series_and_rejects_a_repeated_one(
    host: Host, tmp_path: Path, zombiectl
) -> None:
    """node_exporter rejects a series a textfile repeats (an error on every scrape; some
    versions fail the whole scrape): zombiectl's file never repeats one."""
    binary = require_peer("node_exporter")
    textdir = tmp_path / "textfile"
    textdir.mkdir()
    prom = textdir / "zombiectl.prom"
    log = tmp_path / "node_exporter.log"
    res = zombiectl("list", "--textfile", str(prom), "--top", "1000")
    assert res.returncode == 0, res.stderr
    with node_exporter(binary, textdir, log) as ne:
        fams = families(ne.get("/metrics"))
        assert sample(fams, "node_textfile_scrape_error") == 0
        assert sample(fams, "zombiectl_zombies_by_container", container=LEAKY) == LEAKY_ZOMBIES
        assert (
            sample(fams, "zombiectl_zombies_by_parent", ppid=str(host.leaky.init_pid),
                   container=LEAKY, init="true") == LEAKY_ZOMBIES
        )  # fmt: skip
        assert "collected before" not in log.read_text()
        # The same file with one series twice: node_exporter reports it.
        lines = prom.read_text().splitlines()
        (dup,) = [ln for ln in lines if ln.startswith("zombiectl_zombies_by_container{") and
                  f'"{LEAKY}"' in ln]  # fmt: skip
        prom.write_text("\n".join([*lines, dup]) + "\n")
        ne.get("/metrics")
        assert wait_until(lambda: "collected before" in log.read_text(), TIMEOUT), ne.log_tail()


# --------------------------------------------------------------------------- watch


def test_watch_json_says_which_container_the_watched_process_is_in(host: Host, zombiectl) -> None:
    res = zombiectl("watch", "--pid", str(host.leaky.init_pid), "--once", "--json")
    assert res.returncode == 0, res.stderr
    line = json.loads(res.stdout)
    assert line["container"]["id"] == LEAKY
    assert line["zombies"] == LEAKY_ZOMBIES
    res = zombiectl("watch", "--pid", str(os.getpid()), "--once", "--json")
    assert json.loads(res.stdout)["container"] is None


# --------------------------------------------------------------------------- doctor


def test_doctor_containers_names_the_init_that_does_not_reap(host: Host, zombiectl) -> None:
    res = zombiectl("doctor", "--containers", "--json", "--timeout", "0.3")
    assert res.returncode == 1, res.stderr
    audits = {c["init_pid"]: c for c in json.loads(res.stdout)["containers"]}
    leaky = audits[host.leaky.init_pid]
    assert (leaky["id"], leaky["init"], leaky["reaps"], leaky["zombies"]) == (
        LEAKY, "sleep", False, LEAKY_ZOMBIES)  # fmt: skip
    assert leaky["pidns"] == host.leaky.pidns and leaky["runtime"] == "runc"
    tini = audits[host.tini.init_pid]
    assert (tini["id"], tini["init"], tini["reaps"], tini["zombies"]) == (TINI, "tini", True, 0)
    ns = audits[host.ns_init]
    assert (ns["id"], ns["reaps"], ns["zombies"]) == (f"pidns:{host.ns_inode}", False, NS_ZOMBIES)
    text = zombiectl("doctor", "--containers", "--timeout", "0.3")
    assert text.returncode == 1
    (line,) = [ln for ln in text.stdout.splitlines() if ln.startswith(LEAKY)]
    assert line.split()[:6] == [LEAKY, "runc", str(host.leaky.init_pid), "sleep", "NO", "2"]
    assert "--init" in text.stdout and "Do not `reap --pid` its PID 1" in text.stdout


def test_a_reaping_init_alone_is_not_flagged(host: Host) -> None:
    only_tini = [c for c in all_containers() if c.init_pid == host.tini.init_pid]
    report = audit_containers(0.2, find=lambda: only_tini)
    assert [(a.container.id, a.reaps) for a in report.audits] == [(TINI, True)]
    assert not report.bad


# --------------------------------------------------------------------------- clean-up


def test_leftover_containers_of_the_prefix_are_deleted(tmp_path: Path) -> None:
    from containers import make_bundle

    name = PREFIX + "leftover"
    bundle = make_bundle(tmp_path / "b", ["/bin/sleep", "1000"])
    pidfile = tmp_path / "pid"
    subprocess.run(
        ["runc", "run", "-d", "--pid-file", str(pidfile), "--bundle", str(bundle), name],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        timeout=TIMEOUT, check=True,
    )  # fmt: skip
    init = int(pidfile.read_text())
    try:
        assert name in delete_leftovers()
        listed = subprocess.run(["runc", "list", "-q"], capture_output=True, text=True).stdout
        assert name not in listed.split()
    finally:
        subprocess.run(["runc", "delete", "-f", name], capture_output=True, timeout=TIMEOUT)
        assert wait_until(lambda: _reaped(init), TIMEOUT)


def _reaped(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done == pid


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
