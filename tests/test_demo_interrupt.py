"""Clean-up that cannot fail: `demo` interrupted by SIGINT, SIGTERM and SIGKILL at several
moments, then the session's descendants are searched for anything left behind.

zombiectl runs as a real subprocess in its own session. The test session is a child
subreaper, so whatever zombiectl's death orphans comes back to it and is found here.
The children of these demos would live 30 s if clean-up failed.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
from proctools import GLOBAL_TIMEOUT, describe, leftover_descendants, reap_adopted, wait_until

LONG = ["--interval", "0.05", "--lifetime", "30", "--hold", "30"]
CASES = {
    "fork": ["fork", "--count", "40", *LONG],
    "double-fork": ["double-fork", "--count", "40", *LONG],
    # Workers are the fork server's children: the lab parent's live children are the
    # fork server and the resource tracker, which exist only once a start has begun.
    "forkserver": ["active-children", "--count", "40", "--start-method", "forkserver", *LONG],
    "blocked": ["interleaved", "--gap", "0", "--count", "4", "--hold", "30"],
}


class Demo:
    def __init__(self, args: list[str]) -> None:
        env = dict(os.environ, NO_COLOR="1", COLUMNS="120")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "zombiectl", "demo", *args, "--json", "--sample", "0.05"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            env=env,
        )
        self.buf = b""
        self.events: list[dict] = []

    def read_until(self, cond: Callable[[dict], bool], timeout: float = GLOBAL_TIMEOUT) -> dict:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for ev in self._parse():
                if cond(ev):
                    return ev
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                data = os.read(fd, 65536)
                if not data:
                    break
                self.buf += data
        raise AssertionError(f"condition not seen; events so far: {self.events[-3:]}")

    def _parse(self) -> list[dict]:
        *lines, self.buf = self.buf.split(b"\n")
        new = [json.loads(line) for line in lines if line.strip()]
        self.events.extend(new)
        return new

    def finish(self, timeout: float = GLOBAL_TIMEOUT) -> tuple[int, str]:
        out, err = self.proc.communicate(timeout=timeout)
        self.buf += out
        self._parse()
        return self.proc.returncode, err.decode()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()


def nothing_left() -> bool:
    reap_adopted(timeout=0)
    return not leftover_descendants()


def assert_nothing_left() -> None:
    ok = wait_until(nothing_left, interval=0.02)
    assert ok, f"left behind: {describe(leftover_descendants())}"


def running(n: int) -> Callable[[dict], bool]:
    # reaped counts too: double-fork's children are reaped at once (the workers live on).
    return lambda ev: ev["event"] == "sample" and ev["alive"] + ev["zombies"] + ev["reaped"] >= n


MOMENTS: dict[str, Callable[[dict], bool] | None] = {
    "at-once": None,  # before zombiectl has even started its lab, most likely
    "first-sample": lambda ev: ev["event"] == "sample",
    "running": running(3),
}
# multiprocessing's fork server and resource tracker are up (helpers, never children).
MOMENTS_EXTRA = {"helpers": lambda ev: ev["event"] == "sample" and ev.get("helpers", 0) >= 2}


def interrupt(case: str, sig: int, moment: str) -> None:
    demo = Demo(CASES[case])
    try:
        cond = {**MOMENTS, **MOMENTS_EXTRA}[moment]
        if cond is not None:
            demo.read_until(cond)
        os.kill(demo.proc.pid, sig)
        rc, err = demo.finish()
    except BaseException:
        demo.kill()
        raise
    finally:
        assert_nothing_left()
    if sig == signal.SIGKILL:
        assert rc == -signal.SIGKILL
        return
    if moment == "at-once":
        return  # may have died before its handlers existed: only "nothing left" matters
    assert rc == (143 if sig == signal.SIGTERM else 130), err
    assert err.count("\n") == 1 and "0 left" in err, err
    summaries = [e for e in demo.events if e["event"] == "summary"]
    assert summaries and summaries[-1]["leftover"] == 0
    assert summaries[-1].get("interrupted") is True


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
@pytest.mark.parametrize("moment", list(MOMENTS))
def test_fork_demo_interrupted(sig: int, moment: str) -> None:
    interrupt("fork", sig, moment)


@pytest.mark.parametrize("case", ["double-fork", "forkserver", "blocked"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_orphans_and_helpers_are_cleaned_up(case: str, sig: int) -> None:
    interrupt(case, sig, {"blocked": "first-sample", "forkserver": "helpers"}.get(case, "running"))


def test_interrupt_during_hold_reports_the_zombies() -> None:
    demo = Demo(["interleaved", "--gap", "0", "--count", "4", "--hold", "30"])
    try:
        demo.read_until(lambda ev: ev["event"] == "sample" and ev["zombies"] == 4)
        os.kill(demo.proc.pid, signal.SIGINT)
        rc, err = demo.finish()
    finally:
        demo.kill()
        assert_nothing_left()
    assert rc == 130, err
    summary = demo.events[-1]
    assert summary["event"] == "summary" and summary["final_zombies"] == 4
    assert summary["leftover"] == 0


# Ctrl-C while the entry point is still importing click and rich (the first ~0.2 s of
# every command): the interrupt arrives inside an import, before any handler exists.
_CTRL_C_DURING_IMPORT = """
import sys
class Interrupting:
    def find_spec(self, name, path=None, target=None):
        if name == "zombiectl.cli":
            raise KeyboardInterrupt
        return None
sys.meta_path.insert(0, Interrupting())
from zombiectl.main import main
main(["explain"])
"""


def test_ctrl_c_during_start_up_is_exit_130_without_a_traceback() -> None:
    res = subprocess.run(
        [sys.executable, "-c", _CTRL_C_DURING_IMPORT],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert res.returncode == 130
    assert res.stderr == "zombiectl: interrupted\n"
