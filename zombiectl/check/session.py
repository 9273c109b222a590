"""One check, from start to verdict: start CMD (or find --pid P), observe, drive, end, collect.

    $ zombiectl check --tcp 9000 --clients 100 -- ./leaky_server 9000 | tail -3
    verdict: fail
      after 100 connections the tree holds 100 zombie(s) at the end (at most 0 allowed):
      leaky_server (pid 301442) holds 100

The shape is tini's: configure signals → spawn → loop {observe, collect}. `Check` is a
context manager whose exit guarantees clean-up, whatever happened:

* With ``-- CMD`` zombiectl is a child subreaper and CMD leads a process group of its
  own, armed with ``PR_SET_PDEATHSIG`` (SIGKILL). Every descendant stays under
  zombiectl: orphans and daemons are re-parented to it. At the end CMD's group gets
  SIGTERM, then SIGKILL after ``--grace``, and every process left under zombiectl is
  SIGKILLed and reaped, until none is left.
* SIGINT and SIGTERM only set a flag; the check then ends the same way and reports
  130 or 143.
* zombiectl SIGKILLed: CMD dies of its death signal, and the demos' guard process
  (`zombiectl.demo.guard.Guard`) SIGKILLs every process group it was told about: CMD's
  and every group a process of the tree made for itself (``setsid``, ``setpgid``). The
  limit: the kernel reports ``setsid`` (the guard learns of that group at once) but not
  ``setpgid``, so a group made with ``setpgid`` is known to the guard only from the next
  regroup (at most ``REGROUP_EVERY``, 0.5 s, later), and without kernel events (sampled
  counts) so is every new group.
* ``--pid P``: nothing is adopted, signalled or ended.
"""

from __future__ import annotations

import os
import select
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from zombiectl.check.listening import holders, listening_pid, ports_of
from zombiectl.check.observer import Observer
from zombiectl.check.tree import ZOMBIECTL, Tree
from zombiectl.check.verdict import Facts, Leaker, Limits, Report, grade
from zombiectl.demo.guard import Guard
from zombiectl.demo.server.clients import ECHO, EOF_WAIT, EchoResults, drive
from zombiectl.errors import BadUsage, NotSupported
from zombiectl.init.reaper import ExecFailed, exit_code_of, spawn
from zombiectl.proc import table as proctable
from zombiectl.proc.events import ProcEvents
from zombiectl.proc.prctl import Subreaper

CLEANUP_DEADLINE = 10.0
READY_POLL = 0.02  # seconds between two looks for the listening socket
UI_EVERY = 0.25  # seconds between two refreshes of the live view
IDLE_CHECK = 0.05  # seconds between two rounds of the loop's own work when nothing changed
REGROUP_EVERY = 0.5  # seconds between two reads of the tree's process groups


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
    grace: float = 2.0
    duration: float | None = None
    sample: float = 0.1
    sampled: bool = False  # sample even where kernel events are available
    stdout: int | None = None  # CMD's standard output (stderr when --json owns stdout)
    limits: Limits = field(default_factory=Limits)


class View(Protocol):
    """What the user sees while the check runs (`zombiectl.render.check`)."""

    def phase(self, text: str) -> None: ...

    def tick(self, tree: Tree, now: float) -> None: ...


