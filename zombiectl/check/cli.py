"""`zombiectl check`: run a program under observation (or watch a pid) and grade its zombies.

$ zombiectl check --tcp 9000 --clients 100 -- ./leaky_server 9000 | tail -4
leaking parents:
  pid 301442 leaky_server: 100 zombie(s)  ./leaky_server 9000
verdict: fail
  after 100 connections the tree holds 100 zombie(s) at the end (at most 0 allowed): leaky_server (pid 301442) holds 100
"""

from __future__ import annotations

import errno
import os
import signal
import sys

import click

from zombiectl import validate
from zombiectl.check.session import Check, CheckOptions, View
from zombiectl.check.verdict import ERROR, PASS, Limits, Report, could_not_check
from zombiectl.demo.server.clients import EXPECTATIONS, MAX_CONCURRENCY
from zombiectl.errors import (
    EXIT_CONDITION,
    EXIT_ENVIRONMENT,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    BadUsage,
    PermissionDenied,
    ResourceLimit,
)
from zombiectl.errors import report as say
from zombiectl.stdout import write
from zombiectl.supervise.spawn import Credentials
from zombiectl.ui.console import draws_plain
from zombiectl.ui.options import PID, Count, Seconds, console_for_stdout

MAX_CLIENTS = 1_000_000
MAX_ZOMBIES = 4 * 1024 * 1024
# Hidden switch for tests and benchmarks: sample even where kernel events are available.
SAMPLED_ENV = "ZOMBIECTL_CHECK_SAMPLED"


@click.command(
    "check",
    context_settings={"allow_interspersed_args": False},
    epilog="""\b
Examples:
  zombiectl check -- ./script.sh                  does it leave zombies when it exits?
  zombiectl check --tcp 9000 --clients 100 -- ./server 9000
                                                  100 real clients, then count the zombies
  zombiectl check --tcp 9000 --junit-xml zombies.xml -- ./server 9000     (CI)
  zombiectl check --tcp 9000 --name alice --junit-xml alice.xml \\
      --gradescope results.json -- ./server 9000  a class: named reports, scores
  zombiectl check --pid 4242 --duration 10       watch a running process for 10 s
  zombiectl check --json -- python3 app.py        the report as one JSON object

\b
Exit status: 0 pass, 1 fail, 2 usage, 3 no such --pid, 6 could not be carried out
(the port already in use by another program, zombiectl's own resource limits),
127 CMD not found, 126 CMD cannot run, 130/143 interrupted by SIGINT/SIGTERM.
Counts are exact where the kernel's process events are open to us (Linux; root on
older kernels), else sampled every --sample.
""",
)
@click.option("--pid", type=PID, default=None, help="Check a running process and its descendants.")
@click.option(
    "--tcp",
    "port",
    type=Count(1, 65535),
    default=None,
    metavar="PORT",
    help="A server: wait until the tree listens on PORT, then drive clients.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Where the clients connect.")
