"""zombiectl: make zombie processes visible, explain them, and clear them safely.

Where each command lives (its click command is always `commands/<name>.py`):

    command  logic                            rendering                     process handling
    list     listing/zombies.py, output.py,   render/tables.py (rich),      proc/table.py,
             textfile.py                      plain.py (piped), text.py     proc/containers.py
    watch    watching/tracker.py, limits.py   render/watch.py               proc/table.py
    demo     demo/model.py, runner.py,        render/demo.py, quiz.py       supervise/,
             strategies/, server/, quiz.py                                  demo/labproc.py, cbuild.py
    explain  demo/explain.py                  render/explain.py             -
    reap     reaping/ladder.py                render/reap.py                proc/identity.py
    run      init/reaper.py (stdlib only)     (its --verbose log lines)     proc/prctl.py
    doctor   doctor/probes.py, containers.py  render/doctor.py, containers  proc/containers.py
    check    check/session.py, output.py,     render/check.py               supervise/,
             verdict.py                                                     proc/events.py

Layers, each importing only from those above it:

    proc/       the platform: /proc reads (`table.Stat`, the one stat parser), process
                identity and pidfd signalling, prctl, containers, kernel process events
    supervise/  the one supervisor of a tree of processes (`check`, `demo`): spawn,
                subreaper, observer, guard, deadlines, kill-and-collect
    <family>/   each command family's logic: it returns data and never prints
    render/     that data as rich tables and live views, plain text, JSON or Prometheus
    commands/   thin click commands: read the options, call the logic, hand it to render/

Shared by all: errors.py (exit codes, docs/reference.md; `report`, the one writer of
error lines), stdout.py (the one stdout writer: a reader that leaves means exit 141),
untrusted.py (text from /proc on its way to a screen), validate.py (every number from
the command line), cli.py (the click root) and main.py (the entry point). fastpath.py
parses `--version`, `run` and `list` without click and calls the same functions as the
click commands (`init.reaper.run_command`, `listing.output.list_command`). testing/ is
the pytest plugin, a user of the layers above.
"""

__version__ = "0.2.0"
