"""`zombiectl demo STRATEGY`: make zombies happen live, with real code, then clean up.

$ zombiectl demo interleaved --gap 0 | cat
interleaved: a few starts with a gap between them; --gap 0: back to back (count 3, lifetime 0.2 s, gap 0; start method fork (default))
t= 0.00s  alive   0  zombies   0  reaped   0
t= 0.10s  alive   0  zombies   3  reaped   0  ZZZ
✓ interleaved (fork): expected 3, observed 3; max 3, 3 children, leftover 0
  no gap: at each start() the earlier children were still running, so none was reaped

Each strategy is a click subcommand built from its registry entry, so a strategy's own
options (`demo server --reap sigchld`) appear in its `--help` only.
"""

from __future__ import annotations

import errno
import sys
from typing import TYPE_CHECKING, Any

import click

from zombiectl.demo.strategies import registry
from zombiectl.demo.strategies.registry import COUNT_MAX, START_METHODS, Option, Strategy
from zombiectl.errors import (
    EXIT_CONDITION,
    EXIT_INTERRUPTED,
    BadUsage,
    Interrupted,
    NotSupported,
    ResourceLimit,
    ZombiectlError,
)
from zombiectl.stdout import write
from zombiectl.ui.options import Count, Seconds, console_for_stdout

if TYPE_CHECKING:  # imported when a lab runs: `demo --list` and --help need neither
    from zombiectl.demo.model import LabSpec, Summary
    from zombiectl.demo.render import Printer

SAMPLE_MIN = 0.02
TIME_MAX = 86400.0

# `demo all`: the post's five experiments, the forkserver case and one remedy.
# Each row: label, strategy, parameters, start method, what the post saw.
ALL_ROWS: list[tuple[str, str, dict[str, Any], str | None, str]] = [
    (
        "S1",
        "c",
        {"count": 5, "interval": 0.3, "lifetime": 0.2},
        None,
        "zombies pile up, one more per fork",
    ),
    (
        "S2",
        "mp",
        {"count": 5, "interval": 0.5, "lifetime": 0.1},
        "fork",
        "only one zombie at any time",
    ),
    ("S3", "mp-single", {"lifetime": 0.2}, "fork", "one zombie stays"),
    (
        "S4",
        "interleaved",
        {"count": 3, "gap": 1.0, "lifetime": 0.1},
        "fork",
        "the last one stays a zombie",
    ),
    ("S5", "interleaved", {"count": 3, "gap": 0.0}, "fork", "all three stay zombies"),
    (
        "forkserver",
        "mp",
        {"count": 5, "interval": 0.5, "lifetime": 0.1},
        "forkserver",
        "(not in the post: Python 3.14's default)",
    ),
    (
        "sigchld",
        "sigchld",
        {"count": 5, "interval": 0.3, "lifetime": 0.2},
        None,
        "(not in the post: the remedy)",
    ),
]

EPILOG = """\b
Examples:
  zombiectl demo --list                      the strategies, one line each
  zombiectl demo all                         the post's experiments side by side
  zombiectl demo fork --count 20             fork, never wait: 20 zombies
  zombiectl demo interleaved --gap 0         three starts back to back: three zombies
  zombiectl demo mp --start-method forkserver   the fork server reaps: none
  zombiectl demo sigchld --json              JSON lines: samples, then a summary
  zombiectl demo all --quiz                  predict each experiment, then see; score N/M
  printf '5\\n1\\n' | zombiectl demo all --quiz   the answers from a pipe
  zombiectl explain interleaved              why
"""


def _time_option(flag: str, help_text: str) -> click.Option:
    return click.Option(
        [flag],
        type=Seconds(0, TIME_MAX),
        default=None,
        metavar="S",
        help=help_text,
    )


def _common_options(strategy: Strategy) -> list[click.Parameter]:
    defaults = strategy.params({})
    opts: list[click.Parameter] = []
    uses = strategy.uses
    if "count" in uses:
        opts.append(
            click.Option(
                ["--count"],
                type=Count(1, COUNT_MAX),
                default=None,
                metavar="N",
                help=f"Children to start (1..{COUNT_MAX}; default {defaults.count}).",
            )
        )
    if "interval" in uses:
        opts.append(
            _time_option(
                "--interval",
                f"Seconds between two starts, the post's sleep (default {defaults.interval}).",
            )
        )
    if "lifetime" in uses:
        opts.append(
            _time_option("--lifetime", f"Seconds each child lives (default {defaults.lifetime}).")
        )
    if "gap" in uses:
        opts.append(
            _time_option(
                "--gap", f"Seconds between starts; 0: back to back (default {defaults.gap})."
            )
        )
    opts.append(
        _time_option(
            "--hold",
            "Seconds the lab parent lingers after its last start (and at least until its "
            f"children are done) before clean-up; the final count is taken then "
            f"(default {defaults.hold}).",
        )
    )
    if strategy.uses_start_method:
        opts.append(
            click.Option(
                ["--start-method"],
                type=click.Choice(START_METHODS),
                default=None,
                help="multiprocessing start method (default: the platform's, "
                f"{registry.default_start_method()} here).",
            )
        )
    for opt in strategy.options:
        opts.append(_strategy_option(opt))
    return opts


