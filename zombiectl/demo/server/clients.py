"""Real TCP clients for `check` and the echo server lab, and the wait for handlers to finish.

Each client behaves as a plain client: it connects, sends one line, reads the reply,
and closes. The reply is read only as far as ``expect`` needs (the payload's length for
``echo``, one byte for ``any``); the client then lets the server see its end of the
stream (``SHUT_WR``, which a server reading until EOF waits for) and waits at most
``EOF_WAIT`` for the server's own EOF. An EOF that never comes is noted, not failed: a
parent that forgets ``close(connfd)`` keeps every connection open after its handler is
gone. With ``half_close`` the client sends its EOF right after the payload instead, for
servers that read everything before they answer.

One deadline (``timeout``) bounds the whole exchange (connect, send, reply), and no more
than ``MAX_BUFFER`` bytes are held at once per client: the echo is compared as it
arrives, never collected, so a server that drips or floods cannot hold a client or grow
zombiectl. Clients run concurrently, but never more at once than ``concurrency``.

``drive(host, port, clients=3, concurrency=3)`` returns an `EchoResults`: how many
replies came back right (``ok``), how many did not (``failed``), and why, counted by
reason.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from zombiectl.proc import table as proctable

CLIENT_TIMEOUT = 30.0
MAX_CONCURRENCY = 50
EOF_WAIT = 0.5  # seconds a client waits for the server's EOF once the reply is in
MAX_BUFFER = 64 * 1024  # bytes one client ever holds


@dataclass
class EchoResults:
    """Counts of one client phase, filled while it runs (read it under `lock`).

    ``no_eof``: replies that were right but whose connection the server never closed.
    ``abandoned``: clients that failed after `drive` was told to stop (the check ended
    the server): what the server did not cause is not counted as its failure.
    """

    ok: int = 0
    failed: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    no_eof: int = 0
    abandoned: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)


@dataclass(frozen=True)
class Outcome:
    """One client's result: why it failed (None: the reply met the expectation), and
    whether the server closed the connection within `EOF_WAIT` after replying."""

    failure: str | None
    eof: bool = True


def message(i: int) -> bytes:
    return f"hello from client {i}\n".encode()


ECHO, ANY, NONE = "echo", "any", "none"
EXPECTATIONS = (ECHO, ANY, NONE)
TIMED_OUT = "timed out"
RESET = "refused (connection reset)"
CLOSED = "refused (closed without echo)"
WRONG = "wrong echo"


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
    half_close: bool = False,
) -> str | None:
    """One client's whole life; None when the reply met `expect`, else why not."""
    return exchange(host, port, i, timeout, payload, expect, half_close).failure


def exchange(
    host: str,
    port: int,
    i: int,
    timeout: float = CLIENT_TIMEOUT,
    payload: bytes | None = None,
    expect: str = ECHO,
    half_close: bool = False,
    together: Callable[[socket.socket, float], bool] | None = None,
) -> Outcome:
    """One client: connect, send, read the reply, wait briefly for EOF, close.

    together: called with the socket and the seconds left of the deadline once the
    reply is right, before the client ends its side; True when it has ended it (`drive`
    uses it to end a wave of clients at once).

    echo: the same bytes came back; any: at least one byte came back; none: the
    connection was accepted (what follows is not checked). `timeout` bounds
    connect + send + reply together; the EOF wait adds at most `EOF_WAIT`.
    """
    deadline = time.monotonic() + timeout
    sent = payload_for(payload, i)
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            if expect == NONE:
                _send_quietly(s, sent, deadline)
                return Outcome(None)
            _settimeout(s, deadline)
            s.sendall(sent)
            if half_close:
                s.shutdown(socket.SHUT_WR)
            why = _read_reply(s, sent if expect == ECHO else None, deadline)
            if why is not None:
                return Outcome(why)
            ended = together is not None and together(s, deadline - time.monotonic())
            return _await_eof(s, expect, half_close or ended)
    except TimeoutError:
        return Outcome(TIMED_OUT)
    except OSError as err:
        return Outcome(_reason(err))


def _reason(err: OSError) -> str:
    if err.errno in (errno.ECONNRESET, errno.ENOTCONN, errno.EPIPE):
        return RESET  # closed by the server before the reply
    return err.strerror or type(err).__name__


