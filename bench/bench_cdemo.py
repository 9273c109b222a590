"""Warm-cache cost of the C demo: the checked cache walk and `demo c` end to end.

$ .venv/bin/python bench/bench_cdemo.py
build("fork_no_wait"), warm cache, 200 calls: median 194 us, min 187 us
demo c --count 2 (whole command), warm cache, 15 runs: median 335 ms, min 309 ms

The cache lives in a private temporary directory made for the run. To compare with
another checkout, run the same file with PYTHONPATH pointing at that checkout.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

DEMO = ["demo", "c", "--count", "2", "--interval", "0", "--lifetime", "0", "--hold", "0"]


def time_build(calls: int) -> list[float]:
    from zombiectl.demo import cbuild

    def once() -> float:
        start = time.perf_counter()
        found = cbuild.build("fork_no_wait")
        spent = time.perf_counter() - start
        fd = getattr(found, "fd", None)  # older versions returned a path
        if fd is not None:
            os.close(fd)
        return spent

    once()  # warm the cache
    return [once() for _ in range(calls)]


def time_demo(runs: int) -> list[float]:
    cmd = [sys.executable, "-m", "zombiectl", *DEMO, "--json"]
    spent = []
    for _ in range(runs):
        start = time.perf_counter()
        res = subprocess.run(cmd, capture_output=True, check=False)
        spent.append(time.perf_counter() - start)
        if res.returncode != 0:
            raise SystemExit(f"demo c failed: {res.stderr.decode()}")
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        os.environ["XDG_CACHE_HOME"] = cache
        b = time_build(args.calls)
        print(
            f'build("fork_no_wait"), warm cache, {args.calls} calls: '
            f"median {statistics.median(b) * 1e6:.0f} us, min {min(b) * 1e6:.0f} us"
        )
        d = time_demo(args.runs)
        print(
            f"demo c --count 2 (whole command), warm cache, {args.runs} runs: "
            f"median {statistics.median(d) * 1e3:.0f} ms, min {min(d) * 1e3:.0f} ms"
        )


if __name__ == "__main__":
    main()
