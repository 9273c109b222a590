"""Benchmark `zombiectl list` (`--json`, and the table piped) and `watch --pid` against `ps`.

Each against `ps -eo pid,ppid,stat` in the same run, so machine load hits both alike.
"""

from __future__ import annotations

import argparse
import sys

from benchlib import (
    ZOMBIECTL,
    Holder,
    alternate,
    compile_bytecode,
    headroom,
    median,
    run_measured,
    verdict,
)


def bench_list(zombies: int, rounds: int) -> None:
    with Holder(zombies) as holder:
        cmds = {
            "ps -eo pid,ppid,stat": ["ps", "-eo", "pid,ppid,stat"],
            "zombiectl list --json": [ZOMBIECTL, "list", "--json"],
            "zombiectl list (piped)": [ZOMBIECTL, "list"],
        }
        # one warm-up each: the first read of 10,000 /proc entries populates the dentry cache
        for cmd in cmds.values():
            run_measured(cmd)
        res = alternate(cmds, rounds)
        ps = median([w for w, _, _ in res["ps -eo pid,ppid,stat"]])
        zc = median([w for w, _, _ in res["zombiectl list --json"]])
        table = median([w for w, _, _ in res["zombiectl list (piped)"]])
        rss = max(m for _, _, m in res["zombiectl list --json"]) / 1024
        ratio = zc / ps
        print(
            f"list with {zombies} zombies under pid {holder.pid}, {rounds} rounds, median wall time:"
        )
        print(f"  ps -eo pid,ppid,stat     {ps * 1000:7.1f} ms")
        print(
            f"  zombiectl list --json    {zc * 1000:7.1f} ms   ratio {ratio:.2f} (target <= 0.5): {verdict(ratio <= 0.5)}"
        )
        print(
            f"  zombiectl list (piped)   {table * 1000:7.1f} ms   ratio {table / ps:.2f} (target <= 0.6): {verdict(table / ps <= 0.6)}"
        )
        print(f"  peak RSS of list         {rss:7.1f} MiB  (target < 40 MiB): {verdict(rss < 40)}")
        cpu_list = median([c for _, c, _ in res["zombiectl list --json"]])
        cpu_ps = median([c for _, c, _ in res["ps -eo pid,ppid,stat"]])
        print(
            f"  CPU: ps {cpu_ps * 1000:.1f} ms, list {cpu_list * 1000:.1f} ms (list spreads its reads over a forked reader per CPU)"
        )


def bench_watch(children: int, others: int, ticks: int, rounds: int) -> None:
    with Holder(others), Holder(children * 9 // 10, children - children * 9 // 10) as parent:
        base = [ZOMBIECTL, "watch", "--pid", str(parent.pid), "--json", "--interval", "0.05"]
        per_tick = []
        for _ in range(rounds):
            _, cpu_one, _ = run_measured([*base, "--count", "1"])
            _, cpu_many, _ = run_measured([*base, "--count", str(ticks + 1)])
            per_tick.append((cpu_many - cpu_one) / ticks)
        ps_cpu = median([run_measured(["ps", "-eo", "pid,ppid,stat"])[1] for _ in range(rounds)])
        tick = median(per_tick)
        print(
            f"watch --pid on a parent with {children} children among {others + children}+ processes,"
            f" {ticks} ticks, {rounds} rounds:"
        )
        print(
            f"  CPU per tick             {tick * 1000:7.2f} ms  (target < 10 ms): {verdict(tick < 0.010)}"
        )
        print(
            f"  one ps -eo pid,ppid,stat {ps_cpu * 1000:7.2f} ms of CPU   ratio {tick / ps_cpu:.3f}"
        )


def bench_version(rounds: int) -> None:
    res = alternate(
        {
            "python -c pass": [sys.executable, "-c", "pass"],
            "zombiectl --version": [ZOMBIECTL, "--version"],
        },
        rounds,
    )
    bare = median([w for w, _, _ in res["python -c pass"]])
    zc = median([w for w, _, _ in res["zombiectl --version"]])
    print(f"start-up, {rounds} rounds, median wall time:")
    print(f"  python -c pass           {bare * 1000:7.1f} ms")
    print(
        f"  zombiectl --version      {zc * 1000:7.1f} ms   ratio {zc / bare:.2f} (target < 60 ms): {verdict(zc < 0.060)}"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zombies", type=int, default=10_000)
    ap.add_argument("--children", type=int, default=1_000)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--ticks", type=int, default=100)
    args = ap.parse_args()
    compile_bytecode()
    room = headroom()
    if args.zombies + args.children + 100 > room:
        print(f"only room for {room} more processes here (pid_max); scaling down", file=sys.stderr)
        args.zombies = max(100, room - args.children - 100)
    bench_version(args.rounds * 3)
    bench_list(args.zombies, args.rounds)
    bench_watch(args.children, args.zombies, args.ticks, max(3, args.rounds // 3))
    return 0


if __name__ == "__main__":
    sys.exit(main())
