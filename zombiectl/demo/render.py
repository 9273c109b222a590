"""What `demo` shows: a live rich table on a terminal, plain lines when piped, JSON lines.

The printers take the labs' data (`zombiectl.demo.runner.Lab`, `LabSample`, `Summary`) and a
Console or stream; they never start, sample or clean up anything.
"""

from __future__ import annotations

import json
from typing import IO, TYPE_CHECKING, Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from zombiectl.demo.model import LabSample, LabSpec, Summary
from zombiectl.demo.runner import Lab
from zombiectl.stdout import write
from zombiectl.ui.console import PIPE_WIDTH
from zombiectl.ui.safe import data
from zombiectl.untrusted import display

if TYPE_CHECKING:
    from collections.abc import Sequence

HISTORY_ROWS = 12
BAR_MAX = 30
# Piped output is read by programs and pagers, not a terminal: never wrap a row.


def method_text(spec: LabSpec, default_method: str | None) -> str:
    if spec.start_method is None:
        return "-"
    if spec.start_method == default_method:
        return f"{spec.start_method} (default)"
    return spec.start_method


def bar(n: int, char: str = "Z") -> str:
    return char * min(n, BAR_MAX) + ("+" if n > BAR_MAX else "")


def why(spec: LabSpec) -> str:
    return spec.strategy.why_line(spec.params, spec.start_method)


LEGEND = (
    "S1-S5: the post's five experiments (S1 is its C loop, S2-S5 its Python ones); "
    "forkserver: S2 under the start method that is Linux's default from Python 3.14; "
    'sigchld: a remedy. "S1 runs c": the row runs `zombiectl demo c`. '
    "max: the most zombies seen at once; leftover: processes of the demo still there "
    "after clean-up (must be 0); helpers: multiprocessing's own processes (fork server, "
    "resource tracker), never counted as children."
)


TIMES = ("interval", "lifetime", "gap")


def _seconds(v: float) -> str:
    return "0" if v == 0 else f"{v} s"


def settings_text(settings: dict[str, Any]) -> str:
    """`count 3, gap 1 s, lifetime 0.1 s`: what makes two runs of a strategy differ."""
    return ", ".join(
        f"{k} {_seconds(float(v))}" if k in TIMES else f"{k} {v}" for k, v in settings.items()
    )


def header(spec: LabSpec, default_method: str | None) -> str:
    """One line naming the experiment, its strategy and every parameter that shapes it."""
    name = (
        spec.name if spec.name == spec.strategy.name else f"{spec.name} runs {spec.strategy.name}"
    )
    parts = [settings_text(spec.settings)]
    if spec.start_method:
        parts.append(f"start method {method_text(spec, default_method)}")
    setup = "; ".join(p for p in parts if p)
    return f"{name}: {spec.strategy.title}" + (f" ({setup})" if setup else "")


def helpers_text(helpers: Sequence[str]) -> str:
    if not helpers:
        return ""
    names = " and ".join(sorted(set(helpers)))
    return f"helpers {len(helpers)} ({names}: multiprocessing's own, not workers)"


def summary_line(s: Summary, why: str) -> str:
    mark = "✓" if s.ok else "✗"
    expected = "-" if s.expected_final_zombies is None else str(s.expected_final_zombies)
    method = f" ({s.start_method})" if s.start_method else ""
    name = s.label if s.label == s.strategy else f"{s.label} runs {s.strategy}"
    head = f"{mark} {name}{method}: expected {expected}, observed {s.final_zombies}"
    kids = "child" if s.children == 1 else "children"
    tail = f"; max {s.max_zombies}, {s.children} {kids}, leftover {s.leftover}"
    if s.helpers:
        tail += f", {helpers_text(s.helpers)}"
    extra = "".join(f", {k} {v}" for k, v in s.extra.items())
    line = head + tail + extra
    if s.interrupted:
        line += " (interrupted)"
    if s.error is not None:
        # An error quotes what failed (a compiler's message, a path): escaped, one line.
        line += f"\n  error: {display(s.error)}"
    elif why:
        line += f"\n  {why}"
    return line


class Printer:
    """Base: one per run. `update` is called after every sample round."""

    def __init__(self, specs: Sequence[LabSpec], default_method: str | None) -> None:
        self.specs = list(specs)
        self.default_method = default_method
        self._printed: set[int] = set()

    def begin(self) -> None:
        pass

    def update(self, labs: list[Lab], samples: list[LabSample]) -> None:
        pass

    def end(self, labs: list[Lab]) -> None:
        pass

    def close(self) -> None:
        pass


