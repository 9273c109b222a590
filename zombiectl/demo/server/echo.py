"""The forking echo server of the classic network-programming lab, in Python.

One process per connection, as students write it: ``socket``, ``bind``, ``listen``, then
an ``accept`` loop that ``os.fork()``s a handler for each client; the handler echoes
until the client closes, then ``os._exit(0)``. What happens to the handlers once they
exit depends on ``--reap``:

    none         the server never waits: every finished handler stays a zombie
    sigchld      a SIGCHLD handler loops waitpid(-1, WNOHANG): zombies vanish at once
    wait-once    a SIGCHLD handler calls wait() once: SIGCHLDs that arrive together
                 merge into one, so one handler is reaped for a whole burst of exits
    ignore       SIGCHLD set to SIG_IGN: the kernel reaps, no zombie is ever made
    double-fork  the handler forks again and exits; the grandchild serves and is reaped
                 by init (or the nearest subreaper), the server reaps the middle child

Run on its own (``zombiectl demo server`` runs it for you and drives the clients):

    $ python -m zombiectl.demo.server.echo --reap none
    echo server 4242 listening on 127.0.0.1 port 40321
    $ nc 127.0.0.1 40321        # in another terminal; then: ps --ppid 4242

Safety rails that a classroom version would not have, kept apart from the lab code: at
most ``--max-children`` handlers run at once (beyond that a connection is closed instead
of forked: no client can fork-bomb the host); with ``--reap none``, at most
``--max-zombies`` handlers are ever forked, since each one stays in the process table
(running, then a zombie) for as long as the server runs: beyond that every new
connection is closed, and the server says so once, so no client can fill the pid table
by connecting again and again; and a handler whose client sends nothing for
``--timeout`` seconds gives up.

With ``--reap wait-once`` the rails also make the merge of signals happen every time
rather than by luck: SIGCHLD stays blocked while a batch of handlers runs (``--batch``
forks, or fewer when no client has come for ``--batch-idle`` seconds), and is unblocked
once every handler of the batch has exited. The kernel keeps one pending SIGCHLD however
many children exited, so the handler runs once per batch: a server that serves N
clients in batches of B leaves N - ceil(N / B) zombies.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import socket
import sys

from zombiectl.proc.prctl import set_death_signal, set_name

REAP_MODES = ("none", "sigchld", "wait-once", "ignore", "double-fork")
HOLDS_ZOMBIES = ("none", "wait-once")  # modes whose handlers outlive the connection
# zombiectl sets this to its own pid: the server (and each handler) then dies with its
# parent, so killing zombiectl, even with SIGKILL, leaves no server behind.
PARENT_ENV = "ZOMBIECTL_PARENT_PID"
# ...and to a descriptor on which the server reports each handler it forks, so the live
# table can count handlers that come and go between two samples.
REPORT_ENV = "ZOMBIECTL_REPORT_FD"


# --------------------------------------------------------------------------- the lab


def listen_on(host, port):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Restarting on the same port must not wait for the old connections' TIME_WAIT.
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        srv.bind((host, port))
    except OSError:
        srv.close()
        raise
    srv.listen(128)
    return srv


def reap_children(signum, frame):
    # Signals coalesce: one SIGCHLD may stand for many exits, so reap until none is left.
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:  # no children at all
            return
        if pid == 0:  # children left, none finished
            return


def reap_one(signum, frame):
    try:
        os.wait()
    except ChildProcessError:
        pass


def handle(conn, timeout):
    conn.settimeout(timeout)
    try:
        while True:
            data = conn.recv(4096)
            if not data:  # the client closed its side
                break
            conn.sendall(data)
    except OSError:  # socket.timeout included: a silent client is dropped
        pass


def serve(srv, reap, rails, timeout):
    if reap == "sigchld":
        signal.signal(signal.SIGCHLD, reap_children)
    elif reap == "wait-once":
        signal.signal(signal.SIGCHLD, reap_one)
    elif reap == "ignore":
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    server = os.getpid()
    while True:
        # A SIGCHLD interrupts accept() with EINTR; Python runs reap_children and then
        # calls accept() again by itself (PEP 475). C has to loop on EINTR by hand.
        conn, _addr = srv.accept()
        if not rails.admit():  # too many handlers, or zombies: refuse, do not fork
            conn.close()
            continue
        pid = os.fork()
        if pid == 0:  # the handler
            srv.close()
            if reap == "double-fork" and os.fork() > 0:
                os._exit(0)  # the middle child exits at once; its child serves
            handler_started(server, reap)
            handle(conn, timeout)
            rails.release()
            conn.close()
            os._exit(0)
        rails.forked(pid)
        conn.close()  # the handler has its own copy
        if reap == "double-fork":
            os.waitpid(pid, 0)  # the middle child: it has already exited, or is about to


# --------------------------------------------------------------------------- safety rails


class Rails:
    """What the server may fork: a free --max-children slot, and, with --reap none, fewer
    than --max-zombies handlers forked so far (none of them is ever reaped: each stays
    in the process table, running and then a zombie). 0: no zombie cap."""

    def __init__(self, max_children, max_zombies, reap, batch=8, batch_idle=0.5):
        self.slots = Slots(max_children)
        self.max_zombies = max_zombies if reap in HOLDS_ZOMBIES else 0
        self.held = 0
        self.said_full = False
        self.merge = Merge(batch, batch_idle) if reap == "wait-once" else None

    def admit(self):
        if self.max_zombies and self.held >= self.max_zombies:
            if not self.said_full:  # once, not once per connection
                self.said_full = True
                say(
                    f"{self.held} handlers forked and never reaped, each a zombie once it "
                    "exits (--max-zombies): closing new connections"
                )
            return False
        return self.slots.take()

    def forked(self, pid):
        report_started(pid)
        if self.max_zombies:
            self.held += 1
        if self.merge is not None:
            self.merge.forked(pid)

    def release(self):  # in the handler, before it closes its connection
        self.slots.give()


class Merge:
    """--reap wait-once: SIGCHLD blocked while a batch of handlers runs, unblocked once
    they have all exited, so their signals merge into one every time.

    A batch ends at `batch` forks, or `idle` seconds after the last fork (a SIGALRM,
    which interrupts accept()). Children are waited for with WNOWAIT: they stay zombies
    for the lab's handler to reap, or not.
    """

    def __init__(self, batch, idle):
        self.batch, self.idle = max(1, batch), idle
        self.pids = []
        signal.signal(signal.SIGALRM, lambda signum, frame: self.release())
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})

    def forked(self, pid):
        self.pids.append(pid)
        if len(self.pids) >= self.batch:
            self.release()
        else:
            signal.setitimer(signal.ITIMER_REAL, self.idle)

    def release(self):
        signal.setitimer(signal.ITIMER_REAL, 0)
        for pid in self.pids:
            try:
                os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
            except ChildProcessError:
                pass
        self.pids.clear()
        # The pending SIGCHLD is delivered here, once, and the lab's handler runs.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})


class Slots:
    """At most n handlers at once: a pipe holding n bytes, one taken per fork and given
    back by the handler before it closes its connection (so a client that has read its
    echo to the end can count on a free slot for the next connection)."""

    def __init__(self, n):
        self.r, self.w = os.pipe()
        os.set_blocking(self.r, False)
        os.write(self.w, b"." * n)

    def take(self):
        try:
            return os.read(self.r, 1) == b"."
        except BlockingIOError:
            return False

    def give(self):
        os.write(self.w, b".")


_report_fd = None


def report_started(pid):
    if _report_fd is not None:
        try:
            os.write(_report_fd, b'{"event": "started", "pid": %d}\n' % pid)
        except OSError:
            pass  # zombiectl is gone; the parent-death signal ends us


def say(text):
    """One line for the user: a note in zombiectl's view, or on stderr when run alone."""
    if _report_fd is not None:
        line = json.dumps({"event": "note", "text": f"echo server: {text}"}) + "\n"
        try:
            os.write(_report_fd, line.encode())
            return
        except OSError:
            pass
    sys.stderr.write(f"echo server: {text}\n")
    sys.stderr.flush()