@click.option(
    "--clients",
    type=Count(0, MAX_CLIENTS),
    default=20,
    show_default=True,
    help=f"TCP connections to make (at most {MAX_CLIENTS}).",
)
@click.option(
    "--concurrency",
    type=Count(1, MAX_CONCURRENCY),
    default=8,
    show_default=True,
    metavar="C",
    help=f"Connections at once (at most {MAX_CONCURRENCY}).",
)
@click.option(
    "--payload",
    default=None,
    metavar="TEXT",
    help="What each client sends ({n}: its number). Default: a line with its number.",
)
@click.option(
    "--expect",
    type=click.Choice(EXPECTATIONS),
    default="echo",
    show_default=True,
    help="echo: the same bytes back; any: one byte or more; none: only the connection.",
)
@click.option(
    "--client-timeout",
    type=Seconds(0.001, 3600),
    default=5.0,
    show_default=True,
    help="Seconds for each client's whole exchange: connect, send, reply (at most 3600).",
)
@click.option(
    "--ready-timeout",
    type=Seconds(0.0, 3600),
    default=10.0,
    show_default=True,
    help="Seconds to wait for the server to listen (at most 3600).",
)
@click.option(
    "--settle",
    type=Seconds(0.0, 3600),
    default=1.0,
    show_default=True,
    help="Seconds after the clients before zombies are counted (at most 3600).",
)
@click.option(
    "--grace",
    type=Seconds(0.0, 3600),
    default=2.0,
    show_default=True,
    help="Seconds between SIGTERM and SIGKILL when the check ends CMD (at most 3600).",
)
@click.option(
    "--duration",
    type=Seconds(0.0, validate.DAY),
    default=None,
    help="Count at this deadline, even after CMD exits (the daemons it left are still"
    " watched), then end the tree (required with --pid; not with --tcp; at most 86400).",
)
@click.option(
    "--timeout",
    type=Seconds(0.001, 2 * validate.DAY),
    default=None,
    help="Seconds the whole check may take; past it the tree is ended and the check"
    " fails with reason timeout (default 300, or --duration + 60 when larger).",
)
@click.option(
    "--settle-max",
    type=Seconds(0.0, 3600),
    default=10.0,
    show_default=True,
    help="With --tcp: seconds to wait for the children made during the clients to exit"
    " before --settle (at most 3600).",
)
@click.option(
    "--user",
    default=None,
    metavar="USER",
    help="Run CMD as USER and USER's group, with no supplementary groups (as root).",
)
@click.option(
    "--stdin",
    "stdin_mode",
    type=click.Choice(["null", "inherit"]),
    default="null",
    show_default=True,
    help="CMD's standard input: /dev/null, or zombiectl's own.",
)
@click.option(
    "--output-limit",
    type=Count(0, 1 << 30),
    default=1024 * 1024,
    show_default=True,
    metavar="BYTES",
    help="Bytes of each of CMD's output streams passed through and kept for the reports"
    " (the head and the tail; what is cut is said).",
)
@click.option(
    "--max-zombies",
    type=Count(0, MAX_ZOMBIES),
    default=0,
    show_default=True,
    help="Fail when more zombies than this are left at the end.",
)
@click.option(
    "--max-zombie-age",
    type=Seconds(0.0, validate.DAY),
    default=None,
    help="Fail when a zombie lived longer than this (default: off; at most 86400).",
)
@click.option(
    "--require-exit-zero", is_flag=True, help="Fail when CMD exits with a non-zero status."
)
@click.option(
    "--sample",
    type=Seconds(0.01, 60),
    default=0.1,
    show_default=True,
    help="Seconds between samples where kernel events are unavailable (0.01 to 60).",
)
@click.option("--sampled", is_flag=True, hidden=True, envvar=SAMPLED_ENV)
@click.option("--json", "as_json", is_flag=True, help="The report as one JSON object on stdout.")
@click.option(
    "--junit-xml",
    "junit",
    default=None,
    metavar="PATH",
    help="Also write the report as JUnit XML (one testcase per criterion).",
)
# Grading and its presentation.
@click.option(
    "--half-close",
    is_flag=True,
    help="Clients send EOF right after the payload (for servers that read until EOF).",
)
@click.option(
    "--name",
    default=None,
    metavar="NAME",
    help="Name the report (JUnit suite and class names, JSON name): a student, a team.",
)
@click.option(
    "--gradescope",
    "gradescope_path",
    default=None,
    metavar="PATH",
    help="Also write Gradescope's results.json (one test per criterion).",
)
@click.argument("cmd", nargs=-1, metavar="-- CMD [ARG]...")
def command(
    pid: int | None,
    port: int | None,
    host: str,
    clients: int,
    concurrency: int,
    payload: str | None,
    expect: str,
    client_timeout: float,
    ready_timeout: float,
    settle: float,
    grace: float,
    duration: float | None,
    timeout: float | None,
    settle_max: float,
    user: str | None,
    stdin_mode: str,
    output_limit: int,
    max_zombies: int,
    max_zombie_age: float | None,
    require_exit_zero: bool,
    sample: float,
    sampled: bool,
    as_json: bool,
    junit: str | None,
    half_close: bool,
    name: str | None,
    gradescope_path: str | None,
    cmd: tuple[str, ...],
) -> int:
    """Run CMD under observation (or check --pid P) and grade its zombie hygiene.

    Pass unless: more zombies than --max-zombies are left at the end; a zombie was
    never reaped by its parent; a zombie lived longer than --max-zombie-age; a reply
    failed; the server never listened; CMD crashed. Error (exit 6) when the check could
    not be carried out for a reason outside the program.
    """
    if (pid is None) == (not cmd):
        raise BadUsage("give either -- CMD or --pid P")
    if pid is not None and port is None and duration is None:
        raise BadUsage("--pid needs --duration (or --tcp)")
    if port is not None and duration is not None:
        raise BadUsage("--duration cannot be used with --tcp")
    if timeout is not None and duration is not None and timeout < duration:
        raise BadUsage(f"--timeout {timeout:g} is shorter than --duration {duration:g}")
    if user is not None and pid is not None:
        raise BadUsage("--user applies to -- CMD, not to --pid")
    creds = _credentials(user) if user is not None else None
    opts = CheckOptions(
        argv=list(cmd) if cmd else None,
        pid=pid,
        tcp=port,
        host=host,
        clients=clients,
        concurrency=concurrency,
        # fsencode: the bytes given on the command line, UTF-8 or not.
        payload=os.fsencode(payload) if payload is not None else None,
        expect=expect,
        client_timeout=client_timeout,
        half_close=half_close,
        ready_timeout=ready_timeout,
        settle=settle,
        grace=grace,
        duration=duration,
        timeout=timeout,
        settle_max=settle_max,
        user=creds,
        stdin_inherit=stdin_mode == "inherit",
        output_limit=output_limit,
        sample=sample,
        sampled=sampled,
        stdout=2 if as_json else None,
        limits=Limits(max_zombies, max_zombie_age, require_exit_zero),
    )
    name = _checked_name(name)
    # Opened first: a path that cannot be written is an error before the check, not after.
    outputs: dict[str, int] = {}
    try:
        if junit is not None:
            outputs["--junit-xml"] = _open_output("--junit-xml", junit)
        if gradescope_path is not None:
            outputs["--gradescope"] = _open_output("--gradescope", gradescope_path)
        if cmd and creds is None and os.geteuid() == 0:
            say("zombiectl: warning: CMD runs as root; --user USER runs it as USER")
        report = _run(opts, as_json, name)
        _write_outputs(outputs, report, name)
    finally:
        for fd in outputs.values():
            os.close(fd)
    return _exit_code(report)


