"""A CMD for the init comparisons: leave N orphans to the init, release them all at
once, and measure how long the init takes to reap them.

    $ zombiectl run -- python tests/programs/orphan_burst.py 1000
    {"orphans": 1000, "adopted": 1000, "reaped_s": 0.0213, "left": 0, "zombies": 0}

A spawner child starts N `cat` processes reading one pipe, then exits: the cats are
orphans, adopted by the nearest subreaper (the init under test). Closing the pipe's
write end makes every cat exit at the same moment; the script then watches /proc until
each pid is gone, which happens only when its adopter reaps it. Exit status 0 when all
were adopted and reaped, 1 otherwise.

usage: orphan_burst.py N [TIMEOUT_S]
"""

from __future__ import annotations

import json
import os
import sys
import time


def _stat(pid: int) -> tuple[str, int] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    fields = raw[raw.rindex(b")") + 2 :].split()
    return fields[0].decode(), int(fields[1])


def _spawn_cats(n: int, r: int, report: int) -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    actions = [(os.POSIX_SPAWN_DUP2, r, 0), (os.POSIX_SPAWN_DUP2, devnull, 1)]
    pids = []
    try:
        for _ in range(n):
            pids.append(os.posix_spawnp("cat", ["cat"], os.environ, file_actions=actions))
    finally:
        os.write(report, " ".join(map(str, pids)).encode())
        os._exit(0)


def main() -> int:
    n = int(sys.argv[1])
    timeout = float(sys.argv[2]) if len(sys.argv) > 2 else 30.0
    init = os.getppid()
    r, w = os.pipe()
    report_r, report_w = os.pipe()
    spawner = os.fork()
    if spawner == 0:
        os.close(w)
        os.close(report_r)
        _spawn_cats(n, r, report_w)
    os.close(r)
    os.close(report_w)
    chunks = []
    while chunk := os.read(report_r, 65536):
        chunks.append(chunk)
    os.close(report_r)
    os.waitpid(spawner, 0)
    pids = [int(x) for x in b"".join(chunks).split()]
    adopted = sum(1 for p in pids if (_stat(p) or ("", 0))[1] == init)

    started = time.perf_counter()
    os.close(w)  # every cat reads EOF now and exits
    remaining = set(pids)
    deadline = started + timeout
    while remaining and time.perf_counter() < deadline:
        remaining = {p for p in remaining if os.path.exists(f"/proc/{p}")}
        if remaining:
            time.sleep(0.0005)
    elapsed = time.perf_counter() - started
    left = [p for p in remaining if (_stat(p) or ("", 0))[1] == init]
    zombies = [p for p in left if (_stat(p) or ("", 0))[0] == "Z"]
    result = {
        "orphans": len(pids),
        "adopted": adopted,
        "reaped_s": round(elapsed, 4),
        "left": len(left),
        "zombies": len(zombies),
    }
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0 if adopted == n == len(pids) and not left else 1


if __name__ == "__main__":
    sys.exit(main())