class Check:
    """A context manager: on exit, nothing of CMD's tree is left and signals are restored."""

    def __init__(self, opts: CheckOptions, view: View) -> None:
        if (opts.argv is None) == (opts.pid is None):
            raise BadUsage("give either -- CMD or --pid P")
        self.opts = opts
        self.view = view
        self.me = os.getpid()
        self.started = time.monotonic()
        self.stop_signal: int | None = None
        self.events: ProcEvents | None = None
        self.guard: Guard | None = None
        self.cmd = 0
        self.status: int | None = None  # CMD's wait status once collected
        self.signalled = False  # the check sent CMD a signal to end it
        self.tree: Tree | None = None
        self.observer: Observer | None = None
        self.guarded: set[int] = set()
        self.parents: dict[int, tuple[str, str]] = {}
        self._parents_read: dict[int, float] = {}  # when each entry of parents was read
        self.zombies_before = 0
        self.client_seconds: float | None = None
        self.tree_ports: list[int] = []
        self.served_before_exit: int | None = None
        self._end_parents: list[int] = []
        self._next_regroup = 0.0
        self._next_check = 0.0
        self._old: dict[int, Any] = {}
        self._old_wakeup = -1
        self._wake_r = self._wake_w = -1
        self._subreaper = Subreaper()
        self._last_ui = 0.0

    # ----------------------------------------------------------------- set-up

    def __enter__(self) -> Check:
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._on_signal)
        self._old[signal.SIGCHLD] = signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        self._old_wakeup = signal.set_wakeup_fd(self._wake_w)
        if not self.opts.sampled:
            try:
                self.events = ProcEvents()
            except (OSError, AttributeError):
                self.events = None  # not root, or not Linux: sample instead
        if self.opts.argv is not None:
            if not self._subreaper.start():
                raise NotSupported("check -- CMD needs Linux (a child subreaper)")
            self.guard = Guard()
        return self

    def _on_signal(self, signum: int, frame: object) -> None:
        if self.stop_signal is None:
            self.stop_signal = signum

    def __exit__(self, *exc: object) -> None:
        try:
            if self.opts.argv is not None and self.cmd:
                self._kill_everything()
        finally:
            if self.guard is not None:
                self.guard.close()
            if self.events is not None:
                self.events.close()
            signal.set_wakeup_fd(self._old_wakeup)
            for sig, handler in self._old.items():
                signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
            for fd in (self._wake_r, self._wake_w):
                os.close(fd)
            self._subreaper.stop()

    # ----------------------------------------------------------------- the check

    def run(self) -> Report:
        """Everything between start and verdict; clean-up is left to __exit__."""
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
            self._end_cmd()
        return self._report(results, listened, at_end)

    def _start(self, argv: list[str]) -> None:
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
        self.cmd = spawn(argv, mask, None, signal.SIGKILL, self.opts.stdout)
        self._new_tree(self.cmd, self.me)
        self.view.phase(f"started {argv[0]} as pid {self.cmd}")

    def _attach(self, pid: int) -> None:
        proctable.require_process(pid)
        kids = proctable.descendants_of(pid)
        self.zombies_before = sum(1 for k in kids if k.is_zombie and k.ppid == pid)
        self._new_tree(pid, 0, kids)
        self.view.phase(f"checking pid {pid}: nothing will be adopted, signalled or ended")

    def _new_tree(self, root: int, me: int, before: list[proctable.ProcInfo] | None = None) -> None:
        """me: zombiectl's pid when the tree hangs under it (-- CMD), else 0 (--pid).

        `before`: the root's descendants already there, which the check did not see start.
        """
        self.tree = Tree(root, me, time.monotonic())
        if before:
            self.tree.seen(before, time.monotonic(), complete=False, before=True)
        ignore = {self.guard.pid} if self.guard is not None else set()
        self.observer = Observer(self.tree, self.events, self.opts.sample, ignore)
        self._guard_group(root)
        self.observer.step(force_sample=self.events is None)

    def _exercise(self) -> tuple[EchoResults | None, bool]:
        """The middle of the check: serve clients, or wait for the end or the deadline."""
        opts = self.opts
        if opts.tcp is None:
            deadline = None if opts.duration is None else self.started + opts.duration
            self.wait(lambda: False, deadline)
            return None, False
        ready = self._wait_listening(opts.tcp)
        if not ready:
            return None, False
        results = self._drive(opts.tcp)
        if not self._stopped():
            self.view.phase(f"settling for {opts.settle:g} s")
            self.wait(lambda: False, time.monotonic() + opts.settle)
        return results, True

    def _wait_listening(self, port: int) -> bool:
        opts = self.opts
        deadline = time.monotonic() + opts.ready_timeout
        self.view.phase(f"waiting for a process of the tree to listen on {opts.host}:{port}")
        found: list[int] = []
        next_look = [0.0]

        def listening() -> bool:
            assert self.tree is not None
            now = time.monotonic()
            if now < next_look[0]:
                return False
            next_look[0] = now + READY_POLL
            pid = listening_pid(sorted(self.tree.live_pids()), opts.host, port)
            if pid is not None:
                found.append(pid)
            return pid is not None

        self.wait(listening, deadline, poll=READY_POLL)
        if found:
            self.view.phase(f"pid {found[0]} listens on {opts.host}:{port}")
        elif not self._stopped() and not self._root_ended():
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
                _wake(self._wake_w)  # the loop may be asleep in select

        self.view.phase(f"{opts.clients} clients, {opts.concurrency} at a time")
        t0 = time.monotonic()
        thread = threading.Thread(target=clients, name="clients", daemon=True)
        thread.start()

        def served() -> bool:
            self._note_crash(results)
            return not thread.is_alive()

        self.wait(served, None, stop_on_root=False)
        self.client_seconds = time.monotonic() - t0
        if thread.is_alive():
            # Interrupted: what fails once the check ends CMD is not the server's doing.
            stop.set()
            self._end_cmd()
            thread.join(opts.client_timeout + EOF_WAIT + 1.0)
        return results

    # ----------------------------------------------------------------- the loop

    def wait(
        self,
        done: Callable[[], bool],
        deadline: float | None,
        poll: float = 1.0,
        stop_on_root: bool = True,
    ) -> None:
        """Observe until `done()`, the deadline, a stop signal, or (by default) the root's end."""
        assert self.observer is not None
        fds = [self._wake_r]
        events_fd = self.observer.fileno()
        if events_fd is not None:
            fds.append(events_fd)
        while not self._stopped():
            now = time.monotonic()
            if self.observer.step() or now >= self._next_check:
                self._next_check = now + IDLE_CHECK
                self._after_step()
                if stop_on_root and self._root_ended():
                    return
            if done():
                return
            if deadline is not None and now >= deadline:
                return
            timeout = min(self.observer.timeout(), poll, UI_EVERY)
            if deadline is not None:
                timeout = min(timeout, deadline - now)
            try:
                select.select(fds, [], [], max(0.0, timeout))
            except InterruptedError:
                pass
            _drain(self._wake_r)

    def _after_step(self) -> None:
        assert self.observer is not None and self.tree is not None
        for pid in self.observer.take_new_pids():
            self._guard_group(pgid_of(pid))
        self._regroup()
        self._note_parents()
        if self.opts.argv is not None and self.observer.mine_exited:
            self.observer.mine_exited = False
            self._collect_adopted()
        now = time.monotonic()
        if now - self._last_ui >= UI_EVERY:
            self._last_ui = now
            self.view.tick(self.tree, now)

    def _stopped(self) -> bool:
        return self.stop_signal is not None

    def _root_ended(self) -> bool:
        """CMD has exited (not collected yet: its zombies are counted first), or P is gone."""
        assert self.tree is not None
        if self.opts.argv is None:
            info = proctable.read_proc(self.tree.root)
            return info is None or info.is_zombie
        if self.status is not None:
            return True
        try:
            dead = os.waitid(os.P_PID, self.cmd, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return dead is not None and dead.si_pid == self.cmd

    def _collect_adopted(self) -> None:
        """Reap the dead orphans zombiectl adopted; CMD's zombies wait until they are counted."""
        assert self.tree is not None
        tree = self.tree
        for m in tree.zombies():
            if m.ppid == tree.root and self.status is None:
                continue  # still CMD's: counted at CMD's end, then collected
            try:
                pid, _ = os.waitpid(m.pid, os.WNOHANG)
            except ChildProcessError:
                continue  # not ours (yet)
            if pid == m.pid:
                tree.gone(pid, time.monotonic(), by_me=True)

    def _note_parents(self) -> None:
        """Name and command line of each parent of a zombie, read while it is alive.

        Read again for a zombie newer than the last read: the parent may have exec'd
        another program since (a shell that execs the server), and the report names
        what holds the zombies. A parent that has died keeps what was read before.
        """
        assert self.tree is not None
        for m in self.tree.zombies():
            if not m.ppid or m.exited is None:
                continue
            if m.ppid in self.parents and self._parents_read[m.ppid] >= m.exited:
                continue
            self._parents_read[m.ppid] = time.monotonic()
            info = proctable.read_proc(m.ppid)
            if m.ppid not in self.parents or (info is not None and not info.is_zombie):
                self.parents[m.ppid] = read_name_cmdline(m.ppid)

    def _regroup(self) -> None:
        """Tell the guard of groups made after a fork (setsid, setpgid), twice a second."""
        now = time.monotonic()
        if self.guard is None or self.tree is None or now < self._next_regroup:
            return
        self._next_regroup = now + REGROUP_EVERY
        for pid in self.tree.live_pids():
            self._guard_group(pgid_of(pid))

    def _guard_group(self, pgid: int | None) -> None:
        if self.guard is None or pgid is None or pgid in self.guarded or pgid <= 1:
            return
        if pgid == os.getpgrp():
            return  # zombiectl's own group: the guard must not kill our caller
        self.guarded.add(pgid)
        self.guard.watch(pgid)

    # ----------------------------------------------------------------- the end

    def _zombies_at_end(self) -> int:
        """The zombies the verdict counts: the tree's now (CMD's included when it has exited)."""
        assert self.observer is not None and self.tree is not None
        self.observer.step(force_sample=True)
        self._note_parents()
        self._end_parents = [m.ppid for m in self.tree.zombies()]
        return len(self._end_parents)

    def _end_cmd(self) -> None:
        """SIGTERM CMD's group, SIGKILL after --grace, and collect CMD."""
        if self.status is None and not self._root_ended():
            self.signalled = True
            self.view.phase(f"ending pid {self.cmd}: SIGTERM, SIGKILL after {self.opts.grace:g} s")
            _killpg(self.cmd, signal.SIGTERM)
            stop, self.stop_signal = self.stop_signal, None  # a second Ctrl-C must not skip this
            self.wait(lambda: False, time.monotonic() + self.opts.grace)
            self.stop_signal = stop
            if not self._root_ended():
                _killpg(self.cmd, signal.SIGKILL)
        self._collect_cmd()

    def _collect_cmd(self) -> None:
        if self.status is not None or not self.cmd:
            return
        _, self.status = _waitpid_retry(self.cmd)
        if self.tree is not None:
            self.tree.gone(self.cmd, time.monotonic(), by_me=True)

    def _kill_everything(self) -> None:
        """SIGKILL and reap every process under zombiectl but the guard, until none is left."""
        deadline = time.monotonic() + CLEANUP_DEADLINE
        skip = {self.guard.pid} if self.guard is not None else set()
        while time.monotonic() < deadline:
            _killpg(self.cmd, signal.SIGKILL)
            left = [p for p in proctable.descendants_of(self.me) if p.pid not in skip]
            for p in left:
                if not p.is_zombie:
                    _kill(p.pid, signal.SIGKILL)
            self._reap_children(skip)
            if not left:
                return
            time.sleep(0.002)

    def _reap_children(self, skip: set[int]) -> None:
        for pid in proctable.child_pids(self.me):
            if pid in skip:
                continue
            try:
                got, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                continue
            if got == self.cmd and self.status is None:
                self.status = status
            if got and self.tree is not None:
                self.tree.gone(got, time.monotonic(), by_me=True)

    # ----------------------------------------------------------------- the report

    def _not_started(self, why: str, code: int) -> Report:
        opts = self.opts
        facts = Facts(
            command=list(opts.argv or []),
            pid=0,
            mode="run",
            exit_status=code,
            seconds=time.monotonic() - self.started,
            resolution_ms=None if self.events is not None else opts.sample * 1000,
            tcp=opts.tcp is not None,
            not_started=why,
            interrupted_by=self.stop_signal,
        )
        return grade(facts, opts.limits)

    def _report(self, results: EchoResults | None, listened: bool, at_end: int) -> Report:
        assert self.tree is not None and self.observer is not None
        opts, tree = self.opts, self.tree
        if opts.argv is not None:
            self._kill_everything()
        facts = Facts(
            command=list(opts.argv) if opts.argv is not None else self._cmdline_of_root(),
            pid=tree.root,
            mode="run" if opts.argv is not None else "pid",
            exit_status=self._exit_status(),
            seconds=time.monotonic() - self.started,
            resolution_ms=None if self.observer.resolution is None else opts.sample * 1000,
            children=tree.children_started(),
            max_zombies=tree.max_zombies,
            zombies_before=self.zombies_before,
            zombies_at_end=at_end,
            orphans_adopted=len(tree.adopted),
            collected_by_parent=_collected(tree, by_me=False),
            collected_by_zombiectl=_collected(tree, by_me=True),
            lifetimes_ms=[s * 1000 for s in tree.lifetimes()],
            oldest_zombie_ms=self._oldest_ms(),
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
            interrupted_by=self.stop_signal,
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
        opts = self.opts
        self.view.phase(why)
        facts = Facts(
            command=list(opts.argv or []),
            pid=0,
            mode="run",
            exit_status=None,
            seconds=time.monotonic() - self.started,
            resolution_ms=None if self.events is not None else opts.sample * 1000,
            tcp=opts.tcp is not None,
            port=opts.tcp,
            environment=why,
            environment_pid=pid,
            interrupted_by=self.stop_signal,
        )
        return grade(facts, opts.limits)

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
            return None if self.status is None else exit_code_of(self.status)
        assert self.tree is not None
        status = self.tree.root_status  # from the exit event; unknown when sampling
        return None if status is None else exit_code_of(status)

    def _crash_signal(self) -> int | None:
        if self.opts.argv is None or self.status is None or self.signalled:
            return None
        code = os.waitstatus_to_exitcode(self.status)
        return -code if code < 0 else None

    def _oldest_ms(self) -> float | None:
        assert self.tree is not None
        now = time.monotonic()
        ages = [s * 1000 for s in self.tree.lifetimes()]
        ages += [(now - m.exited) * 1000 for m in self.tree.zombies() if m.exited is not None]
        return max(ages) if ages else None

    def _leakers(self) -> list[Leaker]:
        assert self.tree is not None
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

    def _cmdline_of_root(self) -> list[str]:
        assert self.tree is not None
        return read_argv(self.tree.root)


# --------------------------------------------------------------------------- helpers


def _collected(tree: Tree, by_me: bool) -> int:
    return sum(
        1
        for m in tree.members.values()
        if m.exited is not None
        and m.gone is not None
        and m.pid != tree.root
        and (m.collector == ZOMBIECTL) == by_me
    )


def pgid_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def read_argv(pid: int) -> list[str]:
    from zombiectl.untrusted import from_proc

    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return []
    return [from_proc(part) for part in raw.rstrip(b"\0").split(b"\0") if raw]


def read_name_cmdline(pid: int) -> tuple[str, str]:
    info = proctable.read_proc(pid)
    return (info.name if info else "?"), " ".join(read_argv(pid))


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _waitpid_retry(pid: int) -> tuple[int, int | None]:
    while True:
        try:
            return os.waitpid(pid, 0)
        except ChildProcessError:
            return pid, None
        except InterruptedError:
            continue


def _wake(fd: int) -> None:
    try:
        os.write(fd, b"\0")
    except OSError:
        pass


def _drain(fd: int) -> None:
    while True:
        try:
            if not os.read(fd, 4096):
                return
        except (BlockingIOError, InterruptedError):
            return