MAX_NAME = 256


def _checked_name(name: str | None) -> str | None:
    if name is None:
        return None
    if not name.strip() or len(name) > MAX_NAME:
        raise BadUsage(f"--name: give 1 to {MAX_NAME} characters")
    return name


def _run(opts: CheckOptions, as_json: bool, name: str | None) -> Report:
    from zombiectl.check.render import LiveView, PlainView, json_text, panel, plain_text

    # rich only to draw: not for JSON, nor for lines into a pipe.
    console = None if as_json or draws_plain() else console_for_stdout()
    if console is not None and console.is_terminal:
        view = LiveView(console)
        with view:
            report = _checked(opts, view)
        console.print(panel(report, name))
        return report
    report = _checked(opts, PlainView(_stderr_write if as_json else write))
    write(json_text(report, name) + "\n" if as_json else plain_text(report, name))
    return report


def _credentials(user: str) -> Credentials:
    """USER (a name, or a number) as uid and gid; only root may run CMD as another user."""
    import pwd

    if os.geteuid() != 0:
        raise PermissionDenied("--user needs root (zombiectl runs as another user now)")
    try:
        entry = pwd.getpwuid(int(user)) if user.isascii() and user.isdigit() else pwd.getpwnam(user)
    except (KeyError, ValueError, OverflowError):
        raise BadUsage(f"--user: no such user: {user}") from None
    return Credentials(entry.pw_name, entry.pw_uid, entry.pw_gid)


# errno values that say zombiectl itself ran out of something, not the program under test.
RESOURCE_ERRNOS = (errno.EAGAIN, errno.ENOMEM, errno.EMFILE, errno.ENFILE)


def _checked(opts: CheckOptions, view: View) -> Report:
    """The check's report; zombiectl's own resource limits become verdict error."""
    try:
        with Check(opts, view) as check:
            return check.run()
    except ResourceLimit as err:
        why = f"zombiectl ran out of a resource: {err}"
    except OSError as err:
        if err.errno not in RESOURCE_ERRNOS:
            raise
        why = f"zombiectl ran out of a resource: {err.strerror or err}"
    say(f"zombiectl: error: {why}")
    return could_not_check(list(opts.argv or []), why, opts.tcp, opts.limits)


def _stderr_write(text: str) -> None:
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except OSError:
        pass


def _open_output(option: str, path: str) -> int:
    """Create PATH (not truncated yet), reached without another user's symbolic links,
    and only a regular file of the caller's with no other hard link."""
    from zombiectl.safepath import create_file

    return create_file(path, what=option)


def _write_outputs(outputs: dict[str, int], report: Report, name: str | None) -> None:
    from zombiectl.check.render import gradescope_text, junit_xml

    for option, fd in outputs.items():
        if option == "--junit-xml":
            data = junit_xml(report, name)
        else:
            data = gradescope_text(report, name).encode()
        os.ftruncate(fd, 0)
        while data:
            data = data[os.write(fd, data) :]


def _exit_code(report: Report) -> int:
    f = report.facts
    if f.interrupted_by == signal.SIGINT:
        return EXIT_INTERRUPTED
    if f.interrupted_by == signal.SIGTERM:
        return EXIT_TERMINATED
    if f.not_started and f.exit_status is not None:
        return f.exit_status
    if report.verdict == ERROR:
        return EXIT_ENVIRONMENT
    return EXIT_OK if report.verdict == PASS else EXIT_CONDITION
