"""Real TCP clients for the echo server lab, and the wait for its handlers to finish.

Each client connects, sends one line, shuts its sending side, reads until the server
closes, and checks that what came back is what it sent. Clients run concurrently, but
never more at once than the server's ``--max-children``: the server gives a handler's
slot back before it closes the connection, so a client that has read its echo to the
end leaves a free slot behind, and no client of the demo is ever refused.

``drive(host, port, clients=3, concurrency=3)`` returns an `EchoResults`: how many
echoes came back right (``ok``), how many did not (``failed``), and why, counted by reason.
"""

from __future__ import annotations

import errno
import os
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from zombiectl.proc import table as proctable

CLIENT_TIMEOUT = 30.0
MAX_CONCURRENCY = 50


@dataclass
class EchoResults:
    ok: int = 0
    failed: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


def message(i: int) -> bytes:
    return f"hello from client {i}\n".encode()


ECHO, ANY, NONE = "echo", "any", "none"
EXPECTATIONS = (ECHO, ANY, NONE)


def payload_for(template: bytes | None, i: int) -> bytes:
    """What client i sends: `message(i)`, or the template with `{n}` replaced by i."""
    return message(i) if template is None else template.replace(b"{n}", str(i).encode())


def echo_once(
    host: str,
    port: int,
    i: int,
    timeout: float = CLIENT_TIMEOUT,
    payload: bytes | None = None,
    expect: str = ECHO,
) -> str | None:
    """One client's whole life; None when the reply met `expect`, else why not.

    echo: the same bytes came back before the server closed; any: at least one byte
    came back; none: the connection was accepted (what follows is not checked).
    """
    sent = payload_for(payload, i)
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            if expect == NONE:
                _send_quietly(s, sent)
                return None
            s.sendall(sent)
            s.shutdown(socket.SHUT_WR)
            got = _read_reply(s, stop_early=expect == ANY)
    except TimeoutError:
        return "timed out"
    except OSError as err:
        if err.errno in (errno.ECONNRESET, errno.ENOTCONN, errno.EPIPE):
            return "refused (connection reset)"  # closed by the server before the echo
        return err.strerror or type(err).__name__
    if (got == sent) if expect == ECHO else bool(got):
        return None
    return "refused (closed without echo)" if not got else "wrong echo"


def _read_reply(s: socket.socket, stop_early: bool) -> bytes:
    chunks = []
    while True:
        data = s.recv(4096)
        if not data:
            break
        chunks.append(data)
        if stop_early:
            break
    return b"".join(chunks)


def _send_quietly(s: socket.socket, data: bytes) -> None:
    try:
        s.sendall(data)
    except OSError:
        pass


def drive(
    host: str,
    port: int,
    clients: int,
    concurrency: int,
    timeout: float = CLIENT_TIMEOUT,
    payload: bytes | None = None,
    expect: str = ECHO,
) -> EchoResults:
    """Run `clients` clients, at most `concurrency` at once; count the replies."""
    results = EchoResults()
    reasons: Counter[str] = Counter()
    lock = threading.Lock()
    numbers = iter(range(clients))

    def worker() -> None:
        while True:
            with lock:
                i = next(numbers, None)
            if i is None:
                return
            why = echo_once(host, port, i, timeout, payload, expect)
            with lock:
                if why is None:
                    results.ok += 1
                else:
                    results.failed += 1
                    reasons[why] += 1

    threads = [
        threading.Thread(target=worker, daemon=True)
        for _ in range(max(1, min(concurrency, clients)))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results.reasons = dict(reasons)
    return results


def handlers_done(server: int, pgid: int, me: int) -> bool:
    """True once no handler of the server is alive: each one exited (zombie) or is gone.

    Handlers stay in the server's process group wherever they are re-parented (a double
    fork's grandchild is adopted by zombiectl), so the group is what is searched.
    """
    for p in proctable.process_group(pgid):
        if p.pid in (server, me):
            continue
        if not p.is_zombie:
            return False
    return True


def server_idle(server: int) -> bool:
    """True while the server sleeps in accept(): any SIGCHLD handler has run by then."""
    info = proctable.read_proc(server)
    if info is None or info.is_zombie:
        return True  # nothing will change any more
    chan = proctable.wait_channel(server)
    if chan is not None:
        return chan == "inet_csk_accept"
    return info.state == "S"


def wait_settled(server: int, pgid: int, timeout: float = 30.0) -> bool:
    """Wait until every handler has exited and the server is back in accept()."""
    me = os.getpid()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if handlers_done(server, pgid, me) and server_idle(server):
            # Twice, a moment apart: a SIGCHLD sent just before the first look wakes
            # the server, which is then no longer in accept() for the second.
            time.sleep(0.02)
            if handlers_done(server, pgid, me) and server_idle(server):
                return True
        time.sleep(0.01)
    return False
