"""Benchmark `zombiectl check`: its own CPU while it checks a server that holds 100 live
children for 10 s (kernel events, and sampling at the default --sample), and the client
phase of 1,000 clients through a correct forking C echo server.

    $ .venv/bin/python bench/bench_check.py
    (the numbers of a run are printed as below)

zombiectl's CPU is read from /proc/PID/stat (its own utime + stime and its guard's, not
CMD's) between 2 s and 9 s into the check, so start-up and clean-up are left out. The
time from SIGTERM to exit is measured against a tree that ignores SIGTERM (so --grace,
here 1 s, runs out) and against one that ends at once. The client
phase is the `client_seconds` of the check's JSON report: from the first connection to
the last reply.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import ROOT, ZOMBIECTL, verdict

from zombiectl.proc import events as pev

CPU_TARGET = 0.05  # of one core, with events
CLIENTS_TARGET = 3.0  # seconds for 1,000 clients
FORKING_ECHO = ROOT / "tests" / "programs" / "forking_echo.c"

# Forks 100 children that sleep, and sleeps too: a server holding 100 live handlers.
HOLDS_100 = r"""
import os, time
for _ in range(100):
    if os.fork() == 0:
        time.sleep(3600)
        os._exit(0)
time.sleep(3600)
"""


def zombiectl_command() -> list[str]:
    return [ZOMBIECTL] if ZOMBIECTL else [sys.executable, "-m", "zombiectl"]


def cpu_seconds(pid: int) -> float:
    raw = Path(f"/proc/{pid}/stat").read_bytes()
    fields = raw[raw.rfind(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def guard_of(pid: int) -> int | None:
    """The guard: zombiectl's child named zombiectl-guard."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        for kid in (task / "children").read_text().split():
            try:
                if Path(f"/proc/{kid}/comm").read_text().strip() == "zombiectl-guard":
                    return int(kid)
            except OSError:
                continue
    return None


def cpu_of(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += cpu_seconds(pid)
        except OSError:
            continue
    return total


def cpu_share(sampled: bool, window: tuple[float, float] = (2.0, 9.0)) -> float:
    env = dict(os.environ)
    env.pop("ZOMBIECTL_CHECK_SAMPLED", None)
    if sampled:
        env["ZOMBIECTL_CHECK_SAMPLED"] = "1"
    cmd = [
        *zombiectl_command(),
        "check",
        "--json",
        "--duration",
        "10",
        "--max-zombies",
        "1000",
        "--",
        sys.executable,
        "-c",
        HOLDS_100,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        start = time.monotonic()
        time.sleep(window[0])
        guard = guard_of(proc.pid)
        pids = [proc.pid] + ([guard] if guard is not None else [])
        c0, t0 = cpu_of(pids), time.monotonic()
        time.sleep(window[1] - (t0 - start))
        c1, t1 = cpu_of(pids), time.monotonic()
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return (c1 - c0) / (t1 - t0)


# Ignores SIGTERM and SIGINT, as does its child: only SIGKILL after --grace ends them.
DEAF = r"""
import os, signal, sys, time
for s in (signal.SIGTERM, signal.SIGINT):
    signal.signal(s, signal.SIG_IGN)
os.fork()
sys.stderr.write("ready\n")
sys.stderr.flush()
time.sleep(3600)
"""
POLITE = "import sys, time; sys.stderr.write('ready\\n'); sys.stderr.flush(); time.sleep(3600)"


def sigterm_to_exit(program: str, grace: float) -> float:
    cmd = [*zombiectl_command(), "check", "--json", "--duration", "60", "--grace", str(grace),
           "--", sys.executable, "-c", program]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if line.startswith("ready"):
                break
        time.sleep(0.3)
        sent = time.monotonic()
        proc.send_signal(15)
        proc.communicate(timeout=60)
        return time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def client_phase(server: Path, clients: int) -> dict:
    port = free_port()
    cmd = [
        *zombiectl_command(),
        "check",
        "--json",
        "--tcp",
        str(port),
        "--clients",
        str(clients),
        "--settle",
        "0.2",
        "--",
        str(server),
        str(port),
        "fixed",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    return json.loads(res.stdout)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=1000)
    args = parser.parse_args()
    events = pev.available()
    print("zombiectl's own CPU while checking a server holding 100 live children (10 s)")
    share_events = cpu_share(sampled=False) if events else None
    share_sampled = cpu_share(sampled=True)
    if share_events is not None:
        print(
            f"  kernel events        {share_events * 100:6.2f} % of one core"
            f"  (target <= {CPU_TARGET * 100:g} %)  {verdict(share_events <= CPU_TARGET)}"
        )
    else:
        print("  kernel events        not measured (refused here: not root?)")
    print(f"  sampled every 0.1 s  {share_sampled * 100:6.2f} % of one core")
    print("SIGTERM to exit (--grace 1; the contract: within --grace + 2 s)")
    deaf = sigterm_to_exit(DEAF, 1.0)
    polite = sigterm_to_exit(POLITE, 1.0)
    print(f"  tree ignores SIGTERM {deaf:6.2f} s  {verdict(deaf <= 3.0)}")
    print(f"  tree ends at once    {polite:6.2f} s  {verdict(polite <= 3.0)}")
    if shutil.which("gcc") is None:
        print("client phase: not measured (no C compiler)")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        exe = Path(tmp) / "forking_echo"
        subprocess.run(["gcc", "-O2", "-o", str(exe), str(FORKING_ECHO)], check=True)
        report = client_phase(exe, args.clients)
    took = report["client_seconds"]
    print(f"{args.clients} clients through a correct forking C echo server")
    print(
        f"  client phase         {took:6.2f} s  (target < {CLIENTS_TARGET:g} s)"
        f"  {verdict(took < CLIENTS_TARGET)}"
    )
    print(
        f"  replies ok           {report['echoes_ok']} of {report['clients']};"
        f" children seen {report['children']}; verdict {report['verdict']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
