"""`zombiectl run`: a reaping init, like tini, in the standard library only.

    $ zombiectl run --verbose -- sh -c '(sleep 0.2 &); sleep 0.3; exit 3'
    zombiectl run: started sh as pid 294128
    zombiectl run: reaped orphan 294130, which exited with status 0
    zombiectl run: pid 294128 (sh) exited with status 3
    $ echo $?
    3

How it works (the same shape as tini and catatonit):

- It becomes a child subreaper (``prctl(PR_SET_CHILD_SUBREAPER)``; not needed as PID 1),
  so every orphan among CMD's descendants is re-parented to it rather than to PID 1.
- It blocks every signal it handles *before* starting CMD and takes them one at a time
  with ``sigwaitinfo``: nothing is lost between start-up and the loop, and there is no
  handler racing the loop. SIGCHLD means "drain": ``waitpid(-1, WNOHANG)`` until it
  returns 0 or ECHILD. Standard signals coalesce (a thousand children that exit at once
  may raise one pending SIGCHLD), and draining on every wake-up is what makes that safe:
  a child that dies after the drain raises a new pending SIGCHLD, so the next wait wakes.
- Every other catchable signal (SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2,
  SIGWINCH, SIGPIPE and SIGXFSZ when another process sent them, and the rest that tini
  forwards) goes to CMD, or to CMD's process group with ``--group``. CMD runs in a
  process group of its own; when zombiectl owns the terminal's foreground, CMD's group
  is given the foreground, so Ctrl-C reaches CMD once, from the terminal, and not a
  second time through zombiectl.
- It exits with CMD's status, 128+N when signal N killed CMD. Descendants still alive
  then are left to the next reaper up (as tini does), or with ``--kill-descendants``
  sent SIGTERM and, after ``--grace`` seconds, SIGKILL; or with ``--wait-descendants``
  waited for.

Start-up time is part of the job (an init starts with every container), so this module
imports only ``errno``, ``os``, ``signal``, ``sys`` and ``ctypes`` (for ``prctl``) on the
way to CMD, and starts CMD with ``fork`` + ``execv`` (its own PATH search, with execvp's
rule that a script without ``#!`` runs under /bin/sh: ``os.execvp`` would import
``warnings``) rather than importing ``subprocess``.
"""

from __future__ import annotations

import errno
import os
import signal
import sys

from zombiectl.errors import BadUsage, NotSupported, ZombiectlError
from zombiectl.proc.prctl import set_child_subreaper, set_death_signal
from zombiectl.ui.spec import Option

TYPE_CHECKING = False  # `typing` costs start-up time; mypy takes this name as true
if TYPE_CHECKING:
    from typing import NoReturn

EXIT_NOT_FOUND = 127
EXIT_NOT_EXECUTABLE = 126
DEFAULT_GRACE = 5.0
GRACE_MAX = 86400.0  # a day: --grace is a wait before SIGKILL, never meant as forever

# Signals the kernel sends us for our own faults, which must keep their default action,
# and the two job-control signals that would stop us when we write to a terminal we no
# longer own. SIGPIPE and SIGXFSZ are taken like the rest, but forwarded only when another
# process sent them (see `sent_by_another`): our own writes raise them too.
_NOT_FORWARDED = {
    signal.SIGKILL,
    signal.SIGSTOP,
    signal.SIGFPE,
    signal.SIGILL,
    signal.SIGSEGV,
    signal.SIGBUS,
    signal.SIGABRT,
    signal.SIGTRAP,
    signal.SIGSYS,
    signal.SIGTTIN,
    signal.SIGTTOU,
}
# Dispositions CMD must get back: Python ignores SIGPIPE and SIGXFSZ, and we ignore
# SIGTTIN/SIGTTOU; an ignored disposition would otherwise survive exec.
_RESET_IN_CHILD = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGTTIN, signal.SIGTTOU)

# Raised by the kernel in the writer itself when a write hits a closed pipe or the file
# size limit; sent to us with `kill`, they are meant for CMD, as tini and dumb-init treat them.
_FORWARDED_IF_SENT = (signal.SIGPIPE, signal.SIGXFSZ)
# si_code values (<asm-generic/siginfo.h>) of a signal a process sent: kill, sigqueue, tgkill.
_SI_USER, _SI_QUEUE, _SI_TKILL = 0, -1, -6
# A script without `#!` fails to exec with ENOEXEC; execvp then runs it with this shell.
_BSHELL = "/bin/sh"

LEAVE, KILL, WAIT = "leave", "kill", "wait"


