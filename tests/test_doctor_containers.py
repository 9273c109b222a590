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
    word, evidence = verdict([41, 42], 2, "tini", 2.0)
    assert word == "never"
    assert "2 zombie(s)" in evidence and "41 42" in evidence


def test_held_zombies_beside_reaped_ones_are_slow_not_never() -> None:
    assert verdict([41], 1, None, 2.0, reaped=3)[0] == "slow"
    assert verdict([], 0, None, 2.0, reaped=3)[0] == "reaps"


def test_an_init_by_content_holding_nothing_across_looks_reaps() -> None:
    assert verdict([], 3, "dumb-init", 2.0)[0] == "reaps"


def test_a_name_alone_is_a_guess_not_a_verdict() -> None:
    word, evidence = verdict([], 0, None, 2.0, guess="tini")
    assert word == "unknown"
    assert "calls itself tini" in evidence


def test_the_probe_decides_over_the_looks() -> None:
    from zombiectl.doctor.probe import ProbeResult

    assert verdict([41], 1, None, 2.0, probe=ProbeResult("slow", 1.5))[0] == "slow"
    assert verdict([], 0, "tini", 2.0, probe=ProbeResult("never"))[0] == "never"
    # A probe that could not run says nothing.
    assert verdict([41], 1, None, 2.0, probe=ProbeResult("error", detail="x"))[0] == "never"


def test_an_unknown_init_holding_nothing_is_unknown_not_fine() -> None:
    word, evidence = verdict([], 0, None, 2.0)
    assert word == "unknown"
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


def test_zombies_reaped_between_the_looks_are_reaping_seen(zombie_parent) -> None:
    parent = zombie_parent(2)
    pid = parent.pid
    report = audit_containers(2.0, sleep=lambda _: parent.close(), find=lambda: [_container(pid)])
    (a,) = report.audits
    assert (a.verdict, a.reaps, a.init_zombies) == ("reaps", True, 0)
    assert "reaped 2 zombie(s)" in a.evidence
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


def test_probe_goes_with_containers(zombiectl) -> None:
    res = zombiectl("doctor", "--probe")
    assert res.returncode == 2 and "--containers" in res.stderr and res.stdout == ""


def test_probe_needs_root_and_says_so_in_one_line() -> None:
    import os
    import subprocess
    import sys

    if os.geteuid() != 0:
        args = [sys.executable, "-m", "zombiectl"]
    else:
        args = ["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups",
                sys.executable, "-m", "zombiectl"]  # fmt: skip
    res = subprocess.run(
        [*args, "doctor", "--containers", "--probe"], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 4, res.stderr
    assert res.stderr.count("\n") == 1 and "root" in res.stderr
