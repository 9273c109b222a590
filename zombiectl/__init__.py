"""zombiectl: make zombie processes visible, explain them, and clear them safely.

One folder per command, each holding its click command (`cli.py`, whose `command` is
registered by one line in `cli.COMMANDS`), its logic and its rendering:

    command  folder     logic                               rendering
    list     listing/   zombies.py, textfile.py             render_table.py (rich),
                                                            render_plain.py (piped),
                                                            render_text.py (JSON, Prometheus)
    watch    watching/  tracker.py                          lines.py (plain, JSON),
                                                            render.py (rich)
    demo     demo/      model.py, runner.py, strategies/,   render.py, render_quiz.py
                        server/, quiz.py, cbuild.py, ...
    explain  explain/   model.py                            render.py
    reap     reaping/   ladder.py                           render.py
    run      init/      reaper.py (stdlib only)             (its --verbose log lines)
    doctor   doctor/    probes.py, containers.py            render.py, render_containers.py
    check    check/     session.py, output.py, verdict.py,  render.py
                        listening.py

`list` and `run` also keep their command's body without click (`listing/output.py`,
`init/reaper.py`), which the fast path calls too.

Adding a command, `zombiectl top` say, is one new folder (`top/cli.py` and what it
needs) and one line in `cli.COMMANDS`.

Below the commands, shared by them:

    proc/       the platform layer, psutil-style: the reader of kernel files and the
                /proc paths (`files`; the scan keeps its own hot loop), the records of
                a process (`records`), the process table
                (`table`, with psutil where there is no /proc), identity and pidfd
                signalling (`identity`), a process pinned by pidfd (`pidfd`), a
                zombie's age (`age`), pid limits (`limits`), sockets (`net`), prctl
                (`prctl`) and namespaces with setns (`ns`), both through `libc`, the
                one ctypes caller; containers and kernel process events
    supervise/  the one supervisor of a tree of processes (`check`, every `demo`):
                spawn, subreaper, observer, guard, deadlines, kill-and-collect
    ui/         what commands draw with: consoles, untrusted text as rich renderables,
                shared table cells, the option declarations (`spec`) and click types

A command's logic returns data; its cli.py and renderers write it, every stdout write
through stdout.py (a reader that leaves means exit 141) or a console from ui/console.py.
errors.py holds the exit codes (docs/reference.md) and `report`, the one writer of
error lines; untrusted.py turns text from /proc into text for a screen; validate.py
checks every number from the command line; main.py is the entry point. fastpath.py
parses `--version`, `run` and `list` without importing click, from the same option
declarations as their click commands. testing/ is the pytest plugin.
"""

__version__ = "0.2.0"
