"""The supervisor: the one loop that runs a tree of processes and ends it, whatever happens.

    with Supervisor(sample_every=0.1) as sup:
        pid = sup.spawn(["./server", "9000"], Streams(stdin=devnull))
        sup.wait(lambda: listening(), deadline=time.monotonic() + 10)
        ...
    # here every member has been ended and collected, and signals are restored

On entry, in this order: SIGINT and SIGTERM only set `stop_signal` (and wake the loop
through one pipe), SIGCHLD gets its default action (an inherited SIG_IGN would let the
kernel reap the tree's children unseen), zombiectl becomes a child subreaper (every
orphan of the tree comes back to it), the guard is forked (before any thread), and the
process events are opened. On exit every member is ended (`teardown`) and collected.

`wait()` is the loop: it observes, collects what is zombiectl's to collect, and returns
when the caller's condition holds, its deadline passes, or a stop signal arrives.
"""

from __future__ import annotations

import os
import select
import signal
import time
from collections.abc import Callable, Iterable
from typing import Any

from zombiectl.errors import NotSupported
from zombiectl.proc.events import ProcEvents
from zombiectl.proc.pidfd import collect, starttime_of
from zombiectl.proc.prctl import Subreaper
from zombiectl.supervise.guard import Guard
from zombiectl.supervise.observer import Observer
from zombiectl.supervise.spawn import Credentials, Streams, spawn
from zombiectl.supervise.teardown import Stuck, end_members, signal_members
from zombiectl.supervise.tree import Member, Tree

