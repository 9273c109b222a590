"""Benchmark the pytest plugin: the check after each test, and its cost on a real suite.

    $ .venv/bin/python bench/bench_plugin.py
    (figures: see the output of a run; they are printed, not asserted)

1. The per-test check (`Ledger.check`, what runs after every test's teardown) on a session
   with 50 live descendants, none of them leaked: the median of 2,000 checks.
2. The whole plugin on this project's own suite, a representative subset of fast test
   files (tests/test_proctable.py, tests/test_list.py): wall time with the check on
   (`-o zombies=fail`) and off (`-o zombies=off`), runs interleaved, median of the
   rounds, and the difference per test.
3. What the plugin costs a project that does not turn it on: importing it after pytest
   (``python -X importtime``: the modules it loads and their time).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import ROOT, Holder, compile_bytecode, median, verdict

SUBSET = ["tests/test_proctable.py", "tests/test_list.py"]
TARGET_MS = 2.0


def bench_check(descendants: int, checks: int) -> tuple[float, float]:
    """Median wall and CPU milliseconds of one after-test check with `descendants` live
    descendants (CPU time, user and system, is what load on a shared machine spares)."""
    from zombiectl.proc.prctl import set_child_subreaper
    from zombiectl.testing.guard import Ledger, Owner

    set_child_subreaper(True)
    with Holder(0, alive=descendants - 1):
        ledger = Ledger()  # the holder and its children were there first: nobody's
        seen = len(ledger.owner_of)
        if seen != descendants:
            raise SystemExit(f"expected {descendants} descendants, read {seen}")
        test = Owner("test", "bench::test")
        times, cpu = [], []
        for _ in range(checks):
            started, started_cpu = time.perf_counter(), time.process_time()
            if ledger.check(test, test) is not None:
                raise SystemExit("the benchmark's own processes were blamed")
            times.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)
    return median(times) * 1000, median(cpu) * 1000


def suite_seconds(mode: str) -> tuple[float, int]:
    """Wall seconds of the subset with the check in `mode`, and how many tests ran."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", f"zombies={mode}"]
    started = time.perf_counter()
    out = subprocess.run(
        [*cmd, *SUBSET], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout
    elapsed = time.perf_counter() - started
    last = out.strip().splitlines()[-1]
    counts = dict((word.strip(","), int(n)) for n, word in re.findall(r"(\d+) (\w+)", last))
    if "passed" not in counts:
        raise SystemExit(f"suite run failed ({mode}): {last}")
    for line in out.splitlines():
        if line.startswith(("FAILED", "ERROR")):  # timed all the same; say so
            print(f"  note: with zombies={mode}: {line}", flush=True)
    return elapsed, sum(counts.get(k, 0) for k in ("passed", "failed", "errors", "error"))


# Runs the subset in fail mode with Ledger's two entry points timed: the time spent in
# the plugin's per-test work, free of the noise between two whole runs.
TIMED_RUN = r"""
import sys, time, pytest
from zombiectl.testing import guard
spent = [0.0, 0]
depth = [0]
def timed(fn):
    def wrapper(*args, **kwargs):
        if depth[0]:  # claim() called by check(): already being timed
            return fn(*args, **kwargs)
        depth[0] += 1
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            depth[0] -= 1
            spent[0] += time.perf_counter() - started
            spent[1] += 1
    return wrapper
guard.Ledger.check = timed(guard.Ledger.check)
guard.Ledger.claim = timed(guard.Ledger.claim)
code = pytest.main(["-q", "-p", "no:cacheprovider", "-o", "zombies=fail", *sys.argv[1:]])
print(f"SPENT {spent[0]} {spent[1]} {int(code)}")
"""


def plugin_seconds() -> tuple[float, int]:
    """Seconds spent inside the ledger during a fail-mode run of the subset, and calls."""
    out = subprocess.run(
        [sys.executable, "-c", TIMED_RUN, *SUBSET], cwd=ROOT, capture_output=True, text=True
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("SPENT "))
    _, seconds, calls, code = line.split()
    if code not in ("0", "1"):  # 1: a test failed, the timing holds all the same
        raise SystemExit(f"suite run failed under the timer: exit {code}")
    return float(seconds), int(calls)


def bench_suite(rounds: int) -> None:
    runs: dict[str, list[float]] = {"fail": [], "off": []}
    tests = 0
    for _ in range(rounds):
        for mode in runs:
            seconds, tests = suite_seconds(mode)
            runs[mode].append(seconds)
    on, off = median(runs["fail"]), median(runs["off"])
    print(f"this project's suite, subset {' '.join(SUBSET)} ({tests} tests, median of {rounds})")
    print(f"  zombies = off                        {off:8.2f} s")
    print(f"  zombies = fail                       {on:8.2f} s")
    print(
        f"  overhead                             {(on - off) * 1000 / tests:8.2f} ms per test"
        f"  ({(on / off - 1) * 100:+.1f}%, whole runs: noisy on a shared machine)"
    )
    inside, calls = plugin_seconds()
    print(
        f"  time inside the check                {inside * 1000 / tests:8.2f} ms per test"
        f"  ({calls} checks and claims, {inside * 1000:.1f} ms in all)"
    )


def plugin_import_ms() -> tuple[float, list[str]]:
    """Cumulative import time of the plugin after pytest (python -X importtime), in ms,
    and every module that importing it loaded."""
    code = "import pytest; import zombiectl.testing.pytest_plugin"
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True
    ).stderr
    # Lines after pytest's own import are what the plugin added.
    lines = err.splitlines()
    start = max(i for i, line in enumerate(lines) if line.rstrip().endswith("| pytest"))
    added = [line.split("|") for line in lines[start + 1 :] if line.startswith("import time:")]
    total_us = sum(int(cols[0].split()[-1]) for cols in added)
    return total_us / 1000, [cols[2].strip() for cols in added]


def bench_import(rounds: int) -> None:
    times, modules = [], []
    for _ in range(rounds):
        ms, modules = plugin_import_ms()
        times.append(ms)
    print(f"importing the plugin after pytest, as an inactive run does (median of {rounds})")
    print(f"  modules loaded: {', '.join(m for m in modules)}")
    print(f"  import time                          {median(times):8.2f} ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--descendants", type=int, default=50)
    ap.add_argument("--checks", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    compile_bytecode()
    wall, cpu = bench_check(args.descendants, args.checks)
    print(f"after-test check, {args.descendants} live descendants (median of {args.checks})")
    print(
        f"  Ledger.check, wall                   {wall:8.3f} ms"
        f"  (target <= {TARGET_MS:g} ms)  {verdict(wall <= TARGET_MS)}"
    )
    print(f"  Ledger.check, CPU                    {cpu:8.3f} ms")
    bench_suite(args.rounds)
    bench_import(args.rounds * 3)
    return 0


if __name__ == "__main__":
    sys.exit(main())
