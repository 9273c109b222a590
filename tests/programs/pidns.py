"""Container-like PID namespaces whose init holds zombies, for `reap` and `doctor` tests.

Each role is meant to run as PID 1 of a fresh PID namespace
(`unshare --pid --fork --mount-proc python pidns.py ROLE ...`):

  init N LOG         a container's init that never reaps: forks N children that exit at
                     once, prints "ready", and logs each ending signal it receives
                     (SIGTERM, SIGINT, SIGHUP, SIGQUIT) to LOG; on EOF on stdin it exits,
                     and the kernel clears its namespace. SIGKILL from outside ends it.
  scenario N LOG ARGS...
                     a host in miniature: pid 2 is an ordinary process holding N zombies,
                     and a nested namespace (made with `unshare --pid --fork`) runs
                     `init N LOG`. Then `python -m zombiectl ARGS` runs here, while this
                     PID 1 reaps every orphan at once; prints one JSON object: zombiectl's
                     exit code and output, how pid 2 ended, and whether the nested init
                     still runs with its zombies.
  run N CMD...       an init that never reaps: forks N children that exit, runs CMD, and
                     waits for CMD only (its zombies and any orphan stay until CMD is done);
                     then reaps everything and exits with CMD's status.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

ENDING = [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT]


def leak(n: int) -> list[int]:
    """Fork n children that exit at once; never wait for them."""
    pids = []
    for _ in range(n):
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        pids.append(pid)
    return pids


def role_init(n: int, log_path: str) -> None:
    # Blocked signals are queued even for a namespace's init, which the kernel would
    # otherwise spare from any signal it has no handler for (all but SIGKILL).
    signal.pthread_sigmask(signal.SIG_BLOCK, ENDING)
    leak(n)
    threading.Thread(target=_exit_on_eof, daemon=True).start()
    print("ready", flush=True)
    with open(log_path, "a", buffering=1) as log:
        while True:
            info = signal.sigwaitinfo(ENDING)
            log.write(f"{signal.Signals(info.si_signo).name} {info.si_code}\n")


def _exit_on_eof() -> None:
    sys.stdin.read()
    os._exit(0)


# --------------------------------------------------------------------------- scenario


def stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, starttime) of pid in this namespace's /proc, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    rest = raw[raw.rfind(b")") + 2 :].split()
    return rest[0].decode(), int(rest[1]), int(rest[19])


def zombie_children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = [int(x) for x in f.read().split()]
    except OSError:
        return []
    return [k for k in kids if (s := stat(k)) is not None and s[0] == "Z" and s[1] == pid]


def wait_for(cond, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


REAPED: dict[int, int] = {}  # pid -> wait status, of every child this PID 1 reaped


def reap(flags: int = 0) -> int:
    """Reap one child (any: this is PID 1); 0 when none was ready or none is left."""
    try:
        got, status = os.waitpid(-1, flags)
    except ChildProcessError:
        return 0
    if got:
        REAPED[got] = status
    return got


def reap_until(pid: int) -> int:
    """Reap every child until pid is reaped; return pid's wait status."""
    while pid not in REAPED and reap():
        pass
    return REAPED[pid]


def how_it_ended(pid: int) -> str | None:
    status = REAPED.get(pid)
    if status is None:
        return None
    code = os.waitstatus_to_exitcode(status)
    return signal.Signals(-code).name if code < 0 else f"exit {code}"


def role_scenario(n: int, log_path: str, args: list[str]) -> None:
    r, w = os.pipe()
    leaker = os.fork()
    if leaker == 0:  # pid 2 here: an ordinary process that never reaps
        os.close(w)
        leak(n)
        os.read(r, 1)
        os._exit(0)
    os.close(r)
    shim = subprocess.Popen(
        ["unshare", "--pid", "--fork", sys.executable, __file__, "init", str(n), log_path],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert shim.stdout is not None and shim.stdout.readline().strip() == "ready"
    inner = _only_child(shim.pid)
    ok = wait_for(lambda: len(zombie_children(leaker)) == n and len(zombie_children(inner)) == n)
    inner_before = stat(inner)
    out_r, out_w = os.pipe()
    zpid = os.posix_spawn(
        sys.executable,
        [sys.executable, "-m", "zombiectl", *args],
        dict(os.environ, NO_COLOR="1", COLUMNS="200"),
        file_actions=[(os.POSIX_SPAWN_DUP2, out_w, 1), (os.POSIX_SPAWN_CLOSE, out_r)],
    )
    os.close(out_w)
    output = _read_all_while_reaping(out_r)
    status = reap_until(zpid)
    inner_after = stat(inner)
    report = {
        "ready": ok,
        "rc": os.waitstatus_to_exitcode(status),
        "output": output,
        "leaker": leaker,
        "leaker_ended": how_it_ended(leaker),
        "inner": inner,
        "inner_same": inner_after is not None and inner_after[2] == inner_before[2],  # type: ignore[index]
        "inner_state": inner_after[0] if inner_after else None,
        "inner_zombies": len(zombie_children(inner)),
    }
    os.close(w)  # the leaker (if still alive) exits
    assert shim.stdin is not None
    shim.stdin.close()  # the nested init exits, and the kernel clears its namespace
    print(json.dumps(report), flush=True)
    while reap():  # the leaker, the shim and any orphan: nothing is left to the kernel
        pass


def _only_child(pid: int) -> int:
    kids: list[str] = []

    def found() -> bool:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids[:] = f.read().split()
        return bool(kids)

    wait_for(found)
    return int(kids[0])


def _read_all_while_reaping(fd: int) -> str:
    """zombiectl's stdout; meanwhile this PID 1 reaps orphans, as a reaping init does."""
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: _drain(fd, chunks))
    reader.start()
    while reader.is_alive():
        if not reap(os.WNOHANG):
            reader.join(0.005)
    return b"".join(chunks).decode()


def _drain(fd: int, chunks: list[bytes]) -> None:
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)


# --------------------------------------------------------------------------- run


def role_run(n: int, cmd: list[str]) -> None:
    leak(n)
    pid = os.posix_spawn(cmd[0], cmd, os.environ)
    _, status = os.waitpid(pid, 0)
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            break
    sys.exit(os.waitstatus_to_exitcode(status))


def main() -> None:
    role, n = sys.argv[1], int(sys.argv[2])
    if role == "init":
        role_init(n, sys.argv[3])
    elif role == "scenario":
        role_scenario(n, sys.argv[3], sys.argv[4:])
    elif role == "run":
        role_run(n, sys.argv[3:])
    else:
        sys.exit(f"unknown role {role}")


if __name__ == "__main__":
    main()
