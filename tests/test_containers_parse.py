"""Container attribution's parsers, on real /proc/PID/cgroup contents of each layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from zombiectl.proc.containers import (
    Container,
    cgroup_path,
    classify,
    parse_cgroup,
    parse_ns_link,
    parse_nspid,
    unique_ids,
)

DATA = Path(__file__).parent / "data" / "cgroup"
DOCKER = "4c01db0b339c3e7e25f1ff7e9b8e6a3c5f6d6a3e1c8e0f4b9b2a4c1e7d3f5a6b"
CID = "9b8f2c1d0e3a4b5c6d7e8f9012345678901234567890abcdef1234567890abcd"
POD = "6f1d7c8a-3b2e-4e5f-9a0b-1c2d3e4f5a6b"


def layout(name: str) -> tuple[str, str | None, str | None]:
    path = cgroup_path(parse_cgroup((DATA / f"{name}.txt").read_text()))
    assert path is not None
    return classify(path)


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("docker-systemd-v2", (DOCKER, "docker", None)),
        ("docker-cgroupfs-v1", (DOCKER, "docker", None)),
        ("containerd-v2", (CID, "containerd", None)),
        ("crio-v2", (CID, "cri-o", None)),
        ("podman-v2", (CID, "podman", None)),
        ("podman-v1", (CID, "podman", None)),
        ("kubernetes-containerd-systemd-v2", (CID, "kubernetes", POD)),
        ("kubernetes-cgroupfs-v1", (CID, "kubernetes", POD)),
        ("kubernetes-crio-v2", (CID, "kubernetes", POD)),
        ("systemd-unit-v2", ("nginx.service", "systemd", None)),
        ("runc-hybrid", ("zombiectl-probe", "runc", None)),
        ("runc-systemd-v2", ("web1", "runc", None)),
        ("runc-systemd-hybrid", ("web1", "runc", None)),
        ("lxc-v2", ("web1", "lxc", None)),
        ("lxc-hybrid", ("web1", "lxc", None)),
        ("lxc-legacy-v1", ("web1", "lxc", None)),
        # A subtree systemd delegates to user 1000: the user names everything in it.
        ("podman-rootless-v2", (f"user:1000/user.slice/libpod-{CID}.scope", None, None)),
        ("spoof-user-docker-v2", (f"user:1000/app.slice/docker-{DOCKER}.scope", None, None)),
    ],
)
def test_each_layout_gives_the_full_id_runtime_and_pod(fixture: str, expected: tuple) -> None:
    assert layout(fixture) == expected


def test_unified_path_wins_over_v1_when_it_is_not_root() -> None:
    h = parse_cgroup((DATA / "runc-hybrid.txt").read_text())
    assert cgroup_path(h) == "/zombiectl-probe"


def test_v1_order_is_name_systemd_pids_memory_cpu() -> None:
    h = parse_cgroup("5:cpu:/c\n4:memory:/m\n3:pids:/p\n0::/\n")
    assert cgroup_path(h) == "/p"
    h = parse_cgroup("5:cpu:/c\n4:memory:/m\n0::/\n")
    assert cgroup_path(h) == "/m"
    h = parse_cgroup("5:cpu,cpuacct:/c\n0::/\n")
    assert cgroup_path(h) == "/c"


def test_root_everywhere_gives_no_path() -> None:
    assert cgroup_path(parse_cgroup((DATA / "root-v2.txt").read_text())) is None


def test_malformed_lines_are_skipped() -> None:
    assert parse_cgroup("garbage\n1:cpu\n2:pids:relative\n0::/x\n") == {"": "/x"}


def test_unknown_layout_gives_last_element_and_no_runtime() -> None:
    assert classify("/user.slice/user-1000.slice/session-3.scope") == (
        "session-3.scope",
        None,
        None,
    )


def test_docker_scope_needs_a_full_64_hex_id() -> None:
    assert classify("/system.slice/docker-abc.scope")[1] != "docker"


def test_conmon_is_not_the_container() -> None:
    assert classify(f"/machine.slice/libpod-conmon-{CID}.scope")[1] != "podman"


def test_nspid_and_ns_link() -> None:
    assert parse_nspid("Name:\tsleep\nNSpid:\t32255\t1\n") == (32255, 1)
    assert parse_nspid("NSpid:\t7\n") == (7,)
    assert parse_nspid("Name: x\n") == ()
    assert parse_ns_link("pid:[4026532180]") == 4026532180
    assert parse_ns_link("net:[4026532180]") is None
    assert parse_ns_link("pid:[12x]") is None


def test_a_shared_id_stays_with_the_runtimes_own_and_the_others_fall_back() -> None:
    """The runtime's own container keeps its id (a runtime's layout, then the shortest
    path: a copy made below it, in a cgroup delegated to it, is longer)."""
    a = Container("web", "runc", None, 11, 100, "/web")
    b = Container("web", "runc", None, None, 200, "/web/x/web")
    c = Container("db", "runc", None, 12, 300, "/db")
    d = Container("db", None, None, 13, 50, "/a")
    unique_ids([b, a, d, c])
    assert (a.id, b.id, c.id, d.id) == ("web", "init:200", "db", "pidns:13")


def test_namespaces_nested_in_a_container_take_its_id_and_differ_by_pidns() -> None:
    outer = Container("web", "runc", None, 11, 100, "/web")
    clash = Container("web", "runc", None, 14, 400, "/web/web")
    inner = Container("pidns:12", None, None, 12, 120, "/web")
    inner.outer = outer
    unique_ids([inner, clash, outer])
    assert (outer.id, inner.id, clash.id) == ("web", "web", "pidns:14")
    assert inner.key != outer.key


def test_as_dict_has_the_contract_fields() -> None:
    c = Container("i\nd", None, None, 5, 9, "/i\nd")
    assert c.as_dict() == {
        "id": "i\nd",
        "runtime": None,
        "pod": None,
        "pidns": 5,
        "init_pid": 9,
        "cgroup": "/i\nd",
        "k8s_namespace": None,
        "k8s_pod": None,
        "k8s_container": None,
    }


def test_paths_relative_to_a_cgroup_namespace_still_classify() -> None:
    """Read from inside a container (a DaemonSet), other cgroups show as "/../..."."""
    path = f"/../../kubepods-besteffort-pod{POD.replace('-', '_')}.slice/cri-containerd-{CID}.scope"
    assert classify(path) == (CID, "kubernetes", POD)
    assert classify(f"/../docker-{DOCKER}.scope") == (DOCKER, "docker", None)


def test_a_host_process_can_have_a_non_root_v1_path() -> None:
    """Why a namespace's init is compared with its parent's cgroup: on this hybrid host
    even processes outside any container have a memory path that is not "/"."""
    h = parse_cgroup((DATA / "host-hybrid.txt").read_text())
    assert cgroup_path(h) == "/process_api/37feea4ef854c33b3f487a7fca7292a6"


OUTER = "1" * 64
INNER = "2" * 64


@pytest.mark.parametrize(
    "path",
    [
        # podman in a podman container (the inner one's cgroup made under the outer's)
        f"/machine.slice/libpod-{OUTER}.scope/container/machine.slice/libpod-{INNER}.scope/container",
        f"/machine.slice/libpod-{OUTER}.scope/libpod-{INNER}.scope",
    ],
)
def test_a_nested_podman_container_is_the_innermost(path: str) -> None:
    """The process runs in the inner container: its id is searched innermost-first."""
    assert classify(path) == (INNER, "podman", None)


def test_a_nested_podman_container_in_a_users_tree_is_named_by_its_user() -> None:
    """Rootless podman lives in a subtree delegated to the user, where any name can be
    made: no runtime id is taken from it, nested or not."""
    path = (
        f"/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{OUTER}.scope"
        f"/container/libpod-{INNER}.scope/container"
    )
    assert classify(path) == (
        f"user:1000/user.slice/libpod-{OUTER}.scope/container/libpod-{INNER}.scope",
        None,
        None,
    )
