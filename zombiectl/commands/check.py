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
import stat
import sys

import click

from zombiectl import validate
from zombiectl.check.session import Check, CheckOptions, View
from zombiectl.check.verdict import ERROR, PASS, Limits, Report, could_not_check
from zombiectl.commands.common import PID, Count, Seconds, console_for_stdout
from zombiectl.demo.server.clients import EXPECTATIONS, MAX_CONCURRENCY
from zombiectl.errors import (
    EXIT_CONDITION,
    EXIT_ENVIRONMENT,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    BadUsage,
    PermissionDenied,
)
from zombiectl.stdout import write

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
    help="Count at this deadline, then end CMD (required with --pid without --tcp; at most 86400).",
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
        sample=sample,
        sampled=sampled,
        stdout=2 if as_json else None,
        limits=Limits(max_zombies, max_zombie_age, require_exit_zero),
    )
    name = _checked_name(name)
    # Opened first: a path that cannot be written is an error before the check, not after.
    outputs = {}
    try:
        if junit is not None:
            outputs["--junit-xml"] = _open_output("--junit-xml", junit)
        if gradescope_path is not None:
            outputs["--gradescope"] = _open_output("--gradescope", gradescope_path)
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
    from zombiectl.render.check import LiveView, PlainView, json_text, panel, plain_text

    console = console_for_stdout()
    if console.is_terminal and not as_json:
        view = LiveView(console)
        with view:
            report = _checked(opts, view)
        console.print(panel(report, name))
        return report
    report = _checked(opts, PlainView(_stderr_write if as_json else write))
    write(json_text(report, name) + "\n" if as_json else plain_text(report, name))
    return report


# errno values that say zombiectl itself ran out of something, not the program under test.
RESOURCE_ERRNOS = (errno.EAGAIN, errno.ENOMEM, errno.EMFILE, errno.ENFILE, errno.ENOSPC)


def _checked(opts: CheckOptions, view: View) -> Report:
    """The check's report; zombiectl's own resource limits become verdict error."""
    try:
        with Check(opts, view) as check:
            return check.run()
    except OSError as err:
        if err.errno not in RESOURCE_ERRNOS:
            raise
        why = f"zombiectl ran out of a resource: {err.strerror or err}"
        view.phase(why)
        return could_not_check(list(opts.argv or []), why, opts.tcp, opts.limits)


def _stderr_write(text: str) -> None:
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except OSError:
        pass


def _open_output(option: str, path: str) -> int:
    """Create or truncate PATH, never through a symlink, and only if it is a regular file."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as err:
        if err.errno in (errno.EACCES, errno.EPERM):
            raise PermissionDenied(f"{option} {path}: {err.strerror}") from None
        raise BadUsage(f"{option} {path}: {err.strerror}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise BadUsage(f"{option} {path}: not a regular file")
    # Another user's file (its owner could rewrite the verdict afterwards) or a second
    # name of some other file (a hard link planted beside the report): never written.
    if st.st_uid != os.geteuid() or st.st_nlink > 1:
        os.close(fd)
        why = "owned by another user" if st.st_uid != os.geteuid() else "has other hard links"
        raise PermissionDenied(f"{option} {path}: {why}; remove it or name another path")
    return fd


def _write_outputs(outputs: dict[str, int], report: Report, name: str | None) -> None:
    from zombiectl.render.check import gradescope_text, junit_xml

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
