"""One check, from start to verdict: start CMD (or find --pid P), observe, drive, count, end.

    $ zombiectl check --tcp 9000 --clients 100 -- ./leaky_server 9000 | tail -3
    verdict: fail
      after 100 connections the tree holds 100 zombie(s) at the end (at most 0 allowed):
      leaky_server (pid 301442) holds 100

The process control is `zombiectl.supervise.Supervisor`'s: CMD in a group of its own,
zombiectl a subreaper, the guard, the observer, kill-and-collect. This module decides
the phases and their deadlines, and when the count is taken:

* without --tcp and --duration: when CMD exits (CMD's zombies, adopted by zombiectl
  already dead, and those its surviving descendants hold count as the program's);
* with --duration: at the deadline, whether CMD has exited or not (the daemons it left
  are still watched);
* with --tcp: after the clients, once every child made while they ran has exited (up to
  --settle-max) and then --settle.

Every phase ends by --timeout at the latest; a stop signal (SIGINT, SIGTERM) ends the
current phase at once, and the tree is then ended within --grace and a moment.
``--pid P``: nothing is adopted, signalled or ended; past --timeout only the check ends.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from zombiectl.check.listening import holders, listening_pid, ports_of
from zombiectl.check.output import Capture
from zombiectl.check.verdict import Facts, Leaker, Limits, Report, grade
from zombiectl.demo.server.clients import ECHO, EchoResults, drive
from zombiectl.init.reaper import ExecFailed, exit_code_of
from zombiectl.proc import table as proctable
from zombiectl.supervise.spawn import Credentials, Streams
from zombiectl.supervise.supervisor import Supervisor
from zombiectl.supervise.tree import Member, Tree

READY_POLL = 0.02  # seconds between two looks for the listening socket
UI_EVERY = 0.25  # seconds between two refreshes of the live view
CLIENTS_JOIN = 0.3  # seconds to wait for the client threads once the tree is ended
DEFAULT_TIMEOUT = 300.0
TIMEOUT_OVER_DURATION = 60.0


def default_timeout(duration: float | None) -> float:
    """--timeout's default: 300 s, or --duration + 60 s when that is larger."""
    return max(DEFAULT_TIMEOUT, (duration or 0.0) + TIMEOUT_OVER_DURATION)


@dataclass(frozen=True)
class CheckOptions:
    argv: list[str] | None = None
    pid: int | None = None
    tcp: int | None = None
    host: str = "127.0.0.1"
    clients: int = 20
    concurrency: int = 8
    payload: bytes | None = None
    expect: str = ECHO
    client_timeout: float = 5.0
    half_close: bool = False  # send EOF right after the payload
    ready_timeout: float = 10.0
    settle: float = 1.0
    settle_max: float = 10.0
    grace: float = 2.0
    duration: float | None = None
    timeout: float | None = None  # None: default_timeout(duration)
    sample: float = 0.1
    sampled: bool = False  # sample even where kernel events are available
    stdout: int | None = None  # where CMD's output is passed through (stderr under --json)
    stdin_inherit: bool = False
    output_limit: int = 1024 * 1024
    user: Credentials | None = None
    limits: Limits = field(default_factory=Limits)


class View(Protocol):
    """What the user sees while the check runs (`zombiectl.check.render`)."""

    def phase(self, text: str) -> None: ...

    def tick(self, tree: Tree, now: float) -> None: ...