class JsonPrinter(Printer):
    def __init__(self, specs: Sequence[LabSpec], default_method: str | None, out: IO[str]) -> None:
        super().__init__(specs, default_method)
        self.out = out
        self._notes: dict[int, int] = {}

    def _emit(self, obj: dict[str, Any]) -> None:
        write(json.dumps(obj) + "\n", self.out)

    def update(self, labs: list[Lab], samples: list[LabSample]) -> None:
        for lab in labs:
            self._flush_notes(lab)
        for s in samples:
            self._emit(s.as_dict())
        for i, lab in enumerate(labs):
            if lab.summary is not None and i not in self._printed:
                self._printed.add(i)
                self._emit(lab.summary.as_dict())

    def _flush_notes(self, lab: Lab) -> None:
        seen = self._notes.get(id(lab), 0)
        for text in lab.notes[seen:]:
            self._emit({"event": "note", "strategy": lab.spec.strategy.name, "text": text})
        self._notes[id(lab)] = len(lab.notes)

    def end(self, labs: list[Lab]) -> None:
        self.update(labs, [])


def sample_line(s: LabSample) -> str:
    line = (
        f"t={s.t:5.2f}s  alive {s.alive:>3}  zombies {s.zombies:>3}  "
        f"reaped {s.reaped:>3}  {bar(s.zombies)}"
    )
    return line.rstrip()


class PlainPrinter(Printer):
    """Piped output, grouped by lab: its header, its samples (a line when a count
    changes) and its verdict, one lab after the other in the order given; with several
    labs, then one summary table and the legend. A lab's block is held back until the
    labs before it are printed, so labs running side by side never interleave."""

    def __init__(self, specs: Sequence[LabSpec], default_method: str | None, out: IO[str]) -> None:
        super().__init__(specs, default_method)
        self.out = out
        self._last: dict[str, tuple[int, int, int]] = {}
        self._notes: dict[int, int] = {}
        self._blocks: dict[str, list[str]] = {
            spec.name: [header(spec, default_method)] for spec in self.specs
        }
        self._next = 0  # index of the first spec whose block is not printed yet

    def _add(self, label: str, line: str) -> None:
        self._blocks.setdefault(label, []).append(line)

    def update(self, labs: list[Lab], samples: list[LabSample]) -> None:
        for lab in labs:
            seen = self._notes.get(id(lab), 0)
            for text in lab.notes[seen:]:
                self._add(lab.spec.name, f"note: {display(text)}")
            self._notes[id(lab)] = len(lab.notes)
        for s in samples:
            key = (s.alive, s.zombies, s.reaped)
            if self._last.get(s.label) != key:
                self._last[s.label] = key
                self._add(s.label, sample_line(s))
        self._flush(labs)

    def _flush(self, labs: list[Lab], final: bool = False) -> None:
        by_name = {lab.spec.name: lab for lab in labs}
        while self._next < len(self.specs):
            spec = self.specs[self._next]
            lab = by_name.get(spec.name)
            done = lab is not None and lab.summary is not None
            if self._next == 0 and len(self.specs) == 1 and not done and not final:
                # One lab: nothing to interleave with, so its lines go out as they come.
                self._write(spec.name)
                return
            if not done and not final:
                return
            self._write(spec.name)
            if lab is not None and lab.summary is not None:
                write(summary_line(lab.summary, why(spec)) + "\n", self.out)
            if len(self.specs) > 1:
                write("\n", self.out)
            self._next += 1

    def _write(self, label: str) -> None:
        lines = self._blocks.get(label, [])
        if lines:
            write("".join(line + "\n" for line in lines), self.out)
            lines.clear()

    def end(self, labs: list[Lab]) -> None:
        self.update(labs, [])
        self._flush(labs, final=True)
        if len(self.specs) > 1:
            summaries = [lab.summary for lab in labs if lab.summary is not None]
            console = Console(file=self.out, width=PIPE_WIDTH, no_color=True, highlight=False)
            console.print(Text("summary:"))
            console.print(final_table(self.specs, summaries))
            console.print(Text(LEGEND), soft_wrap=True)


class LivePrinter(Printer):
    """A terminal: a rich Live table, redrawn after every sample."""

    def __init__(
        self, specs: Sequence[LabSpec], default_method: str | None, console: Console
    ) -> None:
        super().__init__(specs, default_method)
        self.console = console
        self.history: list[LabSample] = []
        self._live: Live | None = None
        self._labs: list[Lab] = []

    def begin(self) -> None:
        self._live = Live(self._render(), console=self.console, auto_refresh=False, transient=False)
        self._live.start()

    def update(self, labs: list[Lab], samples: list[LabSample]) -> None:
        self._labs = labs
        for s in samples:
            last = self.history[-1] if self.history else None
            if last is None or (last.alive, last.zombies, last.reaped) != (
                s.alive,
                s.zombies,
                s.reaped,
            ):
                self.history.append(s)
            elif self.history:
                self.history[-1] = s
        del self.history[:-HISTORY_ROWS]
        if self._live is not None:
            self._live.update(self._render(), refresh=True)

    def _render(self) -> RenderableType:
        if len(self.specs) > 1:
            return side_by_side_table(self.specs, self._labs, self.default_method)
        return single_view(self.specs[0], self._labs, self.history, self.default_method)

    def end(self, labs: list[Lab]) -> None:
        self.update(labs, [])
        self.close()
        for lab in labs:
            if lab.summary is not None:
                style = "green" if lab.summary.ok else "bold red"
                self.console.print(Text(summary_line(lab.summary, why(lab.spec)), style=style))
        if len(self.specs) > 1:
            summaries = [lab.summary for lab in labs if lab.summary is not None]
            self.console.print(Text("summary:", style="bold"))
            self.console.print(final_table(self.specs, summaries))
            self.console.print(Text(LEGEND, style="dim"))

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