def _strategy_option(opt: Option) -> click.Option:
    ptype: Any
    if opt.choices:
        ptype = click.Choice(opt.choices)
    elif opt.type is int:
        if opt.min is None or opt.max is None:  # every int option states its range
            raise TypeError(f"{opt.flag}: an int option needs min and max")
        ptype = Count(int(opt.min), int(opt.max))
    elif opt.type is float:
        ptype = Seconds(
            0.0 if opt.min is None else opt.min, TIME_MAX if opt.max is None else opt.max
        )
    elif opt.type is bool:
        return click.Option([opt.flag], is_flag=True, default=None, help=opt.help)
    else:
        ptype = click.STRING
    return click.Option(
        [opt.flag],
        type=ptype,
        default=None,
        metavar=opt.metavar,
        help=f"{opt.help} (default {opt.default}).",
    )


def _shared_options() -> list[click.Parameter]:
    return [
        click.Option(
            ["--sample"],
            type=Seconds(SAMPLE_MIN, TIME_MAX),
            default=0.1,
            show_default=True,
            metavar="S",
            help=f"Seconds between two samples of the lab parent's children (at least {SAMPLE_MIN}).",
        ),
        click.Option(
            ["--json", "as_json"], is_flag=True, help="JSON lines: samples, then a summary."
        ),
        click.Option(
            ["--quiz"],
            is_flag=True,
            help="Before each experiment, show its code and read your prediction (one whole "
            "number per line, from a terminal or a pipe); ends with score N/M.",
        ),
    ]


def _strategy_command(strategy: Strategy) -> click.Command:
    def callback(sample: float, as_json: bool, quiz: bool, **given: Any) -> int:
        start_method = given.pop("start_method", None)
        params = strategy.params(given)
        if strategy.prepare is not None:
            params = strategy.prepare(params)
        method = registry.resolve_start_method(strategy, start_method)
        from zombiectl.demo.model import LabSpec

        spec = LabSpec(strategy, params, method)
        if quiz:
            return run_quiz([spec], sample, as_json)
        return run_demo([spec], sample, as_json)

    help_text = (
        f"{strategy.title}.\n\n{strategy.model_text}\n\nSee: zombiectl explain {strategy.name}"
    )
    return click.Command(
        strategy.name,
        params=[*_common_options(strategy), *_shared_options()],
        callback=callback,
        help=help_text,
        short_help=strategy.title,
        epilog=f"Example: zombiectl demo {strategy.name} --json",
    )


def all_specs(hold: float | None = None) -> list[LabSpec]:
    """`demo all`'s labs; `hold`, when given, for every one of them."""
    from zombiectl.demo.model import LabSpec

    specs = []
    for label, name, row_params, method, seen in ALL_ROWS:
        given = row_params if hold is None else {**row_params, "hold": hold}
        strategy = registry.get(name)
        params = strategy.params(given)
        if strategy.prepare is not None:
            try:
                params = strategy.prepare(params)
            except NotSupported:
                # No compiler: S1 in Python shows the same thing.
                strategy = registry.get("fork")
                params = strategy.params(given)
        specs.append(
            LabSpec(strategy, params, registry.resolve_start_method(strategy, method), label, seen)
        )
    return specs


def _all_command() -> click.Command:
    def callback(sample: float, as_json: bool, quiz: bool, hold: float | None) -> int:
        specs = all_specs(hold)
        if quiz:
            return run_quiz(specs, sample, as_json)
        return run_demo(specs, sample, as_json)

    return click.Command(
        "all",
        params=[
            _time_option("--hold", "Seconds each lab lingers after its last start (default 1.0)."),
            *_shared_options(),
        ],
        callback=callback,
        help="The post's experiments S1-S5, the forkserver case and the sigchld remedy, "
        "side by side: expected vs observed.",
        short_help="S1-S5, forkserver and sigchld side by side.",
        epilog="Example: zombiectl demo all --json | grep summary",
    )


class DemoGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*registry.names(), "all"]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name == "all":
            return _all_command()
        try:
            return _strategy_command(registry.get(cmd_name))
        except BadUsage:
            return None

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            registry.get(name)  # raises BadUsage (exit 2) listing the strategies
        return super().resolve_command(ctx, args)