def die_with_parent(expected_parent):
    """SIGKILL this process when its parent dies; exit now if it already has."""
    try:
        set_death_signal(signal.SIGKILL)
    except OSError:
        pass  # not Linux: zombiectl still kills the server's group when it can
    if os.getppid() != expected_parent:
        os._exit(1)


def handler_started(server, reap):
    set_name(b"echo-handler")
    # A double fork's grandchild is not the server's child: it is covered by zombiectl
    # killing the server's whole process group instead.
    if reap != "double-fork" and os.environ.get(PARENT_ENV):
        die_with_parent(server)


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="python -m zombiectl.demo.server.echo",
        description="A forking echo server (one process per connection).",
    )
    ap.add_argument("--reap", choices=REAP_MODES, default="none")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    ap.add_argument("--max-children", type=int, default=64)
    ap.add_argument(
        "--max-zombies", type=int, default=256, help="with --reap none; 0: no cap (default 256)"
    )
    ap.add_argument("--timeout", type=float, default=30.0, help="idle seconds per handler")
    ap.add_argument("--batch", type=int, default=8, help="with wait-once: forks per batch")
    ap.add_argument(
        "--batch-idle", type=float, default=0.5, help="with wait-once: seconds that end a batch"
    )
    args = ap.parse_args(argv)
    if args.max_zombies < 0:
        ap.error("--max-zombies must be 0 (no cap) or more")
    if args.batch < 1 or not 0.01 <= args.batch_idle <= 3600:
        ap.error("--batch must be 1 or more, --batch-idle from 0.01 to 3600")
    return args


def main(argv=None):
    global _report_fd
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if os.environ.get(REPORT_ENV):
        _report_fd = int(os.environ[REPORT_ENV])
    parent = os.environ.get(PARENT_ENV)
    if parent:
        die_with_parent(int(parent))
    else:
        # Ctrl-C on a terminal ends the server and its handlers without a traceback each.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    set_name(b"echo-server")
    try:
        srv = listen_on(args.host, args.port)
    except OSError as err:
        reason = (
            "is in use" if err.errno == errno.EADDRINUSE else f"cannot be bound: {err.strerror}"
        )
        sys.stderr.write(f"echo server: {args.host} port {args.port} {reason}\n")
        return 2
    port = srv.getsockname()[1]
    print(f"echo server {os.getpid()} listening on {args.host} port {port}", flush=True)
    rails = Rails(args.max_children, args.max_zombies, args.reap, args.batch, args.batch_idle)
    serve(srv, args.reap, rails, args.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
