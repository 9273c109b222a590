"""Lab parents: run a strategy's real code in a process of its own, watch its children,
and clean everything up whatever happens.

    $ zombiectl demo fork --count 3 --json --sample 0.3 | tail -2
    {"event": "sample", "strategy": "fork", "t": 2.553, "alive": 0, "zombies": 3, "reaped": 0}
    {"event": "summary", "strategy": "fork", "start_method": null, "children": 3, "max_zombies": 3, "final_zombies": 3, "expected_final_zombies": 3, "ok": true, "leftover": 0, "seconds": 2.553}

Each lab parent is ``python -m zombiectl.demo.labproc`` started with ``posix_spawn`` as a child
of zombiectl and the leader of a new process group (a terminal's Ctrl-C reaches zombiectl
only, which then cleans up in order). zombiectl samples the lab parent's children with
``proctable.children_of`` and reads the lab's events (see `zombiectl.demo.labproc`).

The process control is `zombiectl.supervise.Supervisor`'s, the same as `check`'s: each
lab parent is a root of its tree, zombiectl is a child subreaper (whatever a lab orphans
comes back to it and is collected), SIGINT and SIGTERM only end the loop, and each lab
is ended by kill-and-collect (its members frozen, then SIGKILLed; never a process group).
The lab parent dies with zombiectl (``PR_SET_PDEATHSIG``) and the supervisor's guard ends
every member if zombiectl itself is SIGKILLed.

What a lab is and reports (`LabSpec`, `LabSample`, `Summary`) is in `zombiectl.demo.model`.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from zombiectl.demo.labproc import EXEC_FD
from zombiectl.demo.model import LabSample, LabSpec, Summary
from zombiectl.errors import NoSuchProcess, PermissionDenied
from zombiectl.proc import table as proctable
from zombiectl.proc.identity import read_identity
from zombiectl.supervise.supervisor import Supervisor

STDERR_LINES_KEPT = 20


# --------------------------------------------------------------------------- helpers

# multiprocessing starts processes of its own besides the workers; their command lines
# say which (after their exec; before it they look like the lab parent).
HELPER_MARKS = (
    (b"multiprocessing.forkserver", "fork server"),
    (b"multiprocessing.resource_tracker", "resource tracker"),
    (b"multiprocessing.semaphore_tracker", "resource tracker"),
)
HELPER = "helper"


def helper_name(pid: int) -> str:
    """What a child of the lab parent that the strategy did not report is, for the user."""
    cmdline = proctable.read_cmdline(pid)
    if cmdline is None:
        return HELPER
    for mark, name in HELPER_MARKS:
        if mark in cmdline:
            return name
    return HELPER


# --------------------------------------------------------------------------- one lab


def _package_root() -> str:
    import zombiectl

    return os.path.dirname(os.path.dirname(os.path.abspath(zombiectl.__file__)))


def _lab_env() -> dict[str, str]:
    env = dict(os.environ)
    root = _package_root()
    # The lab must import this very zombiectl, also from a checkout that is not installed.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    env.pop("PYTHONSTARTUP", None)
    return env


class Lab:
    """One running lab parent, seen from zombiectl. Not thread-safe; driven by `LabRunner`."""

    def __init__(self, spec: LabSpec, sup: Supervisor | None = None) -> None:
        self.spec = spec
        self.sup = sup  # what ends and collects the lab's processes
        self.pid = 0
        self.started_at = 0.0
        self.events_fd = -1
        self.stderr_fd = -1
        # The children the strategy reported starting: the only ones counted. Whatever
        # else the lab parent forks (multiprocessing's fork server and resource tracker,
        # the server lab's short-lived companion) is a helper, never alive, zombie or reaped.
        self.tracked: set[int] = set()
        self.reaped: set[int] = set()
        self.helpers: dict[int, str] = {}
        self.reported_children = 0
        self.done_at: float | None = None
        self.settled_at: float | None = None
        self.error: tuple[str, str] | None = None
        self.notes: list[str] = []
        self.extra: dict[str, Any] = {}
        self.last: LabSample | None = None
        self.max_zombies = 0
        self.summary: Summary | None = None
        self.lab_status: int | None = None
        self._buf = b""
        self._stderr_tail: list[str] = []
        self._stderr_buf = b""

    # ----------------------------------------------------------------- start

    def start(self) -> None:
        spec = self.spec
        params = dict(vars(spec.params))
        params["start_method"] = spec.start_method
        exec_fd = params.get("exec_fd")
        if exec_fd is not None:
            # Above every descriptor the dup2s below write to, so none of them clobbers it.
            exec_fd = fcntl.fcntl(exec_fd, fcntl.F_DUPFD_CLOEXEC, EXEC_FD + 1)
            params["exec_fd"] = EXEC_FD  # where the lab finds it
        config = {"entry": spec.strategy.entry, "params": params, "parent": os.getpid()}
        ev_r, ev_w = os.pipe()
        er_r, er_w = os.pipe()
        devnull = os.open(os.devnull, os.O_RDWR)
        try:
            actions = [
                (os.POSIX_SPAWN_DUP2, devnull, 0),
                (os.POSIX_SPAWN_DUP2, devnull, 1),
                (os.POSIX_SPAWN_DUP2, er_w, 2),
                (os.POSIX_SPAWN_DUP2, ev_w, 3),
            ]
            if exec_fd is not None:  # a checked binary: the lab executes this very file
                actions.append((os.POSIX_SPAWN_DUP2, exec_fd, EXEC_FD))  # last: see above
            argv = [sys.executable, "-m", "zombiectl.demo.labproc", json.dumps(config)]
            self.pid = os.posix_spawn(
                sys.executable,
                argv,
                _lab_env(),
                file_actions=actions,
                setpgroup=0,
                setsigdef=(
                    signal.SIGINT,
                    signal.SIGTERM,
                    signal.SIGCHLD,
                    signal.SIGHUP,
                    signal.SIGQUIT,
                ),
                setsigmask=(),
            )
        except BaseException:
            for fd in (ev_r, er_r):
                os.close(fd)
            raise
        finally:
            for fd in [ev_w, er_w, devnull] + ([] if exec_fd is None else [exec_fd]):
                os.close(fd)
        self.started_at = time.monotonic()
        if self.sup is not None:
            self.sup.add_root(self.pid)
        self.events_fd, self.stderr_fd = ev_r, er_r
        os.set_blocking(ev_r, False)
        os.set_blocking(er_r, False)

    @property
    def pgid(self) -> int:
        return self.pid

    @property
    def running(self) -> bool:
        return self.summary is None

    def fds(self) -> list[int]:
        return [fd for fd in (self.events_fd, self.stderr_fd) if fd >= 0]

    # ----------------------------------------------------------------- events

    def read_events(self) -> None:
        self._buf += _read_available(self.events_fd)
        *lines, self._buf = self._buf.split(b"\n")
        now = time.monotonic()
        for line in lines:
            if line.strip():
                self._handle(json.loads(line), now)
        self._stderr_buf += _read_available(self.stderr_fd)
        *errs, self._stderr_buf = self._stderr_buf.split(b"\n")
        for err in errs:
            self._stderr_tail.append(err.decode("utf-8", "replace"))
        del self._stderr_tail[:-STDERR_LINES_KEPT]

    def _handle(self, ev: dict[str, Any], now: float) -> None:
        kind = ev.get("event")
        if kind == "started":
            self.tracked.add(int(ev["pid"]))
            self.reported_children += 1
        elif kind == "done":
            self.done_at = now
        elif kind == "settled":
            self.settled_at = now
            if self.done_at is None:
                self.done_at = now
        elif kind == "note":
            self.notes.append(str(ev.get("text", "")))
        elif kind == "report":
            self.extra.update(ev.get("fields", {}))
        elif kind == "error" and self.error is None:
            self.error = (str(ev.get("kind", "exception")), str(ev.get("message", "")))

    # ----------------------------------------------------------------- sampling

    def sample(self, now: float) -> LabSample:
        try:
            kids = proctable.children_of(self.pid) if self.lab_status is None else []
        except (NoSuchProcess, PermissionDenied):
            kids = []
        alive = zombies = helpers = 0
        present = set()
        for k in kids:
            if k.pid not in self.tracked:
                helpers += self._note_helper(k.pid, k.is_zombie)
                continue
            present.add(k.pid)
            if k.is_zombie:
                zombies += 1
            else:
                alive += 1
        for pid in self.tracked - present - self.reaped:
            if not proctable.pid_exists(pid):
                self.reaped.add(pid)
        s = LabSample(
            self.spec.name,
            self.spec.strategy.name,
            now - self.started_at,
            alive,
            zombies,
            len(self.reaped),
            self.spec.label or None,
            helpers,
        )
        self.max_zombies = max(self.max_zombies, zombies)
        self.last = s
        return s

    def _note_helper(self, pid: int, zombie: bool) -> int:
        """Remember what an unreported live child is (1), or skip a dead one (0)."""
        if zombie:
            return 0
        if self.helpers.get(pid, HELPER) == HELPER:
            self.helpers[pid] = helper_name(pid)
        return 1

    def helper_names(self, live: int) -> tuple[str, ...]:
        """The names of the helpers seen, most specific first, at most `live` of them."""
        names = sorted(self.helpers.values(), key=lambda n: (n == HELPER, n))
        return tuple(names[:live])

    def note_status(self) -> None:
        """The lab parent's wait status, once the supervisor has collected it."""
        if self.sup is not None and self.lab_status is None and self.pid in self.sup.status:
            self.lab_status = self.sup.status[self.pid]

    def should_finish(self, now: float) -> bool:
        """Done: failed, exited, or settled and past its own --hold."""
        if self.error is not None or self.lab_status is not None:
            return True
        if self.settled_at is None or self.done_at is None:
            return False
        if self.spec.strategy.until_interrupted(self.spec.params):
            return False
        return now >= max(self.done_at + self.spec.params.hold, self.settled_at)

    # ----------------------------------------------------------------- clean-up

    def cleanup(self) -> int:
        """Kill and collect the whole lab; return how many of its processes are left (0)."""
        if self.pid <= 0:
            return 0
        if self.sup is not None:
            self.sup.end(0.0, lambda m: m.origin == self.pid)
        self.note_status()
        self.read_events()
        for fd in self.fds():
            os.close(fd)
        self.events_fd = self.stderr_fd = -1
        return self.leftover()

    def leftover(self) -> int:
        left = {p.pid for p in proctable.process_group(self.pgid)}
        if self.lab_status is None and proctable.read_proc(self.pid) is not None:
            left.add(self.pid)
        left |= {pid for pid in self.tracked if _is_my_child(pid)}
        if self.sup is not None:
            left |= {
                m.pid
                for m in self.sup.tree.live()
                if m.origin == self.pid and _still_there(m.pid, m.starttime)
            }
        return len(left)

    def stderr_tail(self) -> str:
        return "\n".join(line for line in self._stderr_tail if line.strip())

    def make_summary(self, final: LabSample, leftover: int, interrupted: bool) -> Summary:
        spec = self.spec
        error = None
        kind = None
        if self.error is not None:
            kind, message = self.error
            error = message
        elif self.lab_status is not None and not interrupted and self.settled_at is None:
            kind, error = "exception", "the lab parent exited unexpectedly"
            tail = self.stderr_tail()
            if tail:
                error += ": " + tail.splitlines()[-1]
        children = self.reported_children
        return Summary(
            label=spec.name,
            strategy=spec.strategy.name,
            start_method=spec.start_method,
            children=children,
            max_zombies=self.max_zombies,
            final_zombies=final.zombies,
            expected_final_zombies=spec.expected,
            leftover=leftover,
            seconds=final.t,
            interrupted=interrupted,
            error=error,
            error_kind=kind,
            extra=dict(self.extra),
            experiment=spec.label or None,
            helpers=self.helper_names(final.helpers),
            settings=spec.settings,
        )

    def finish(self, interrupted: bool = False) -> Summary:
        self.read_events()
        final = self.sample(time.monotonic())
        leftover = self.cleanup()
        self.summary = self.make_summary(final, leftover, interrupted)
        return self.summary