class ExecFailed(ZombiectlError):
    """CMD could not be started: 127 when it was not found, 126 when it could not run."""

    def __init__(self, cmd: str, err: OSError) -> None:
        if err.errno == errno.ENOENT:
            self.exit_code = EXIT_NOT_FOUND
            reason = "command not found"
        else:
            self.exit_code = EXIT_NOT_EXECUTABLE
            reason = f"cannot run: {err.strerror or err}"
        super().__init__(f"{cmd or repr(cmd)}: {reason}")


def caught_signals() -> set[signal.Signals]:
    """Every signal the init takes with sigwaitinfo: SIGCHLD and all it forwards."""
    return {s for s in signal.valid_signals() if s not in _NOT_FORWARDED}


def _log(text: str) -> None:
    # Names and paths in a log line are escaped: one line, no terminal control.
    from zombiectl.untrusted import display

    try:
        os.write(2, f"zombiectl run: {display(text)}\n".encode())
    except OSError:
        pass


def describe_status(status: int) -> str:
    """A wait status in words: 'exited with status 3' or 'was killed by SIGKILL'."""
    code = os.waitstatus_to_exitcode(status)
    if code >= 0:
        return f"exited with status {code}"
    return f"was killed by {_signame(-code)}"


def exit_code_of(status: int) -> int:
    """The shell's convention: the exit code, or 128+N after signal N."""
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


def _foreground_tty() -> int | None:
    """fd 0 when it is a terminal whose foreground process group is ours."""
    try:
        if os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp():
            return 0
    except OSError:
        pass
    return None


def spawn(
    argv: list[str],
    mask: set[int | signal.Signals],
    tty: int | None,
    death_signal: int = 0,
    stdout: int | None = None,
) -> int:
    """Start argv in a process group of its own; raise ExecFailed if it cannot run.

    fork + execvp with a close-on-exec pipe that carries errno back when exec fails
    (the pipe reads EOF when exec succeeds), the way subprocess does it, without the
    cost of importing subprocess. `death_signal`: the signal CMD gets if we die first
    (PR_SET_PDEATHSIG); `stdout`: a descriptor to give CMD as its standard output.
    """
    parent = os.getpid()
    r, w = os.pipe()  # Python makes both ends close-on-exec
    try:
        pid = os.fork()
    except OSError as err:
        os.close(r)
        os.close(w)
        raise ZombiectlError(f"cannot start {argv[0]}: {err.strerror}") from None
    if pid == 0:  # pragma: no cover - runs in the child, which execs or _exits
        try:
            os.close(r)
            os.setpgid(0, 0)
            if death_signal:
                _set_death_signal(death_signal, parent)
            if stdout is not None:
                os.dup2(stdout, 1)
            if tty is not None:
                # SIGTTOU is still ignored here, so a background group may take the
                # terminal; doing it in the child (as tini does) means CMD owns the
                # foreground before its first read.
                os.tcsetpgrp(tty, os.getpgrp())
            for sig in _RESET_IN_CHILD:
                signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            _execvp(argv)
        except BaseException as err:
            report_exec_failure(w, err, EXIT_NOT_FOUND)
    os.close(w)
    failure = exec_failure(r)
    if failure is not None:
        os.waitpid(pid, 0)
        raise ExecFailed(argv[0], failure)
    return pid


def report_exec_failure(w: int, err: BaseException, exit_code: int) -> NoReturn:
    """In a forked child whose exec failed: send errno up the close-on-exec pipe, exit."""
    code = (err.errno or 1) if isinstance(err, OSError) else 1
    try:
        os.write(w, str(code).encode())
    finally:
        os._exit(exit_code)


def exec_failure(r: int) -> OSError | None:
    """The parent's side of that pipe: None when it closed empty (exec succeeded), else
    the error the child could not exec for. Closes r."""
    try:
        chunks = []
        while True:
            chunk = os.read(r, 64)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(r)
    if not chunks:
        return None
    digits = b"".join(chunks)
    errno_value = int(digits) if digits.isdigit() else 1
    return OSError(errno_value, os.strerror(errno_value))


def _set_death_signal(sig: int, parent: int) -> None:  # pragma: no cover - in the child
    set_death_signal(sig)
    if os.getppid() != parent:  # the parent died before the death signal was armed
        os._exit(EXIT_NOT_FOUND)


