"""A CMD for the init comparisons: print each signal it receives, one line each.

    $ zombiectl run -- python tests/programs/record_signals.py
    ready 4711
    SIGHUP 4711
    SIGTERM 4711

Prints `ready PID` once its handlers are installed. SIGTERM ends it with status 0.
With `--fork`, it first starts a second recorder in its own process group (so a signal
sent to the group reaches both), and on SIGTERM waits for it before exiting.
"""

from __future__ import annotations

import os
import signal
import sys

RECORDED = (
    "SIGTERM",
    "SIGINT",
    "SIGHUP",
    "SIGQUIT",
    "SIGUSR1",
    "SIGUSR2",
    "SIGWINCH",
    "SIGPIPE",
    "SIGXFSZ",
)
child = 0


def handler(sig: int, frame: object) -> None:
    os.write(1, f"{signal.Signals(sig).name} {os.getpid()}\n".encode())
    if sig == signal.SIGTERM:
        if child:
            os.waitpid(child, 0)
        os._exit(0)


def main() -> None:
    global child
    for name in RECORDED:
        signal.signal(getattr(signal, name), handler)
    if "--fork" in sys.argv[1:]:
        r, w = os.pipe()
        child = os.fork()
        if child == 0:
            child = 0
            os.close(r)
            os.write(1, f"ready {os.getpid()}\n".encode())
            os.close(w)
            while True:
                signal.pause()
        os.close(w)
        os.read(r, 1)  # the child has printed its ready line
        os.close(r)
    os.write(1, f"ready {os.getpid()}\n".encode())
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
