"""`demo server`: the TCP/IP lab, a forking echo server whose handlers become zombies.

    $ zombiectl demo server --reap none --clients 5 --json
    {"event": "sample", "strategy": "server", "t": 0.0, "alive": 0, "zombies": 0, "reaped": 0}
    {"event": "note", "strategy": "server", "text": "echo server 4242 (python, --reap none) listening on 127.0.0.1 port 36215"}
    ...
    {"event": "summary", "strategy": "server", "start_method": null, "children": 5, "max_zombies": 5, "final_zombies": 5, "expected_final_zombies": 5, "ok": true, "leftover": 0, "seconds": 0.512, "reap": "none", "impl": "python", "port": 36215, "clients": 5, "echoes_ok": 5, "echoes_failed": 0}

The lab parent *is* the server (`zombiectl.demo.server.echo`, or `c_demos/echo_server.c`
exec'd in its place), so the children zombiectl samples are the server's connection
handlers. Before it starts serving, the lab parent double-forks a companion, which
is a process of the lab (so clean-up ends it too) but is not the server's
child (so it is never counted): it reads the server's "listening on" line, tells the
user how to connect, drives the clients, and reports "settled" once every handler has
exited and the server is back in accept(), so the final count does not depend on luck.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import re
import socket
import sys
from types import SimpleNamespace

from zombiectl.demo.labproc import EVENT_FD, LabContext, exec_checked
from zombiectl.demo.server import echo
from zombiectl.demo.strategies.registry import COUNT_MAX, Option, Strategy
from zombiectl.errors import BadUsage

LISTENING = re.compile(rb"listening on (\S+) port (\d+)")
BATCH_IDLE = 0.5  # seconds without a new client that end a batch (--reap wait-once)


def batch_size(p: SimpleNamespace) -> int:
    """Clients at once, hence handlers per batch of --reap wait-once."""
    return max(1, min(p.max_children, p.concurrency, p.clients or p.concurrency))


def batch_idle(p: SimpleNamespace) -> float:
    """No new client for this long ends a batch: longer than the gap --pace makes."""
    return p.pace + BATCH_IDLE


def _expected(p: SimpleNamespace, method: str | None) -> int | None:
    if p.clients == 0:
        return None  # however many connect by hand
    if p.reap == "wait-once":  # one handler reaped per batch, whose signals merged
        return p.clients - -(-p.clients // batch_size(p))
    return p.clients if p.reap == "none" else 0


def _reason(p: SimpleNamespace, method: str | None) -> str:
    served = "each connection served" if p.clients == 0 else f"each of the {p.clients} handlers"
    return {
        "none": f"--reap none: the server never waits, so {served} stays a zombie.",
        "sigchld": "--reap sigchld: on every SIGCHLD, reap_children loops "
        "waitpid(-1, WNOHANG): no handler stays a zombie.",
        "wait-once": f"--reap wait-once: the {batch_size(p)} handlers of a batch exit while "
        "SIGCHLD is pending, so their signals merge into one and reap_one's single wait() "
        "reaps one handler per batch: the rest stay zombies.",
        "ignore": "--reap ignore: SIGCHLD is SIG_IGN, so the kernel reaps each handler "
        "as it exits: no zombie is ever made.",
        "double-fork": "--reap double-fork: the server reaps each middle child at once; "
        "the handler is adopted and reaped by the nearest subreaper (zombiectl here).",
    }[p.reap]


def prepare(p: SimpleNamespace) -> SimpleNamespace:
    """In zombiectl, before the lab starts: check the address, build the C server."""
    try:
        if not p.host:  # gethostbyname("") is 0.0.0.0: every interface, never meant
            raise ValueError(p.host)
        p.host = socket.gethostbyname(p.host)
    except (OSError, ValueError):  # ValueError: a label over 63 characters, a NUL byte
        raise BadUsage(
            f"--host {p.host!r}: not an IPv4 address or a name that resolves to one"
        ) from None
    if not ipaddress.ip_address(p.host).is_loopback:
        sys.stderr.write(remote_warning(p) + "\n")
    if p.port:
        check_port_free(p.host, p.port)
    if p.impl == "c":
        from zombiectl.demo.cbuild import build

        p.exec_fd = build("echo_server").fd  # the lab executes this checked descriptor
        p.binary = "echo_server"  # argv[0] only
    return p


def remote_warning(p: SimpleNamespace) -> str:
    text = (
        f"zombiectl: warning: the server listens on {p.host}, not on loopback: other hosts "
        "can connect to it"
    )
    if p.reap != "none":
        return text
    return (
        f"{text}, and with --reap none each connection leaves a zombie: remote clients can "
        f"fill the pid table (--max-zombies {p.max_zombies} caps the zombies they add)"
    )


def check_port_free(host: str, port: int) -> None:
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            raise BadUsage(
                f"port {port} on {host} is in use (try --port 0 for a free one)"
            ) from None
        raise BadUsage(f"cannot listen on {host} port {port}: {err.strerror}") from None
    finally:
        probe.close()


def server_argv(p: SimpleNamespace) -> list[str]:
    # A driven run's own clients leave one zombie each (its model); --max-zombies bounds
    # what anyone else adds, and is the whole bound with --clients 0.
    max_zombies = p.clients + p.max_zombies
    if p.impl == "c":
        return [
            p.binary,
            p.reap,
            str(p.port),
            p.host,
            str(p.max_children),
            str(p.handler_timeout),
            str(max_zombies),
            str(batch_size(p)),
            str(batch_idle(p)),
        ]
    return [
        f"--reap={p.reap}",
        f"--host={p.host}",
        f"--port={p.port}",
        f"--max-children={p.max_children}",
        f"--timeout={p.handler_timeout}",
        f"--max-zombies={max_zombies}",
        f"--batch={batch_size(p)}",
        f"--batch-idle={batch_idle(p)}",
    ]


def lab(ctx: LabContext, p: SimpleNamespace) -> None:
    r, w = os.pipe()
    start_companion(ctx, p, r, w)
    os.close(r)
    os.dup2(w, 1)  # the server's "listening on" line goes to the companion
    os.close(w)
    os.environ[echo.PARENT_ENV] = str(os.getppid())  # handlers die with zombiectl too
    os.set_inheritable(EVENT_FD, True)
    os.environ[echo.REPORT_ENV] = str(EVENT_FD)  # the server reports each handler it forks
    argv = server_argv(p)
    if p.impl == "c":
        exec_checked(argv, dict(os.environ))
    rc = echo.main(argv)  # serves forever; returns only if it cannot listen
    sys.stderr.flush()
    os._exit(rc)


def start_companion(ctx: LabContext, p: SimpleNamespace, r: int, w: int) -> None:
    server = os.getpid()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            if os.fork() == 0:  # the grandchild: not the server's child, never counted
                os.close(w)
                companion(ctx, p, server, r)
        except Exception as err:  # the demo must end with the reason, not hang
            ctx.error("exception", f"the client driver failed: {err!r}")
            code = 1
        finally:
            os._exit(code)
    os.waitpid(pid, 0)  # the middle child exits at once


def companion(ctx: LabContext, p: SimpleNamespace, server: int, r: int) -> None:
    from zombiectl.demo.server.clients import drive, wait_settled

    line = b""
    while b"\n" not in line:
        chunk = os.read(r, 4096)
        if not chunk:
            return  # the server could not listen; its message is on stderr
        line += chunk
    os.close(r)
    m = LISTENING.search(line)
    if m is None:
        return
    host, port = m.group(1).decode(), int(m.group(2))
    ctx.report(reap=p.reap, impl=p.impl, port=port, clients=p.clients)
    ctx.note(
        f"echo server {server} ({p.impl}, --reap {p.reap}) listening on {host} port {port}"
        + ("" if p.clients else f"; connect with: nc {host} {port}")
    )
    if p.clients == 0:
        return
    res = drive(host, port, p.clients, concurrency=batch_size(p), pace=p.pace)
    ctx.report(echoes_ok=res.ok, echoes_failed=res.failed)
    if res.reasons:
        ctx.report(echo_failures=res.reasons)
    ctx.done()
    wait_settled(server, pgid=server)
    ctx.settled()
    if res.failed:  # the counts are final; a broken echo still fails the demo
        why = ", ".join(f"{n} {reason}" for reason, n in sorted(res.reasons.items()))
        ctx.error("echo", f"{res.failed} of {p.clients} echoes failed ({why})")


def c_source() -> list[tuple[str, str]]:
    """The lab part of the C server (what --impl c runs), from its real source."""
    from zombiectl.demo.cbuild import source_path

    text = source_path("echo_server").read_text()
    start = text.find("/* ----")
    end = text.find("/* ----", start + 1)
    return [("c_demos/echo_server.c", text[start:end].rstrip() + "\n")]


STRATEGY = Strategy(
    name="server",
    title="a forking TCP echo server: one handler process per connection",
    entry=f"{__name__}:lab",
    uses=frozenset({"hold"}),
    defaults={"hold": 0.3},
    options=(
        Option(
            "--reap",
            "none",
            "How the server reaps its handlers.",
            choices=echo.REAP_MODES,
            shapes_count=True,
        ),
        Option("--impl", "python", "The server's language.", choices=("python", "c")),
        Option(
            "--clients",
            10,
            "TCP clients to drive (each checks its echo); 0: serve until Ctrl-C.",
            type=int,
            min=0,
            max=COUNT_MAX,
            metavar="N",
            shapes_count=True,
        ),
        Option("--host", "127.0.0.1", "Address to listen on.", metavar="ADDR"),
        Option("--port", 0, "Port to listen on; 0: any free one.", type=int, min=0, max=65535),
        Option(
            "--max-children",
            64,
            "At most this many handlers at once; beyond it the server closes connections.",
            type=int,
            min=1,
            max=COUNT_MAX,
            metavar="N",
        ),
        Option(
            "--max-zombies",
            256,
            "With --reap none: at most this many zombies besides one per driven client "
            "(with --clients 0: at most this many); beyond it the server closes new "
            "connections.",
            type=int,
            min=1,
            max=COUNT_MAX,
            metavar="N",
        ),
        Option(
            "--handler-timeout",
            30.0,
            "A handler whose client sends nothing for this long gives up.",
            type=float,
            min=0.05,
            max=86400,
            metavar="S",
        ),
        Option(
            "--concurrency",
            32,
            "Clients connected at once (never more than --max-children).",
            type=int,
            min=1,
            max=COUNT_MAX,
            metavar="N",
            shapes_count=True,
        ),
        Option(
            "--pace",
            0.0,
            "Seconds between two clients' starts, so a class can watch them come and go.",
            type=float,
            min=0.0,
            max=60.0,
            metavar="S",
        ),
    ),
    reason=_reason,
    until_interrupted=lambda p: p.clients == 0,
    prepare=prepare,
    model=_expected,
    model_text=(
        "expected = clients with --reap none (one zombie per connection served); "
        "clients - ceil(clients / batch) with wait-once, where a batch is the clients "
        "connected at once (--concurrency, at most --max-children): one wait() per merged "
        "SIGCHLD; 0 with sigchld, ignore and double-fork."
    ),
    why=(
        "The server forks one handler per connection and goes straight back to accept(). "
        "A handler that has echoed its client and exited keeps its process-table entry "
        "until its parent, the server, collects its status; with --reap none nothing ever "
        "does, so every connection served leaves one zombie (<defunct> in ps) for as long "
        "as the server runs. A long-lived server that forks per connection slowly fills "
        "the process table: when it holds pid_max (or the user's process limit) entries, "
        "fork() fails with EAGAIN: the Python server dies of the exception, the C one "
        "can only close each new connection. (rails and handler_started are not part of "
        "the lab: they cap the handlers at --max-children and, with --clients 0, the "
        "zombies at --max-zombies, tie each handler's life to zombiectl's, and report "
        "each fork to the live table.)"
    ),
    fix=(
        "sigchld: install a SIGCHLD handler that loops os.waitpid(-1, os.WNOHANG) until it "
        "returns 0 (signals coalesce: one SIGCHLD may stand for many exits). The signal "
        "interrupts accept(): C sees EINTR and must call accept() again (or use "
        "SA_RESTART). Python's own C-level handler only notes the signal; the EINTR is "
        "what lets the interpreter run reap_children, after which it calls accept() again "
        "by itself (PEP 475), so the Python loop needs no EINTR check. wait-once shows why "
        "the loop matters: reap_one calls wait() once per signal, and the SIGCHLDs of "
        "handlers that exit while one is pending merge into it, so most handlers stay "
        "zombies. "
        "ignore: signal(SIGCHLD, SIG_IGN) makes the kernel reap handlers at once (no exit "
        "status; waitpid then fails with ECHILD). double-fork: the handler forks again and "
        "exits at once; the server reaps that short-lived middle child right away, and the "
        "grandchild that serves is re-parented to init (or the nearest subreaper), which "
        "reaps it."
    ),
    source=(echo.listen_on, echo.serve, echo.handle, echo.reap_children, echo.reap_one),
    source_files=c_source,
    order=200,
)