class Check:
    """A context manager: on exit, nothing of CMD's tree is left and signals are restored."""

    def __init__(self, opts: CheckOptions, view: View) -> None:
        if (opts.argv is None) == (opts.pid is None):
            from zombiectl.errors import BadUsage

            raise BadUsage("give either -- CMD or --pid P")
        self.opts = opts
        self.view = view
        self.started = time.monotonic()
        timeout = opts.timeout if opts.timeout is not None else default_timeout(opts.duration)
        self.deadline = self.started + timeout
        self.timed_out = False
        self.sup = Supervisor(opts.sample, opts.sampled, watch_pid=opts.pid)
        self.cmd = 0
        self.counted = False  # CMD and its zombies are held until the count is taken
        self.signalled = False  # the check sent CMD a signal to end it
        self.parents: dict[int, tuple[str, str]] = {}
        self._parents_read: dict[int, float] = {}
        self.zombies_before = 0
        self.client_seconds: float | None = None
        self.still_running = 0
        self.tree_ports: list[int] = []
        self.served_before_exit: int | None = None
        self._end_parents: list[int] = []
        self._last_ui = 0.0
        self.out = Capture(opts.output_limit, opts.stdout if opts.stdout is not None else 1)
        self.err = Capture(opts.output_limit, 2)
        self._pipes: dict[int, Capture] = {}

    @property
    def tree(self) -> Tree:
        return self.sup.tree

    # ----------------------------------------------------------------- set-up

    def __enter__(self) -> Check:
        self.sup.__enter__()
        self.sup.hold = self._hold
        self.sup.on_step = self._after_step
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.sup.__exit__(*exc)
        finally:
            for fd in list(self._pipes):
                self._close_pipe(fd)

    def _hold(self, m: Member) -> bool:
        """CMD and the zombies CMD made are collected only after they are counted."""
        if self.counted or not self.cmd:
            return False
        return m.pid == self.cmd or m.ppid == self.cmd

    # ----------------------------------------------------------------- the check

    def run(self) -> Report:
        """Everything between start and verdict."""
        opts = self.opts
        if opts.argv is not None:
            in_the_way = self._port_taken()
            if in_the_way is not None:
                return self._environment_error(*in_the_way)
            try:
                self._start(opts.argv)
            except ExecFailed as err:
                return self._not_started(str(err), err.exit_code)
        else:
            assert opts.pid is not None
            self._attach(opts.pid)
        results, listened = self._exercise()
        at_end = self._zombies_at_end()
        if opts.argv is not None:
            self._end_tree()
        return self._report(results, listened, at_end)

    def _start(self, argv: list[str]) -> None:
        opts = self.opts
        stdin = None if opts.stdin_inherit else os.open(os.devnull, os.O_RDONLY)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            streams = Streams(stdin, out_w, err_w)
            self.cmd = self.sup.spawn(argv, streams, opts.user)
        except BaseException:
            for fd in (out_r, err_r):
                os.close(fd)
            raise
        finally:
            for fd in (out_w, err_w) + (() if stdin is None else (stdin,)):
                os.close(fd)
        for fd, cap in ((out_r, self.out), (err_r, self.err)):
            os.set_blocking(fd, False)
            self._pipes[fd] = cap
        self.view.phase(f"started {argv[0]} as pid {self.cmd}")

    def _attach(self, pid: int) -> None:
        proctable.require_process(pid)
        kids = proctable.descendants_of(pid)
        self.zombies_before = sum(1 for k in kids if k.is_zombie and k.ppid == pid)
        self.sup.watch(pid, kids)
        self.sup.observer.step(force_sample=self.sup.events is None)
        self.view.phase(f"checking pid {pid}: nothing will be adopted, signalled or ended")

    def wait(self, done: Callable[[], bool], until: float | None, poll: float = 0.25) -> None:
        """Observe until done(), `until`, --timeout (noted) or a stop signal."""
        deadline = self.deadline if until is None else min(until, self.deadline)
        self.sup.wait(done, deadline, lambda: list(self._pipes), self._read_pipes, poll)
        if not done() and time.monotonic() >= self.deadline and self.sup.stop_signal is None:
            self.timed_out = True

    def _over(self) -> bool:
        return self.timed_out or self.sup.stop_signal is not None

    def _exercise(self) -> tuple[EchoResults | None, bool]:
        """The middle of the check: serve clients, or wait for the end or the deadline."""
        opts = self.opts
        if opts.tcp is None:
            if opts.duration is not None:
                self.wait(lambda: False, self.started + opts.duration)
            else:
                self.wait(self._root_ended, None)
            return None, False
        if not self._wait_listening(opts.tcp) or self._over():
            return None, False
        born = set(self.tree.members)
        results = self._drive(opts.tcp)
        if not self._over():
            self._settle(born)
        return results, True

    def _wait_listening(self, port: int) -> bool:
        opts = self.opts
        self.view.phase(f"waiting for a process of the tree to listen on {opts.host}:{port}")
        found: list[int] = []
        next_look = [0.0]

        def listening() -> bool:
            now = time.monotonic()
            if now < next_look[0]:
                return False
            next_look[0] = now + READY_POLL
            live = self.tree.live_pids()
            if not live:
                return True  # the whole tree has exited: nothing will ever listen
            pid = listening_pid(sorted(live), opts.host, port)
            if pid is not None:
                found.append(pid)
            return pid is not None

        self.wait(listening, time.monotonic() + opts.ready_timeout, poll=READY_POLL)
        if found:
            self.view.phase(f"pid {found[0]} listens on {opts.host}:{port}")
        elif not self._over() and not self._root_ended():
            self.view.phase(
                f"nothing listened on {opts.host}:{port} within {opts.ready_timeout:g} s"
            )
        if not found:
            self._note_tree_ports()
        return bool(found)

    def _drive(self, port: int) -> EchoResults:
        opts = self.opts
        results = EchoResults()
        stop = threading.Event()

        def clients() -> None:
            try:
                drive(
                    opts.host,
                    port,
                    opts.clients,
                    opts.concurrency,
                    opts.client_timeout,
                    opts.payload,
                    opts.expect,
                    half_close=opts.half_close,
                    stop=stop,
                    results=results,
                    together=True,  # handlers exit in bursts, as a busy server sees
                )
            finally:
                self.sup.wake()  # the loop may be asleep in select

        self.view.phase(f"{opts.clients} clients, {opts.concurrency} at a time")
        t0 = time.monotonic()
        thread = threading.Thread(target=clients, name="clients", daemon=True)
        thread.start()

        def served() -> bool:
            self._note_crash(results)
            return not thread.is_alive()

        self.wait(served, None)
        self.client_seconds = time.monotonic() - t0
        if thread.is_alive():
            # Interrupted or timed out: what fails once the check ends the tree is not the
            # server's doing.
            stop.set()
            self._end_tree()
            thread.join(CLIENTS_JOIN)
        return results

    def _settle(self, before: set[int]) -> None:
        """Wait for the children made during the clients to exit, then --settle."""
        opts = self.opts
        made = [m for pid, m in self.tree.members.items() if pid not in before]

        def all_exited() -> bool:
            return not [m for m in made if m.alive]

        if not all_exited():
            self.view.phase(f"waiting up to {opts.settle_max:g} s for the handlers to exit")
            self.wait(all_exited, time.monotonic() + opts.settle_max)
            self.still_running = sum(1 for m in made if m.alive)
        if not self._over():
            self.view.phase(f"settling for {opts.settle:g} s")
            self.wait(lambda: False, time.monotonic() + opts.settle)

    # ----------------------------------------------------------------- while it runs

    def _after_step(self) -> None:
        self._note_parents()
        now = time.monotonic()
        if now - self._last_ui >= UI_EVERY:
            self._last_ui = now
            self.view.tick(self.tree, now)

    def _read_pipes(self, ready: list[int]) -> None:
        for fd in ready:
            cap = self._pipes.get(fd)
            if cap is None:
                continue
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if data:
                cap.feed(data)
            else:
                self._close_pipe(fd)

    def _close_pipe(self, fd: int) -> None:
        cap = self._pipes.pop(fd, None)
        if cap is not None:
            os.close(fd)

    def _drain_pipes(self) -> None:
        """What CMD wrote before it ended (non-blocking: a daemon may hold the pipe)."""
        for _ in range(64):
            if not self._pipes:
                return
            self._read_pipes(list(self._pipes))

    def _root_ended(self) -> bool:
        """CMD has exited (not collected yet: its zombies are counted first), or P is gone."""
        return self.sup.root_exited(self.tree.root)

    def _note_parents(self) -> None:
        """Name and command line of each parent of a zombie, read while it is alive.

        Read again for a zombie newer than the last read: the parent may have exec'd
        another program since (a shell that execs the server), and the report names
        what holds the zombies. A parent that has died keeps what was read before.
        """
        for m in self.tree.zombies():
            if not m.ppid or m.exited is None:
                continue
            if m.ppid in self.parents and self._parents_read[m.ppid] >= m.exited:
                continue
            self._parents_read[m.ppid] = time.monotonic()
            info = proctable.read_proc(m.ppid)
            if m.ppid not in self.parents or (info is not None and not info.is_zombie):
                self.parents[m.ppid] = read_name_cmdline(m.ppid)

    # ----------------------------------------------------------------- the end

    def _zombies_at_end(self) -> int:
        """The zombies the verdict counts: the tree's now (CMD's included when it has exited)."""
        self.sup.observer.step(force_sample=True)
        self._note_parents()
        self._end_parents = [m.ppid for m in self.tree.zombies()]
        self.counted = True
        return len(self._end_parents)

    def _end_tree(self) -> None:
        """End what is left of the tree: SIGTERM, SIGKILL after --grace if CMD still runs."""
        if not self.counted:
            self.counted = True
        grace = 0.0
        if not self._root_ended():
            self.signalled = True
            grace = self.opts.grace
            self.view.phase(f"ending pid {self.cmd}: SIGTERM, SIGKILL after {grace:g} s")
        self.sup.end(grace)
        self._drain_pipes()

    # ----------------------------------------------------------------- the report

    def _not_started(self, why: str, code: int) -> Report:
        return self._early_report(exit_status=code, not_started=why)

    def _early_report(self, **facts: Any) -> Report:
        """The report of a check that ended before CMD ran: it did not start, or the
        environment was in the way."""
        opts = self.opts
        return grade(
            Facts(
                command=list(opts.argv or []),
                pid=0,
                mode="run",
                seconds=time.monotonic() - self.started,
                resolution_ms=None if self.sup.events is not None else opts.sample * 1000,
                tcp=opts.tcp is not None,
                interrupted_by=self.sup.stop_signal,
                **facts,
            ),
            opts.limits,
        )

    def _report(self, results: EchoResults | None, listened: bool, at_end: int) -> Report:
        opts, tree = self.opts, self.tree
        resolution = self.sup.observer.resolution
        facts = Facts(
            command=list(opts.argv)
            if opts.argv is not None
            else proctable.read_argv(tree.root, proctable.ARGV_MAX),
            pid=tree.root,
            mode="run" if opts.argv is not None else "pid",
            exit_status=self._exit_status(),
            seconds=time.monotonic() - self.started,
            resolution_ms=None if resolution is None else opts.sample * 1000,
            children=tree.children_started(),
            max_zombies=tree.max_zombies,
            zombies_before=self.zombies_before,
            zombies_at_end=at_end,
            orphans_adopted=tree.orphans_adopted(),
            collected_by_parent=tree.collected(by_me=False),
            collected_by_zombiectl=tree.collected(by_me=True),
            lifetimes_ms=[s * 1000 for s in tree.lifetimes()],
            oldest_zombie_ms=_ms(tree.oldest_under_parent(time.monotonic())),
            leakers=self._leakers(),
            tcp=opts.tcp is not None,
            listened=listened,
            clients=(results.ok + results.failed) if results else 0,
            echoes_ok=results.ok if results else 0,
            echoes_failed=results.failed if results else 0,
            client_seconds=self.client_seconds,
            failures=dict(results.reasons) if results else {},
            crashed_by=self._crash_signal(),
            ended_by_check=self.signalled,
            interrupted_by=self.sup.stop_signal,
            timed_out=self.timed_out,
            timeout_s=self.deadline - self.started,
            still_running_after_settle=self.still_running,
            processes_ended_by_check=tree.ended_by_check(),
            not_reaped_by_parent=tree.not_reaped_by_parent(),
            slowest_parent_reap_ms=_ms(tree.slowest_parent_reap()),
            stdout_text=self.out.text(),
            stderr_text=self.err.text(),
            stuck=[s.describe() for s in self.sup.stuck],
            **self._grading_facts(results),
        )
        return grade(facts, opts.limits)

    # ----------------------------------------------------------------- what grading needs

    def _port_taken(self) -> tuple[str, int | None] | None:
        """(why, pid) when a program outside the tree already listens on --tcp's port.

        Looked at before CMD starts, so the student's server is never blamed for the
        port another program holds.
        """
        port = self.opts.tcp
        if port is None:
            return None
        pids = holders(self.opts.host, port)
        if pids is None:
            return None
        if not pids:
            return f"port {port} is already in use by a process zombiectl cannot see", None
        name, cmdline = read_name_cmdline(pids[0])
        why = f"port {port} is already in use by another program: {name} (pid {pids[0]}"
        return why + (f": {cmdline})" if cmdline else ")"), pids[0]

    def _environment_error(self, why: str, pid: int | None) -> Report:
        self.view.phase(why)
        return self._early_report(
            exit_status=None, port=self.opts.tcp, environment=why, environment_pid=pid
        )

    def _note_tree_ports(self) -> None:
        """Where the tree listens, when not on --tcp's port (a forgotten htons())."""
        if self.tree is not None:
            self.tree_ports = ports_of(sorted(self.tree.live_pids()))

    def _note_crash(self, results: EchoResults) -> None:
        """Remember how many clients had been served when CMD ended during the clients."""
        running = self.served_before_exit is None and self.opts.argv is not None
        if running and self._root_ended():
            with results.lock:
                self.served_before_exit = results.ok

    def _grading_facts(self, results: EchoResults | None) -> dict[str, Any]:
        return {
            "port": self.opts.tcp,
            "tree_ports": self.tree_ports,
            "replies_without_eof": results.no_eof if results else 0,
            "served_before_exit": self.served_before_exit,
        }

    def _exit_status(self) -> int | None:
        if self.opts.argv is not None:
            status = self.sup.status.get(self.cmd)
            return None if status is None else exit_code_of(status)
        status = self.tree.root_status  # from the exit event; unknown when sampling
        return None if status is None else exit_code_of(status)

    def _crash_signal(self) -> int | None:
        status = self.sup.status.get(self.cmd)
        if self.opts.argv is None or status is None or self.signalled:
            return None
        code = os.waitstatus_to_exitcode(status)
        return -code if code < 0 else None

    def _leakers(self) -> list[Leaker]:
        counts: dict[int, int] = {}
        for ppid in self._end_parents:
            counts[ppid] = counts.get(ppid, 0) + 1
        out = []
        for ppid, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            name, cmdline = self.parents.get(ppid) or read_name_cmdline(ppid)
            if ppid == self.cmd and not cmdline and self.opts.argv:
                name, cmdline = os.path.basename(self.opts.argv[0]), " ".join(self.opts.argv)
            out.append(Leaker(ppid, name, cmdline, n))
        return out


# --------------------------------------------------------------------------- helpers


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def read_name_cmdline(pid: int) -> tuple[str, str]:
    info = proctable.read_proc(pid)
    return (info.name if info else "?"), " ".join(proctable.read_argv(pid, proctable.ARGV_MAX))
