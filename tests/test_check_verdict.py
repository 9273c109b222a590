"""The grade of a check as pure data: criteria, verdicts (pass, fail, error), hints, and
the JUnit and Gradescope files made of them. Facts are written by hand, so each
expectation is the case's own, not a formula shared with the code under test.
"""

from __future__ import annotations

import json
import signal
import struct
import xml.etree.ElementTree as ET

from zombiectl.check.render import as_dict, gradescope, junit_xml, plain_text, xml_text
from zombiectl.check.verdict import Facts, Leaker, Limits, byte_swapped, could_not_check, grade


def served(**kw: object) -> Facts:
    """A server check in which 20 clients were served; kw overrides any fact."""
    base: dict[str, object] = dict(
        command=["./srv", "9000"],
        pid=100,
        mode="run",
        exit_status=143,
        seconds=2.0,
        resolution_ms=None,
        children=20,
        tcp=True,
        listened=True,
        clients=20,
        echoes_ok=20,
        ended_by_check=True,
        port=9000,
    )
    base.update(kw)
    return Facts(**base)  # type: ignore[arg-type]


def codes(facts: Facts, limits: Limits | None = None) -> list[str]:
    return [h.code for h in grade(facts, limits or Limits()).hints]


def test_a_clean_server_passes_without_hints() -> None:
    report = grade(served(collected_by_parent=20), Limits())
    assert report.verdict == "pass" and report.hints == [] and report.reasons == []


def test_no_wait_and_partial_reap_are_told_apart() -> None:
    assert codes(served(zombies_at_end=20, collected_by_parent=0)) == ["no-wait"]
    assert codes(served(zombies_at_end=5, collected_by_parent=15)) == ["partial-reap"]
    # Zombies the parent never reaped, collected by zombiectl: the same two cases.
    assert codes(served(not_reaped_by_parent=20)) == ["no-wait"]
    assert codes(served(not_reaped_by_parent=3, collected_by_parent=17)) == ["partial-reap"]


def test_a_zombie_never_reaped_by_its_parent_fails_even_with_none_at_the_end() -> None:
    report = grade(served(zombies_at_end=0, not_reaped_by_parent=20), Limits())
    assert report.verdict == "fail"
    assert [c.name for c in report.criteria if c.failed] == ["reaped by parent"]


def test_byte_swapped_port_matches_network_order() -> None:
    for port in (1, 80, 8080, 9000, 23456, 65535):
        # The oracle: the port's bytes written big-endian and read back little-endian.
        assert byte_swapped(port) == struct.unpack("<H", struct.pack(">H", port))[0]


def test_wrong_port_names_the_port_and_htons_when_swapped() -> None:
    swapped = grade(served(listened=False, echoes_ok=0, clients=0, tree_ports=[10275]), Limits())
    (hint,) = swapped.hints
    assert hint.code == "wrong-port" and "10275" in hint.text and "htons" in hint.text
    other = grade(served(listened=False, echoes_ok=0, clients=0, tree_ports=[8081]), Limits())
    (hint,) = other.hints
    assert hint.code == "wrong-port" and "8081" in hint.text and "htons" not in hint.text
    # Listening on the port itself is no wrong port (a daemon the check did not follow).
    assert codes(served(listened=False, echoes_ok=0, tree_ports=[9000])) == []


def test_exit_before_listen_quotes_status_and_the_end_of_stderr() -> None:
    err = "".join(f"line {i}\n" for i in range(20)) + "bind: Address already in use\n"
    facts = served(
        listened=False, echoes_ok=0, clients=0, exit_status=1, ended_by_check=False, stderr_text=err
    )
    (hint,) = grade(facts, Limits()).hints
    assert hint.code == "exit-before-listen" and "status 1" in hint.text
    assert hint.text.endswith("line 16\nline 17\nline 18\nline 19\nbind: Address already in use")
    assert "line 15" not in hint.text


def test_no_close_crash_slow_reap_and_slow_exit() -> None:
    assert codes(served(replies_without_eof=20, collected_by_parent=20)) == ["no-close"]
    crash = grade(served(crashed_by=signal.SIGSEGV, served_before_exit=3), Limits())
    assert [h.code for h in crash.hints] == ["crash"]
    assert "SIGSEGV" in crash.hints[0].text and "after 3 client" in crash.hints[0].text
    assert codes(served(slowest_parent_reap_ms=250.0, collected_by_parent=20)) == ["slow-reap"]
    assert codes(served(slowest_parent_reap_ms=80.0, collected_by_parent=20)) == []
    slow = grade(served(still_running_after_settle=4, collected_by_parent=20), Limits())
    assert [h.code for h in slow.hints] == ["slow-exit"] and slow.verdict == "pass"


