"""`zombiectl doctor`: does this machine or container reap orphans?

$ zombiectl doctor
CHECK            FINDING
orphans    warn  adopted by PID 1 (process_api) and reaped after 1.6 s: PID 1 reaps, but
                 slowly (it polls rather than waiting for SIGCHLD)
pid1       warn  PID 1 is process_api; it does not listen for SIGCHLD: it can reap only by
                 polling wait(); it reaped the probe's orphan
container  info  a container (docker), in the host's PID namespace: /.dockerenv exists
pidfd      ok    pidfd_open works: a signal can be sent without risk of pid reuse
proc       ok    /proc hidepid: every process is visible
ptrace     info  no Yama: ordinary ptrace permission checks
pids       ok    144 pids in use (125 processes, the rest threads) of pid_max 4194304;
                 RLIMIT_NPROC not enforced (root); tightest: 144 of 192730 (threads-max,
                 0%); zombies hold 25
zombies    warn  25 zombie(s) now; biggest leakers: python3 (93442): 20, parent (305642): 5

Advice
- orphans:  orphans stay zombies between its polls, and a fast forker can fill the pid
            table; for prompt reaping use `zombiectl run --` (or tini, dumb-init) as the
            entry point, or your runtime's init option (`docker run --init`)
- zombies:  `zombiectl reap --pid 93442 --pid 305642` nudges the leakers with SIGCHLD,
            after a plan; `zombiectl list` shows who leaks
$ echo $?
0

Under a reaping init the same probe reads:

$ zombiectl run -- zombiectl doctor
CHECK            FINDING
orphans    ok    adopted by pid 306105 (zombiectl), a child subreaper, and reaped after 1 ms
"""

from __future__ import annotations

import json
import sys

import click

from zombiectl.doctor.probes import DEFAULT_TIMEOUT, diagnose
from zombiectl.errors import BadUsage, NotSupported
from zombiectl.stdout import write
from zombiectl.ui.options import Seconds, console_for_stdout


@click.command(
    "doctor",
    epilog="""\b
Examples:
  zombiectl doctor                        is anyone reaping orphans here, and how fast?
  zombiectl doctor --json                 the same findings as one JSON object
  zombiectl doctor --containers           does each container's PID 1 reap orphans?
  zombiectl doctor --containers --probe   ... by handing each one an orphan (root)
  zombiectl doctor --containers --probe --container web
                                          only the container with id web
  zombiectl run -- zombiectl doctor       what it looks like under a reaping init
  HEALTHCHECK CMD zombiectl doctor        in a Dockerfile: unhealthy when PID 1 does not reap
\b
Exit: 0 nothing bad (warnings included), 1 a finding is bad: orphans not reaped within
--timeout, a PID 1 that does not reap, or pids in use above 90% of the tightest limit.
""",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object: probes and findings.")
@click.option(
    "--timeout",
    type=Seconds(0.05, 600),
    default=None,
    metavar="S",
    help=f"How long to wait for the probe's orphan to be reaped [default: {DEFAULT_TIMEOUT:g}]; "
    "with --containers, the time between the two looks at each PID 1 [default: 2].",
)
@click.option("--no-probe", is_flag=True, help="Skip the orphan probe (it makes one process).")
@click.option(
    "--containers",
    "containers",
    is_flag=True,
    help="Audit every container's PID 1 instead: does it reap? Exit 1 when one does not.",
)
@click.option(
    "--probe",
    "probing",
    is_flag=True,
    help="With --containers (root): hand each container's PID 1 one orphan and time its "
    "reaping: reaps, slow (after 1 s) or never. Against a PID 1 that never reaps, the "
    "orphan stays a zombie until the container stops.",
)
@click.option(
    "--container",
    "only",
    multiple=True,
    metavar="ID",
    help="With --containers: audit (and probe) only the container with this id (repeatable).",
)
@click.option(
    "--textfile",
    metavar="PATH",
    default=None,
    help="With --containers: also write zombiectl_container_init_reaps to PATH (a *.prom "
    "file) atomically, for node_exporter's textfile collector.",
)
def command(
    as_json: bool,
    timeout: float | None,
    no_probe: bool,
    containers: bool,
    probing: bool,
    only: tuple[str, ...],
    textfile: str | None,
) -> int:
    """Does this machine or container reap orphans? Probes and advice.

    Makes one real orphan and times how long its adopter (PID 1 or the nearest child
    subreaper) takes to reap it; then looks at PID 1, the container and PID namespace,
    pidfd support, /proc hidepid, ptrace scope, pids in use against their limits, and
    the zombies present now. Each finding comes with advice.
    """
    if not sys.platform.startswith("linux"):
        raise NotSupported("doctor reads /proc: it needs Linux")
    if textfile is not None and not containers:
        raise BadUsage("--textfile goes with --containers (the plain doctor writes no metrics)")
    if only and not containers:
        raise BadUsage("--container goes with --containers")
    if probing and not containers:
        raise BadUsage("--probe goes with --containers (the plain doctor probes by default)")
    if containers:
        return containers_command(as_json, timeout, textfile, probing, only)
    report = diagnose(timeout=DEFAULT_TIMEOUT if timeout is None else timeout, probe=not no_probe)
    if as_json:
        write(json.dumps(report.as_dict(), indent=2) + "\n")
    else:
        from zombiectl.doctor.render import render

        console_for_stdout().print(render(report))
    return report.exit_code()


def containers_command(
    as_json: bool,
    timeout: float | None,
    textfile: str | None,
    probing: bool = False,
    only: tuple[str, ...] = (),
) -> int:
    import os

    from zombiectl.doctor.containers import (
        DEFAULT_CONTAINERS_TIMEOUT,
        audit_containers,
        containers_named,
    )
    from zombiectl.errors import EXIT_CONDITION, PermissionDenied

    if probing and os.geteuid() != 0:
        raise PermissionDenied("--probe enters each container's namespaces: it needs root")
    if textfile is not None:
        from zombiectl.listing.textfile import check_textfile

        check_textfile(textfile)  # before the looks: a typo should cost nothing
    report = audit_containers(
        DEFAULT_CONTAINERS_TIMEOUT if timeout is None else timeout,
        find=containers_named(only),
        probing=probing,
    )
    if textfile is not None:
        from zombiectl.listing.textfile import write_atomically

        write_atomically(textfile, report.prometheus().encode("utf-8"))
    if as_json:
        write(json.dumps(report.as_dict(), indent=2) + "\n")
    else:
        from zombiectl.doctor.render_containers import containers_view

        console_for_stdout().print(containers_view(report))
    return EXIT_CONDITION if report.bad else 0