def single_view(
    spec: LabSpec, labs: list[Lab], history: list[LabSample], default_method: str | None
) -> RenderableType:
    lab = labs[0] if labs else None
    title = Text(f"demo {spec.strategy.name}: {spec.strategy.title}", style="bold")
    if spec.start_method:
        title.append(f"  (start method {method_text(spec, default_method)})", style="")
    if lab is not None and lab.pid:
        title.append(f"  lab parent {lab.pid}", style="dim")
    table = Table(box=None, header_style="bold")
    table.add_column("t (s)", justify="right")
    table.add_column("alive", justify="right")
    table.add_column("zombies", justify="right", style="bold red")
    table.add_column("reaped", justify="right")
    table.add_column("")
    for s in history:
        table.add_row(f"{s.t:.2f}", str(s.alive), str(s.zombies), str(s.reaped), bar(s.zombies))
    parts: list[RenderableType] = [title, table]
    expected = spec.expected
    foot = f"expected at the end: {'-' if expected is None else expected}"
    if lab is not None:
        phase = "starting" if lab.done_at is None else "holding" if lab.summary is None else "done"
        foot += f"   max so far {lab.max_zombies}   {phase}"
        parts.extend(data(f"note: {n}", style="cyan") for n in lab.notes)
    parts.append(Text(foot, style="dim"))
    return Group(*parts)


def side_by_side_table(
    specs: Sequence[LabSpec], labs: list[Lab], default_method: str | None
) -> RenderableType:
    table = Table(title="zombiectl demo all", title_justify="left", header_style="bold")
    for name in ("exp", "strategy", "settings", "start method"):
        table.add_column(name, justify="left")
    for name in ("t (s)", "alive", "zombies", "max", "reaped", "expected", "observed"):
        table.add_column(name, justify="right")
    table.add_column("", justify="left")
    by_label = {lab.spec.name: lab for lab in labs}
    for spec in specs:
        lab = by_label.get(spec.name)
        s = lab.last if lab is not None else None
        summary = lab.summary if lab is not None else None
        expected = spec.expected
        observed = str(summary.final_zombies) if summary is not None else ""
        mark = Text("")
        if summary is not None:
            mark = Text("✓", style="green") if summary.ok else Text("✗", style="bold red")
        table.add_row(
            Text(spec.name),
            Text(spec.strategy.name),
            Text(settings_text(spec.settings)),
            Text(method_text(spec, default_method)),
            f"{s.t:.1f}" if s else "",
            str(s.alive) if s else "",
            Text(str(s.zombies), style="bold red" if s.zombies else "") if s else "",
            str(lab.max_zombies) if lab is not None and s else "",
            str(s.reaped) if s else "",
            "-" if expected is None else str(expected),
            observed,
            mark,
        )
    return table


def final_table(specs: Sequence[LabSpec], summaries: Sequence[Summary]) -> Table:
    """The closing table of `demo all`: each experiment, what the post saw, and why."""
    table = Table(header_style="bold")
    for name in ("experiment", "the post saw", "expected", "observed", "why"):
        table.add_column(name, justify="right" if name in ("expected", "observed") else "left")
    by_label = {s.label: s for s in summaries}
    for spec in specs:
        s = by_label.get(spec.name)
        expected = spec.expected
        observed = Text("")
        if s is not None:
            mark = "✓" if s.ok else "✗"
            observed = Text(f"{s.final_zombies} {mark}", style="green" if s.ok else "bold red")
        reason = why(spec).rstrip(".")
        if s is not None and s.helpers:
            reason += f"; {helpers_text(s.helpers)}"
        table.add_row(
            header_name(spec),
            spec.seen or "-",
            "-" if expected is None else str(expected),
            observed,
            reason,
        )
    return table


def header_name(spec: LabSpec) -> str:
    settings = settings_text(spec.settings)
    method = f", {spec.start_method}" if spec.start_method else ""
    return f"{spec.name} ({spec.strategy.name}{': ' + settings if settings else ''}{method})"