def _settimeout(s: socket.socket, deadline: float) -> None:
    """What is left of the deadline becomes the socket's timeout (never 0: non-blocking)."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    s.settimeout(left)


def _read_reply(s: socket.socket, expected: bytes | None, deadline: float) -> str | None:
    """Read the reply as far as the expectation needs; None when it is met.

    expected None (``any``): one byte. Otherwise the echo, compared piece by piece as it
    arrives, so nothing is kept whatever the payload's size.
    """
    if expected is None:
        _settimeout(s, deadline)
        return None if s.recv(1) else CLOSED
    got = 0
    while got < len(expected):
        _settimeout(s, deadline)
        data = s.recv(min(len(expected) - got, MAX_BUFFER))
        if not data:
            return CLOSED if got == 0 else WRONG
        if data != expected[got : got + len(data)]:
            return WRONG
        got += len(data)
    return None


def _await_eof(s: socket.socket, expect: str, half_closed: bool) -> Outcome:
    """After a right reply: end our side, then wait at most EOF_WAIT for the server's EOF.

    For ``echo`` a byte beyond the echo makes it wrong; for ``any`` the rest of the
    reply is read and dropped, MAX_BUFFER at a time.
    """
    try:
        if not half_closed:
            s.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + EOF_WAIT
        while True:
            _settimeout(s, deadline)
            data = s.recv(MAX_BUFFER)
            if not data:
                return Outcome(None, eof=True)
            if expect == ECHO:
                return Outcome(WRONG)
    except TimeoutError:
        return Outcome(None, eof=False)
    except OSError:
        return Outcome(None, eof=True)  # reset: the server has let go of the connection


def _send_quietly(s: socket.socket, data: bytes, deadline: float) -> None:
    try:
        _settimeout(s, deadline)
        s.sendall(data)
    except OSError:
        pass


class Wave:
    """Clients that end their side at the same moment: each one, once its reply is in,
    waits until every client of its wave has its reply or has failed (at most until its
    own deadline); the last to arrive ends every waiting connection in one go. The
    handlers then exit together, as a burst of SIGCHLDs, which is when a server that
    calls wait() once per signal shows its bug."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.waiting: list[socket.socket] = []
        self.cond = threading.Condition()

    def failed(self) -> None:
        """A client that will not wait (no right reply): the others need not wait for it."""
        with self.cond:
            self._arrive()

    def join(self, sock: socket.socket, timeout: float) -> bool:
        """Wait for the wave; True once the wave has ended `sock`'s side for it."""
        with self.cond:
            self.waiting.append(sock)
            self._arrive()
            self.cond.wait_for(lambda: sock not in self.waiting, max(0.0, timeout))
            if sock in self.waiting:  # timed out: on its own, and never touched again
                self.waiting.remove(sock)
                return False
            return True

    def _arrive(self) -> None:
        self.left -= 1
        if self.left > 0:
            return
        # Under the lock: no waiting client can close its socket meanwhile.
        for sock in self.waiting:
            try:
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        self.waiting.clear()
        self.cond.notify_all()


class Member:
    """One client of a wave: whether it came to wait with the others."""

    def __init__(self, wave: Wave) -> None:
        self.wave = wave
        self.joined = False

    def join(self, sock: socket.socket, timeout: float) -> bool:
        self.joined = True
        return self.wave.join(sock, timeout)


def drive(
    host: str,
    port: int,
    clients: int,
    concurrency: int,
    timeout: float = CLIENT_TIMEOUT,
    payload: bytes | None = None,
    expect: str = ECHO,
    *,
    half_close: bool = False,
    pace: float = 0.0,
    stop: threading.Event | None = None,
    results: EchoResults | None = None,
    together: bool = False,
) -> EchoResults:
    """Run `clients` clients, at most `concurrency` at once; count the replies.

    pace: seconds between two clients' starts, so a class can follow them. stop: once
    set, no client starts, and failures after it are `abandoned`, not counted. results:
    filled as clients finish (a caller may read it under its lock meanwhile). together:
    clients go in waves of `concurrency` that close together (`Wave`).
    """
    out = results if results is not None else EchoResults()
    stop = stop if stop is not None else threading.Event()
    reasons: Counter[str] = Counter()
    numbers = iter(range(clients))
    next_start = [time.monotonic()]

    def take() -> int | None:
        with out.lock:
            i = next(numbers, None)
            start = next_start[0]
            next_start[0] = max(start, time.monotonic()) + pace
        if i is not None and pace > 0 and stop.wait(max(0.0, start - time.monotonic())):
            return None
        return None if stop.is_set() else i

    width = max(1, min(concurrency, clients))
    waves: dict[int, Wave] = {}

    def wave_of(i: int) -> Wave:
        with out.lock:
            n = i // width
            if n not in waves:
                waves.pop(n - 2, None)  # two waves back is over: keep memory flat
                waves[n] = Wave(min(width, clients - n * width))
            return waves[n]

    def worker() -> None:
        while (i := take()) is not None:
            member = Member(wave_of(i)) if together else None
            join = member.join if member is not None else None
            got = exchange(host, port, i, timeout, payload, expect, half_close, join)
            if member is not None and not member.joined:
                member.wave.failed()  # no right reply: the others need not wait for it
            with out.lock:
                if got.failure is None:
                    out.ok += 1
                    out.no_eof += 0 if got.eof else 1
                elif stop.is_set():
                    out.abandoned += 1
                else:
                    out.failed += 1
                    reasons[got.failure] += 1
                    out.reasons = dict(reasons)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(width)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


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


def sigchld_pending(pid: int) -> bool:
    """True while a SIGCHLD waits, blocked, for the process (its handler has not run)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("ShdPnd:"):
                    return bool(int(line.split()[1], 16) >> (signal.SIGCHLD - 1) & 1)
    except (OSError, ValueError, IndexError):
        pass
    return False


def settled(server: int, pgid: int, me: int) -> bool:
    return handlers_done(server, pgid, me) and server_idle(server) and not sigchld_pending(server)


def wait_settled(server: int, pgid: int, timeout: float = 30.0) -> bool:
    """Wait until every handler has exited, their SIGCHLD has been taken (a server that
    blocks it until a batch is over), and the server is back in accept()."""
    me = os.getpid()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if settled(server, pgid, me):
            # Twice, a moment apart: a SIGCHLD sent just before the first look wakes
            # the server, which is then no longer in accept() for the second.
            time.sleep(0.02)
            if settled(server, pgid, me):
                return True
        time.sleep(0.01)
    return False
