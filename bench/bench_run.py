"""Benchmark `zombiectl run`: start-up time against tini and a bare interpreter, and how
fast 1,000 orphans that exit at once are reaped, under zombiectl run and under tini.

    $ .venv/bin/python bench/bench_run.py
    start-up (median of 5 rounds x 20 starts; ms per start)
      tini -s -- true                              1.6 ms
      python -c pass                              11.9 ms
      python -c 'import subprocess'               26.8 ms
      zombiectl run -- true                       27.4 ms
    reaping 1000 orphans that exit at once (median of 5 rounds)
      zombiectl run --                            86.2 ms
      tini -s --                                  81.8 ms
    ratios (same run)
      zombiectl run / python importing subprocess     1.02  (target <= 1.5)  meets target
      zombiectl run / python -c pass                  2.30
      zombiectl run / tini (start-up)                16.68
      zombiectl run / tini (reap 1000 orphans)        1.05  (target <= 1.5)  meets target

The reap time runs from the moment the orphans are released until the last of their
pids has left /proc, which happens only when the init reaps it.
Every ratio is measured in the same run on the same machine, so load cancels out as far
as it can. Commands are timed with posix_spawn + waitpid (no shell in between), in
interleaved order, and each figure is the median over the rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import ROOT, ZOMBIECTL, median, verdict

ORPHAN_BURST = ROOT / "tests" / "programs" / "orphan_burst.py"


def zombiectl_command() -> list[str]:
    """The installed console script next to this interpreter, as a user runs it."""
    return [ZOMBIECTL] if ZOMBIECTL else [sys.executable, "-m", "zombiectl"]


def time_start(argv: list[str], env: dict[str, str]) -> float:
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        actions = [(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1)]
        started = time.perf_counter()
        pid = os.posix_spawnp(argv[0], argv, env, file_actions=actions)
        _, status = os.waitpid(pid, 0)
        elapsed = time.perf_counter() - started
    finally:
        os.close(devnull)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"benchmark command failed: {' '.join(argv)}")
    return elapsed


def orphan_reap_time(init: list[str], orphans: int) -> float:
    result = subprocess.run(
        [*init, sys.executable, str(ORPHAN_BURST), str(orphans), "60"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    if result.returncode != 0 or report["left"]:
        raise SystemExit(f"orphans not all reaped under {init[0]}: {report}")
    return float(report["reaped_s"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--starts", type=int, default=20, help="starts per command per round")
    parser.add_argument("--orphans", type=int, default=1000)
    args = parser.parse_args(argv)

    env = dict(os.environ)
    zctl = zombiectl_command()
    # An installed package has its bytecode compiled; write it once, as an install would
    # (PYTHONDONTWRITEBYTECODE would otherwise make every start compile from source).
    warm_env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([*zctl, "run", "--", "true"], env=warm_env, check=True)
    subprocess.run([sys.executable, "-c", "import subprocess"], env=warm_env, check=True)

    tini = shutil.which("tini")
    starts: dict[str, list[str]] = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import subprocess'": [sys.executable, "-c", "import subprocess"],
        "zombiectl run -- true": [*zctl, "run", "--", "true"],
    }
    if tini:
        starts["tini -s -- true"] = [tini, "-s", "--", "true"]
    inits: dict[str, list[str]] = {"zombiectl run --": [*zctl, "run", "--"]}
    if tini:
        inits["tini -s --"] = [tini, "-s", "--"]

    per_round: dict[str, list[float]] = {name: [] for name in [*starts, *inits]}
    for _ in range(args.rounds):
        samples: dict[str, list[float]] = {name: [] for name in starts}
        for _ in range(args.starts):
            for name, cmd in starts.items():
                samples[name].append(time_start(cmd, env))
        for name in starts:
            per_round[name].append(statistics.mean(samples[name]))
        for name, cmd in inits.items():
            per_round[name].append(orphan_reap_time(cmd, args.orphans))
    med = {name: median(values) for name, values in per_round.items()}

    print(f"start-up (median of {args.rounds} rounds x {args.starts} starts; ms per start)")
    for name in sorted(starts, key=lambda n: med[n]):
        print(f"  {name:<40} {med[name] * 1000:7.1f} ms")
    print(f"reaping {args.orphans} orphans that exit at once (median of {args.rounds} rounds)")
    for name in inits:
        print(f"  {name:<40} {med[name] * 1000:7.1f} ms")
    if not tini:
        print("  (tini not installed: `apt-get install tini` for the comparison)")

    print("ratios (same run)")
    rows = [
        ("zombiectl run / python importing subprocess", "zombiectl run -- true",
         "python -c 'import subprocess'", 1.5),
        ("zombiectl run / python -c pass", "zombiectl run -- true", "python -c pass", None),
        ("zombiectl run / tini (start-up)", "zombiectl run -- true", "tini -s -- true", None),
        ("zombiectl run / tini (reap 1000 orphans)", "zombiectl run --", "tini -s --", 1.5),
    ]  # fmt: skip
    failed = False
    for label, num, den, target in rows:
        if num not in med or den not in med:
            continue
        ratio = med[num] / med[den]
        verdict_text = ""
        if target is not None:
            ok = ratio <= target
            failed |= not ok
            verdict_text = f"  (target <= {target})  {verdict(ok)}"
        print(f"  {label:<45} {ratio:6.2f}{verdict_text}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