def _execvp(argv: list[str]) -> None:  # pragma: no cover - runs in the child
    """execvp's PATH search, without the `warnings` import that os.execvp makes.

    As in glibc: a missing file or directory moves on to the next PATH entry; any other
    error (EACCES: found but not executable) is remembered and reported if nothing runs.
    """
    file = argv[0]
    if not file:
        raise FileNotFoundError(2, "No such file or directory", file)
    if "/" in file:
        _execv(file, argv)
    path = os.environ.get("PATH") or os.defpath
    first_error: OSError | None = None
    for directory in path.split(os.pathsep):
        try:
            _execv(os.path.join(directory or ".", file), argv)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as err:
            first_error = first_error or err
    raise first_error or FileNotFoundError(2, "No such file or directory", file)


def _execv(path: str, argv: list[str]) -> None:  # pragma: no cover - runs in the child
    """execv, and execvp's ENOEXEC rule: a file the kernel cannot run (an executable
    script without `#!`) is run by /bin/sh as `/bin/sh PATH ARGS...`, as glibc does."""
    try:
        os.execv(path, argv)
    except OSError as err:
        if err.errno != errno.ENOEXEC:
            raise
    os.execv(_BSHELL, [_BSHELL, path, *argv[1:]])


def sent_by_another(info: signal.struct_siginfo) -> bool:
    """Whether another process sent this signal (kill, sigqueue, tgkill).

    The kernel raises SIGPIPE and SIGXFSZ in a writer with si_code SI_USER and the
    writer's own pid, so a SIGPIPE from our own write to a closed stderr is ours, not
    CMD's. A sender outside our PID namespace shows as pid 0 and is another process.
    """
    return info.si_code in (_SI_USER, _SI_QUEUE, _SI_TKILL) and info.si_pid != os.getpid()