def _read_available(fd: int) -> bytes:
    if fd < 0:
        return b""
    chunks = []
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:  # BlockingIOError: all read for now
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def _still_there(pid: int, starttime: int | None) -> bool:
    """pid still names that member (a zombie too): the tree may not have read its end yet."""
    ident = read_identity(pid)
    return ident is not None and (starttime is None or ident.starttime == starttime)


def _is_my_child(pid: int) -> bool:
    info = proctable.read_proc(pid)
    return info is not None and info.ppid == os.getpid()


# --------------------------------------------------------------------------- runner


OnUpdate = Callable[[list[Lab], list[LabSample]], None]


class LabRunner:
    """Runs labs side by side under one `Supervisor`; a context manager that ends them all.

    On exit, every lab is killed and collected, and the supervisor restores what it
    changed (signal handlers, the subreaper role).
    """

    def __init__(self, sample_every: float = 0.1) -> None:
        self.sample_every = sample_every
        self.labs: list[Lab] = []
        self.sup = Supervisor(sample_every)

    @property
    def stop_signal(self) -> int | None:
        return self.sup.stop_signal

    def __enter__(self) -> LabRunner:
        self.sup.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            for lab in self.labs:
                if lab.summary is None:
                    try:
                        lab.finish(interrupted=True)
                    except Exception:
                        lab.cleanup()
        finally:
            self.sup.__exit__(*exc)

    def start(self, spec: LabSpec) -> Lab:
        lab = Lab(spec, self.sup)
        self.labs.append(lab)
        lab.start()
        return lab

    def run(self, specs: Iterable[LabSpec], on_update: OnUpdate | None = None) -> list[Summary]:
        """Start every lab, sample until each has finished (or a stop signal), clean up."""
        for spec in specs:
            self.start(spec)
        next_sample = time.monotonic()
        woke: list[int] = []  # lab descriptors that have something to read
        while any(lab.running for lab in self.labs) and self.stop_signal is None:
            fds = [fd for lab in self.labs if lab.running for fd in lab.fds()]
            woke.clear()
            self.sup.wait(lambda: bool(woke), next_sample, fds, woke.extend)
            if self.stop_signal is not None:
                break
            now = time.monotonic()
            samples = []
            for lab in self.labs:
                if not lab.running:
                    continue
                lab.read_events()
                lab.note_status()
                if now >= next_sample:
                    samples.append(lab.sample(now))
                if lab.should_finish(now):
                    lab.finish()
            if now >= next_sample:
                next_sample = now + self.sample_every
                if on_update is not None:
                    on_update(self.labs, samples)
        if self.stop_signal is not None:
            for lab in self.labs:
                if lab.running:
                    lab.finish(interrupted=True)
            if on_update is not None:
                on_update(self.labs, [])
        return [lab.summary for lab in self.labs if lab.summary is not None]