def test_with_tcp_a_criterion_no_client_exercised_is_skipped() -> None:
    report = grade(served(echoes_ok=0, echoes_failed=20, failures={"timed out": 20}), Limits())
    by_name = {c.name: c for c in report.criteria}
    assert by_name["zombies at end"].skipped and by_name["reaped by parent"].skipped
    assert by_name["replies"].failed and report.verdict == "fail"
    # Zombies seen anyway still fail: skipping never hides a leak.
    leak = grade(served(echoes_ok=0, echoes_failed=20, zombies_at_end=3), Limits())
    assert {c.name for c in leak.criteria if c.failed} == {"zombies at end", "replies"}


def test_environment_problem_is_an_error_not_a_fail() -> None:
    facts = served(environment="port 9000 is already in use by another program: nc (pid 7)")
    report = grade(facts, Limits())
    assert report.verdict == "error" and report.hints == []
    assert report.criteria[0].name == "environment" and report.criteria[0].error
    assert all(c.skipped for c in report.criteria[1:])
    assert report.reasons == [facts.environment]
    limits = could_not_check(["./srv"], "zombiectl ran out of a resource", 9000, Limits())
    assert limits.verdict == "error"


def test_cmd_that_did_not_start_is_an_error_on_process() -> None:
    facts = Facts(["nope"], 0, "run", 127, 0.1, None, not_started="command not found: nope")
    report = grade(facts, Limits())
    assert report.verdict == "error"
    assert [c.name for c in report.criteria if c.error] == ["process"]


def _leaky(pid: int) -> Facts:
    return served(
        pid=pid,
        zombies_at_end=20,
        leakers=[Leaker(pid, "srv", "./srv 9000", 20)],
        stdout_text="listening\n",
        stderr_text="warn\x1b[31m\n",
    )


def test_junit_names_types_stable_messages_and_pids_in_properties() -> None:
    one = ET.fromstring(junit_xml(grade(_leaky(111), Limits()), name="alice"))
    two = ET.fromstring(junit_xml(grade(_leaky(222), Limits()), name="alice"))
    assert one.get("name") == "alice"
    assert {case.get("classname") for case in one.iter("testcase")} == {"alice"}
    (failure,) = one.iter("failure")
    assert failure.get("type") == "zombies at end"
    assert failure.get("message") == next(two.iter("failure")).get("message")
    assert "111" not in (failure.get("message") or "")
    props = {(p.get("name"), p.get("value")) for p in one.iter("property")}
    assert ("leaker", "pid 111 srv: 20") in props and ("hint", "no-wait") in props
    assert one.findtext("system-out") == "listening\n"
    assert one.findtext("system-err") == "warn\\x1b[31m\n"  # XML 1.0 cannot carry ESC


def test_junit_output_is_capped_head_and_tail() -> None:
    text = "A" * 100_000 + "Z" * 100_000
    root = ET.fromstring(junit_xml(grade(served(stdout_text=text), Limits())))
    out = root.findtext("system-out") or ""
    assert len(out) < 70_000 and out.startswith("AAAA") and out.endswith("ZZZZ")
    assert "characters cut" in out


def test_xml_text_keeps_newlines_and_escapes_what_xml_cannot_carry() -> None:
    assert xml_text("a\tb\nc") == "a\tb\nc"
    assert xml_text("\x00\x07\ufffe") == "\\x00\\x07\\xfffe"
    ET.fromstring(f"<a>{xml_text(chr(1) + 'é' + chr(0xD800))}</a>")


def test_gradescope_has_one_test_per_criterion_and_the_sum() -> None:
    report = grade(_leaky(111), Limits())
    results = gradescope(report, name="alice")
    json.dumps(results)  # serialisable as it stands
    tests = {t["name"]: t for t in results["tests"]}
    # "zombie age" is left out by the options (no --max-zombie-age): not a test.
    assert set(tests) == {"zombies at end", "reaped by parent", "replies", "listening", "process"}
    assert tests["zombies at end"] == {
        "name": "zombies at end",
        "score": 0,
        "max_score": 1,
        "status": "failed",
        "output": report.reasons[0],
    }
    assert all(
        t["score"] == 1 and t["status"] == "passed"
        for n, t in tests.items()
        if n != "zombies at end"
    )
    assert results["score"] == 4 and results["output"].startswith("alice")


def test_json_has_name_hints_and_criteria() -> None:
    data = as_dict(grade(_leaky(111), Limits()), name="alice")
    assert data["name"] == "alice" and data["verdict"] == "fail"
    assert data["hints"] == [{"code": "no-wait", "text": data["hints"][0]["text"]}]
    assert {c["name"]: c["outcome"] for c in data["criteria"]}["zombies at end"] == "failed"
    text = plain_text(grade(_leaky(111), Limits()), name="alice\x1b")
    assert text.startswith("name: alice\\x1b\n") and "\nhints:\n  no-wait: " in text