class Init:
    """The reap-and-forward loop around one main child."""

    def __init__(
        self, main_pid: int, name: str, group: bool, verbose: bool, outlive_main: bool = False
    ) -> None:
        self.main_pid = main_pid
        # --kill/--wait-descendants: after CMD, signals go to the children that are left.
        self.outlive_main = outlive_main
        self.name = name
        self.group = group
        self.verbose = verbose
        self.main_status: int | None = None
        self.no_children = False
        self.reaped = 0

    def drain(self) -> None:
        """Reap every child that has exited, until none is left to reap right now."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.no_children = True
                return
            if pid == 0:
                return
            if pid == self.main_pid:
                self.main_status = status
                if self.verbose:
                    _log(f"pid {pid} ({self.name}) {describe_status(status)}")
            else:
                self.reaped += 1
                if self.verbose:
                    _log(f"reaped orphan {pid}, which {describe_status(status)}")

    def forward(self, sig: int) -> None:
        if self.main_status is None:
            target = -self.main_pid if self.group else self.main_pid
            try:
                os.kill(target, sig)
            except (ProcessLookupError, PermissionError):
                pass
            return
        # CMD is gone (only with --wait-descendants/--kill-descendants): pass the signal
        # to the children that are left, so `docker stop` still reaches them.
        for pid in _live_children():
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass

    def handle(self, info: signal.struct_siginfo | None) -> None:
        # Drain on every wake-up, whatever woke us: SIGCHLDs coalesce. Draining first
        # also tells whether CMD is already dead, so that a signal arriving between its
        # death and its reaping goes to what is left rather than to a zombie.
        self.drain()
        if info is None or info.si_signo == signal.SIGCHLD:
            return
        if self.main_status is not None and not self.outlive_main:
            return  # CMD is gone and we are about to leave
        if info.si_signo in _FORWARDED_IF_SENT and not sent_by_another(info):
            return  # raised by our own write (a closed stderr, a file size limit)
        if self.verbose:
            _log(f"forwarding {_signame(info.si_signo)}")
        self.forward(info.si_signo)


def _signame(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def _live_children() -> list[int]:
    from zombiectl.proc.table import children_of

    try:
        return [p.pid for p in children_of(os.getpid()) if not p.is_zombie]
    except ZombiectlError:
        return []


def _live_descendants() -> list[int]:
    from zombiectl.proc.table import descendants_of

    try:
        return [p.pid for p in descendants_of(os.getpid()) if not p.is_zombie]
    except ZombiectlError:
        return []


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _wait_signal(
    caught: set[signal.Signals], timeout: float | None
) -> signal.struct_siginfo | None:
    if timeout is None:
        return signal.sigwaitinfo(caught)
    return signal.sigtimedwait(caught, max(timeout, 0.0))


def _kill_descendants(init: Init, caught: set[signal.Signals], grace: float) -> None:
    import time

    left = _live_descendants()
    if not left:
        return
    if init.verbose:
        _log(f"sending SIGTERM to {len(left)} descendant(s) still running")
    _signal_all(left, signal.SIGTERM)
    deadline = time.monotonic() + grace
    init.drain()
    while not init.no_children:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        init.handle(_wait_signal(caught, remaining))
    # Whatever ignored SIGTERM dies now. Repeat: a process may fork between our scan and
    # the signal, and its child is adopted by us once its parent dies.
    # A process SIGKILLed a moment ago may still be exiting (not yet a zombie): killing
    # it again is harmless, logging it again is noise.
    logged: set[int] = set()
    while not init.no_children:
        left = _live_descendants()
        if left:
            new = [pid for pid in left if pid not in logged]
            if init.verbose and new:
                _log(f"sending SIGKILL to {len(new)} descendant(s) after {grace:g} s")
            logged.update(new)
            _signal_all(left, signal.SIGKILL)
        init.handle(_wait_signal(caught, 1.0))


def _wait_descendants(init: Init, caught: set[signal.Signals]) -> None:
    init.drain()
    if not init.no_children and init.verbose:
        _log(f"waiting for {len(_live_descendants())} descendant(s) still running")
    while not init.no_children:
        init.handle(_wait_signal(caught, None))


def run(
    argv: list[str],
    group: bool = False,
    on_exit: str = LEAVE,
    grace: float = DEFAULT_GRACE,
    verbose: bool = False,
) -> int:
    """Run argv under the init; return the exit code to leave with (CMD's).

    Meant to be the process's last act: the signals it takes stay blocked on return.
    """
    if not argv:
        raise BadUsage("missing CMD: zombiectl run [OPTIONS] -- CMD [ARG...]")
    is_pid1 = os.getpid() == 1
    if not sys.platform.startswith("linux") and not is_pid1:
        raise NotSupported("run needs Linux (a child subreaper), or to be PID 1")
    caught = caught_signals()
    # Block first: a signal sent while CMD starts stays pending and is forwarded after.
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, caught)
    signal.signal(signal.SIGTTIN, signal.SIG_IGN)
    signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    tty: int | None = None
    try:
        if not is_pid1 and not set_child_subreaper():
            raise NotSupported("cannot become a child subreaper (prctl failed)")
        tty = _foreground_tty()
        pid = spawn(argv, old_mask, tty)
        init = Init(pid, os.path.basename(argv[0]), group, verbose, on_exit != LEAVE)
        if verbose:
            _log(f"started {argv[0]} as pid {pid}")
        while init.main_status is None:
            init.handle(_wait_signal(caught, None))
        if on_exit == KILL:
            _kill_descendants(init, caught, grace)
        elif on_exit == WAIT:
            _wait_descendants(init, caught)
        elif verbose:
            left = _live_descendants()
            if left and is_pid1:
                _log(
                    f"{len(left)} descendant(s) still running; the kernel kills them as PID 1 exits"
                )
            elif left:
                _log(f"leaving {len(left)} descendant(s) running to the next reaper up")
        return exit_code_of(init.main_status)
    finally:
        if tty is not None:
            try:
                os.tcsetpgrp(tty, os.getpgrp())
            except OSError:
                pass
        # The signals stay blocked: run() is the process's last act, and unblocking them
        # would let a late SIGTERM or SIGHUP (meant for CMD) kill us now and replace
        # CMD's status with 128+N. Pending ones die with the process.


# `run`'s options, declared once: the click command and the fast path both read them.
OPTIONS = (
    Option("--group", help="Forward signals to CMD's process group rather than to CMD alone."),
    Option(
        "--kill-descendants",
        help="When CMD exits, SIGTERM the descendants still running, then SIGKILL after --grace.",
    ),
    Option(
        "--wait-descendants",
        help="When CMD exits, wait for the descendants still running (and forward signals to them).",
    ),
    Option(
        "--grace",
        kind="seconds",
        bounds=(0.0, GRACE_MAX),
        default=DEFAULT_GRACE,
        metavar="S",
        help="Seconds between SIGTERM and SIGKILL for --kill-descendants.",
    ),
    Option("--verbose", "-v", help="Log each reap and each forwarded signal to stderr."),
)


def run_command(
    *,
    group: bool,
    kill_descendants: bool,
    wait_descendants: bool,
    grace: float,
    verbose: bool,
    cmd: tuple[str, ...],
) -> int:
    """Run `zombiectl run` with the parameters `OPTIONS` and CMD give; CMD's status."""
    if kill_descendants and wait_descendants:
        raise BadUsage("--kill-descendants and --wait-descendants cannot be used together")
    on_exit = KILL if kill_descendants else WAIT if wait_descendants else LEAVE
    return run(list(cmd), group=group, on_exit=on_exit, grace=grace, verbose=verbose)
