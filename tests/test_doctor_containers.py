"""`doctor --containers`: the verdict table, init recognition, and the two looks."""

from __future__ import annotations

import pytest

from zombiectl.doctor.containers import audit_containers, known_init, verdict
from zombiectl.doctor.render_containers import advice
from zombiectl.proc.containers import Container


@pytest.mark.parametrize(
    ("exe", "argv", "expected"),
    [
        ("/usr/bin/tini", ["/usr/bin/tini", "--", "app"], "tini"),
        ("/usr/bin/tini-static", ["tini-static", "-s"], "tini"),
        ("/sbin/docker-init", ["/sbin/docker-init", "--", "app"], "docker-init"),
        (None, ["dumb-init", "app"], "dumb-init"),
        ("/usr/libexec/podman/catatonit", ["catatonit", "-P"], "catatonit"),
        ("/lib/systemd/systemd", ["/sbin/init"], "systemd"),
        ("/usr/bin/python3.11", ["/usr/bin/python3", "-m", "zombiectl", "run", "--", "x"],
         "zombiectl run"),
        ("/usr/bin/python3.11", ["/usr/local/bin/zombiectl", "run", "--", "x"], "zombiectl run"),
        ("/usr/bin/node", ["node", "server.js"], None),
        ("/usr/bin/python3.11", ["/usr/local/bin/zombiectl", "list"], None),
        ("/bin/busybox", ["sleep", "1000"], None),
        (None, [], None),
    ],
)  # fmt: skip
def test_known_reaping_inits_by_executable_or_command_line(exe, argv, expected) -> None:
    assert known_init(exe, argv) == expected


def test_a_zombie_held_at_both_looks_means_it_does_not_reap_even_for_a_known_init() -> None:
    reaps, evidence = verdict([41, 42], 2, "tini", 2.0)
    assert reaps is False
    assert "2 zombie(s)" in evidence and "41 42" in evidence


def test_a_known_init_holding_nothing_across_looks_reaps() -> None:
    assert verdict([], 3, "dumb-init", 2.0)[0] is True


def test_an_unknown_init_holding_nothing_is_unknown_not_fine() -> None:
    reaps, evidence = verdict([], 0, None, 2.0)
    assert reaps is None
    assert "proves nothing" in evidence


def _container(pid: int) -> Container:
    return Container("app", "runc", None, 1234, pid, "/app")


def test_zombies_still_there_at_the_second_look_are_held(zombie_parent) -> None:
    parent = zombie_parent(3)
    slept = []
    report = audit_containers(2.0, sleep=slept.append, find=lambda: [_container(parent.pid)])
    (a,) = report.audits
    assert (a.reaps, a.zombies, slept) == (False, 3, [2.0])
    assert report.bad
    assert report.as_dict()["containers"][0]["reaps"] is False
    assert "Do not `reap --pid`" in (advice(a) or "")


def test_zombies_reaped_between_the_looks_are_not_held(zombie_parent) -> None:
    parent = zombie_parent(2)
    report = audit_containers(
        2.0, sleep=lambda _: parent.close(), find=lambda: [_container(parent.pid)]
    )
    (a,) = report.audits
    assert (a.reaps, a.zombies) == (None, 0)
    assert not report.bad


def test_no_container_no_wait() -> None:
    slept: list[float] = []
    report = audit_containers(5.0, sleep=slept.append, find=list)
    assert (report.audits, slept, report.bad) == ([], [], False)


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0.01", "601", "abc", "١"])
def test_bad_timeout_is_one_line_and_exit_2(value, zombiectl) -> None:
    res = zombiectl("doctor", "--containers", "--timeout", value)
    assert res.returncode == 2
    assert res.stdout == ""
    assert "Traceback" not in res.stderr and "--timeout" in res.stderr


def test_help_shows_containers_and_timeout(zombiectl) -> None:
    res = zombiectl("doctor", "--help")
    assert res.returncode == 0
    assert "--containers" in res.stdout and "--timeout S" in res.stdout