@click.group(
    "demo",
    cls=DemoGroup,
    invoke_without_command=True,
    epilog=EPILOG,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option("--list", "list_only", is_flag=True, help="List the strategies and exit.")
@click.pass_context
def command(ctx: click.Context, list_only: bool) -> int | None:
    """Make zombies happen live: run STRATEGY's real code in a lab parent and watch it.

    Exit status: 0 when every observed count matches its model and nothing is left
    behind, 1 otherwise, 130 when interrupted by Ctrl-C and 143 by SIGTERM (after
    clean-up), 5 when `demo c` finds no C compiler.
    """
    if ctx.invoked_subcommand is not None:
        return None
    if not list_only:
        write(ctx.get_help() + "\n")
        return 0
    lines = [
        f"{s.name:<16} {s.experiment or s.kind:<7} {s.title}\n" for s in registry.all_strategies()
    ]
    lines.append(f"{'all':<16} {'':<7} S1-S5, forkserver and sigchld side by side\n")
    write("".join(lines))
    return 0


def _printer(specs: list[LabSpec], as_json: bool) -> Printer:
    from zombiectl.demo.render import JsonPrinter, LivePrinter, PlainPrinter

    default_method = registry.default_start_method()
    if as_json:
        return JsonPrinter(specs, default_method, sys.stdout)
    console = console_for_stdout()
    if console.is_terminal:
        return LivePrinter(specs, default_method, console)
    return PlainPrinter(specs, default_method, sys.stdout)


def run_demo(specs: list[LabSpec], sample: float, as_json: bool) -> int:
    """Run the labs, render them, and turn the outcome into an exit code."""
    summaries, stop_signal = run_labs(specs, sample, _printer(specs, as_json))
    return outcome(specs, summaries, stop_signal)


def run_labs(
    specs: list[LabSpec], sample: float, printer: Printer
) -> tuple[list[Summary], int | None]:
    """Run the labs side by side through `printer`; (their summaries, the stop signal)."""
    from zombiectl.demo.runner import LabRunner

    runner = LabRunner(sample_every=sample)
    summaries = []
    try:
        with runner:
            printer.begin()
            summaries = runner.run(specs, printer.update)
        printer.end(runner.labs)
    except OSError as err:
        if err.errno not in (errno.EAGAIN, errno.ENOMEM):
            raise
        # zombiectl itself could not fork (the guard or a lab parent): the with-block
        # has already killed and reaped whatever had started.
        raise ResourceLimit(
            f"cannot start the demo: {err.strerror} (out of processes: RLIMIT_NPROC, "
            "the cgroup's pids.max or pid_max); everything started was cleaned up"
        ) from None
    finally:
        printer.close()
    return summaries, runner.stop_signal


def run_quiz(specs: list[LabSpec], sample: float, as_json: bool) -> int:
    """One experiment at a time: show its code, read a prediction, run it, score it.

    The exit status is the demo's (every count matches its model, nothing left), not
    the score; `score N/M` is the last line of output.
    """
    from zombiectl.demo import quiz
    from zombiectl.demo import render_quiz as show
    from zombiectl.demo.render import Printer
    from zombiectl.ui.options import console_for_stderr

    console = console_for_stderr() if as_json else console_for_stdout()
    results: list[quiz.Result] = []
    summaries: list[Summary] = []
    stop_signal: int | None = None
    eof = False
    for n, spec in enumerate(specs, 1):
        show.ask(console, n, len(specs), spec, quiz.excerpt(spec.strategy, spec.params))
        reply = quiz.Reply(None, None) if eof else quiz.read_reply(sys.stdin)
        eof = reply.eof
        show.heard(console, reply)
        printer = Printer([spec], None) if as_json else _printer([spec], False)
        done, stop_signal = run_labs([spec], sample, printer)
        summaries.extend(done)
        if (stop_signal is not None and stop_signal > 0) or not done:
            break
        result = quiz.Result(
            spec.strategy.name,
            spec.name,
            reply.predicted,
            done[0].final_zombies,
            spec.expected,
            spec.strategy.why_line(spec.params, spec.start_method),
        )
        results.append(result)
        if as_json:
            show.put_json(sys.stdout, result.as_dict())
        else:
            show.verdict(console, result, shown_reason=True)
    score = quiz.score_dict(results, len(specs))
    if as_json:
        show.put_json(sys.stdout, score)
    else:
        console.print(show.score_line(score["correct"], score["questions"]))
    return outcome(specs[: len(summaries)], summaries, stop_signal)


def outcome(specs: list[LabSpec], summaries: list[Summary], stop_signal: int | None) -> int:
    errors = [s for s in summaries if s.error is not None]
    left = sum(s.leftover for s in summaries)
    if errors:
        s = errors[0]
        if s.error_kind == "fork":
            raise ZombiectlError(
                f"demo {s.label}: fork failed after {s.children} children: {s.error} "
                f"(out of processes: RLIMIT_NPROC, the cgroup's pids.max or pid_max); "
                f"everything started was cleaned up, {left} left"
            )
        raise ZombiectlError(
            f"demo {s.label}: the strategy failed: {s.error}; everything started was "
            f"cleaned up, {left} left"
        )
    if stop_signal is not None and stop_signal > 0:
        import signal

        # A lab that serves until Ctrl-C (demo server --clients 0) ends normally that
        # way; SIGTERM still ends it as terminated (143).
        until_ctrl_c = specs and all(s.strategy.until_interrupted(s.params) for s in specs)
        if until_ctrl_c and stop_signal == signal.SIGINT:
            return 0 if all(s.leftover == 0 for s in summaries) else EXIT_CONDITION
        name = signal.Signals(stop_signal).name
        raise Interrupted(
            f"interrupted by {name}; the demo was cleaned up, {left} left", stop_signal
        )
    if all(s.ok for s in summaries):
        return 0
    return EXIT_CONDITION


__all__ = ["EXIT_INTERRUPTED", "command", "run_demo"]
