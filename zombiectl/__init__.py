"""zombiectl: make zombie processes visible, explain them, and clear them safely.

Where each command lives (the click command is always `commands/<name>.py`):

    command   logic                             rendering                process handling
    list      listing/zombies.py, textfile.py   render/tables.py, text.py    proc/table.py, containers.py
    watch     watching/tracker.py, limits.py    render/watch.py              proc/table.py
    demo      demo/runner.py, strategies/,      render/demo.py, quiz.py      demo/labproc.py, cbuild.py,
              server/, quiz.py                                               proc/prctl.py
    explain   demo/explain.py                   render/explain.py            -
    reap      reaping/ladder.py                 render/reap.py               proc/identity.py (pidfds)
    run       init/reaper.py (stdlib only)      (stderr lines only)          proc/prctl.py
    doctor    doctor/probes.py, containers.py   render/doctor.py, containers.py  proc/containers.py
    check     check/session.py, verdict.py,     render/check.py              proc/events.py, demo/server/
              observer.py, tree.py

Layers, each importing only from those above it:

    proc/       the platform: /proc reads (one stat parser), identity, pidfds, prctl
    <family>/   logic per command family; returns data, never prints
    render/     turns that data into rich tables, plain text, JSON or Prometheus text
    commands/   thin click commands: read options, call logic, hand the result to render/

Shared by all: errors.py (exit codes, see docs/reference.md), untrusted.py (text from
/proc on its way to a screen), validate.py (every number from the command line),
stdout.py (writing when the reader may leave), cli.py (the click root) and main.py (the
entry point, with the click-free fast paths for `--version`, `run` and `list`'s
machine-readable forms). testing/ is the pytest plugin, a user of the layers above.
"""

__version__ = "0.1.0"