IDLE_CHECK = 0.05  # seconds between two rounds of the owner's own work when nothing changed
KILL_DEADLINE = 1.0  # seconds kill-and-collect may take before the stuck are named
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Supervisor:
    """A tree of processes under zombiectl; a context manager that ends it on exit.

    `watch_pid`: observe a running process instead (``check --pid``): nothing is
    adopted, signalled or ended, and no guard is needed.
    """

    def __init__(
        self,
        sample_every: float = 0.1,
        sampled: bool = False,
        watch_pid: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sample_every = sample_every
        self.sampled = sampled
        self.watch_pid = watch_pid
        self.clock = clock
        self.me = os.getpid()
        self.stop_signal: int | None = None
        self.events: ProcEvents | None = None
        self.guard: Guard | None = None
        self.tree = Tree(0, 0 if watch_pid is not None else self.me, clock())
        self.observer = Observer(self.tree, None, sample_every, clock)
        self.status: dict[int, int] = {}  # wait status of each root zombiectl collected
        # A member not to collect yet (CMD and its zombies, until they are counted).
        self.hold: Callable[[Member], bool] = lambda m: False
        self.on_step: Callable[[], None] = lambda: None
        self.stuck: list[Stuck] = []
        self._old: dict[int, Any] = {}
        self._old_wakeup = -1
        self._handlers = False
        self._wake_r = self._wake_w = -1
        self._subreaper = Subreaper()
        self._next_check = 0.0

    # ----------------------------------------------------------------- set-up

    def __enter__(self) -> Supervisor:
        try:
            self._start()
        except BaseException:
            self._restore()
            raise
        return self

    def _start(self) -> None:
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        try:
            for sig in STOP_SIGNALS:
                self._old[sig] = signal.signal(sig, self._on_signal)
            self._old_wakeup = signal.set_wakeup_fd(self._wake_w)
            self._handlers = True
        except ValueError:  # not the main thread: no signal handling, clean-up still runs
            pass
        if self.watch_pid is None:
            self._old[signal.SIGCHLD] = signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            if not self._subreaper.start():
                raise NotSupported("supervising a command needs Linux (a child subreaper)")
            # The guard follows the kernel's events wherever it may, even when the
            # counts are sampled (--sampled): its membership must not lag.
            self.guard = Guard()
            self.tree.ignore.add(self.guard.pid)
            self.observer.started_after = starttime_of(self.guard.pid) or 0
        if not self.sampled:
            try:
                self.events = ProcEvents()
            except (OSError, AttributeError):
                self.events = None  # not root on an older kernel, or not Linux: sample
        self.observer.events = self.events

    def _on_signal(self, signum: int, frame: object) -> None:
        if self.stop_signal is None:
            self.stop_signal = signum

    def __exit__(self, *exc: object) -> None:
        try:
            if self.watch_pid is None:
                self.end(grace=0.0)
        finally:
            self._restore()

    def _restore(self) -> None:
        if self.guard is not None:
            self.guard.close()
            self.guard = None
        if self.events is not None:
            self.events.close()
            self.events = None
        if self._handlers:
            signal.set_wakeup_fd(self._old_wakeup)
            self._handlers = False
        for sig, handler in self._old.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        self._old.clear()
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._wake_r = self._wake_w = -1
        self._subreaper.stop()

    # ----------------------------------------------------------------- members

    def spawn(self, argv: list[str], streams: Streams, user: Credentials | None = None) -> int:
        """Start CMD as a root of the tree (ExecFailed, ResourceLimit)."""
        pid = spawn(argv, streams, user)
        self.add_root(pid)
        if not self.tree.root:
            self.tree.root = pid
        return pid

    def add_root(self, pid: int) -> None:
        """A process zombiectl started (a lab parent) becomes a root of the tree."""
        start = starttime_of(pid)
        self.tree.add_root(pid, self.clock(), start)
        if self.guard is not None:
            self.guard.tell(pid, start)

    def watch(self, pid: int, before: Iterable[Any] = ()) -> None:
        """--pid: observe pid and the descendants it has already (`before`)."""
        self.tree.root = pid
        self.tree.add_root(pid, self.clock(), starttime_of(pid), before=True)
        self.tree.seen(list(before), self.clock(), complete=False, before=True)

    # ----------------------------------------------------------------- the loop

    def wait(
        self,
        done: Callable[[], bool],
        deadline: float | None,
        fds: Iterable[int] | Callable[[], Iterable[int]] = (),
        on_ready: Callable[[list[int]], None] | None = None,
        poll: float = 0.25,
        stoppable: bool = True,
    ) -> None:
        """Observe until `done()`, the deadline, or (when `stoppable`) a stop signal.

        `fds`: descriptors of the owner's to wait on too, a list or a function that gives
        the current list (one may be closed by `on_ready`); `on_ready` gets those ready.
        """
        events_fd = self.observer.fileno()
        while not (stoppable and self.stop_signal is not None):
            now = self.clock()
            if self.observer.step() or now >= self._next_check:
                self._next_check = now + IDLE_CHECK
                self._after_step()
            if done():
                return
            if deadline is not None and now >= deadline:
                return
            timeout = min(self.observer.timeout(), poll)
            if deadline is not None:
                timeout = min(timeout, deadline - now)
            extra = list(fds() if callable(fds) else fds)
            watched = [self._wake_r, *extra]
            if events_fd is not None:
                watched.append(events_fd)
            ready, _, _ = select.select(watched, [], [], max(0.0, timeout))
            _drain(self._wake_r)
            if on_ready is not None:
                mine = [fd for fd in ready if fd in extra]
                if mine:
                    on_ready(mine)

    def wake(self) -> None:
        """Wake the loop from another thread."""
        if self._wake_w >= 0:
            try:
                os.write(self._wake_w, b"\0")
            except OSError:
                pass

    def _after_step(self) -> None:
        if self.tree.me and self.observer.mine_exited:
            self.observer.mine_exited = False
            self.collect()
        self.on_step()

    def collect(self) -> None:
        """Reap the exited members that are zombiectl's children, but those held back."""
        if not self.tree.me:
            return
        now = self.clock()
        for m in [*self.tree.exited_unseen(), *self._roots_unexited()]:
            if self.hold(m):
                continue
            status = collect(m.pid)
            if status is None:
                continue
            if m.pid in self.tree.roots:
                self.status[m.pid] = status
                if m.exited is None:
                    self.tree.exit(m.pid, now)
            self.tree.gone(m.pid, now, by_me=True)

    def _roots_unexited(self) -> list[Member]:
        return [self.tree.members[r] for r in self.tree.roots if self.tree.members[r].alive]

    def root_exited(self, pid: int) -> bool:
        """The root has exited (collected or not): a zombie, or gone."""
        if pid in self.status:
            return True
        if not self.tree.me:
            ident = starttime_of(pid)
            m = self.tree.members.get(pid)
            if ident is None or (m is not None and m.starttime not in (None, ident)):
                return True
            from zombiectl.proc.table import read_proc

            info = read_proc(pid)
            return info is None or info.is_zombie
        try:
            dead = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return dead is not None and dead.si_pid == pid

    # ----------------------------------------------------------------- the end

    def end(self, grace: float, which: Callable[[Member], bool] | None = None) -> list[Stuck]:
        """SIGTERM the live members `which` selects, wait up to `grace`, then kill and collect.

        A stop signal does not shorten it: the tree must be gone before zombiectl leaves.
        The stuck (still alive after KILL_DEADLINE) are remembered in `stuck`.
        """
        if not self.tree.me:
            return []
        hold, self.hold = self.hold, lambda m: False
        try:
            chosen = which if which is not None else (lambda m: True)
            live = [m for m in self.tree.live() if chosen(m)]
            if grace > 0 and live:
                self.tree.begin_ending(which)
                signal_members(live, signal.SIGTERM)
                self.wait(
                    lambda: not [m for m in self.tree.live() if chosen(m)],
                    self.clock() + grace,
                    stoppable=False,
                    poll=0.05,
                )
            stuck = end_members(
                self.observer, self.collect, self.clock() + KILL_DEADLINE, which, self.clock
            )
        finally:
            self.hold = hold
        self.stuck.extend(s for s in stuck if s.pid not in {x.pid for x in self.stuck})
        return stuck


def _drain(fd: int) -> None:
    while True:
        try:
            if not os.read(fd, 4096):
                return
        except BlockingIOError:
            return
