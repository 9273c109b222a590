"""What `demo` shows: a live rich table on a terminal, plain lines when piped, JSON lines.

The printers take the labs' data (`zombiectl.demo.runner.Lab`, `Sample`, `Summary`) and a
Console or stream; they never start, sample or clean up anything.
"""

from __future__ import annotations

import json
from typing import IO, TYPE_CHECKING, Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from zombiectl.demo.runner import Lab, LabSpec, Sample, Summary
from zombiectl.render.safe import data
from zombiectl.stdout import reader_left
from zombiectl.untrusted import display

if TYPE_CHECKING:
    from collections.abc import Sequence

HISTORY_ROWS = 12
BAR_MAX = 30


def method_text(spec: LabSpec, default_method: str | None) -> str:
    if spec.start_method is None:
        return "-"
    if spec.start_method == default_method:
        return f"{spec.start_method} (default)"
    return spec.start_method


def bar(n: int, char: str = "Z") -> str:
    return char * min(n, BAR_MAX) + ("+" if n > BAR_MAX else "")


def verdict(s: Summary) -> str:
    if s.error is not None:
        return "error"
    if s.expected_final_zombies is None:
        return "no prediction"
    return "match" if s.matches else "MISMATCH"


def why(spec: LabSpec) -> str:
    return spec.strategy.why_line(spec.params, spec.start_method)


def summary_line(s: Summary, why: str) -> str:
    mark = "✓" if s.ok else "✗"
    expected = "-" if s.expected_final_zombies is None else str(s.expected_final_zombies)
    method = f" ({s.start_method})" if s.start_method else ""
    head = f"{mark} {s.label}{method}: expected {expected}, observed {s.final_zombies}"
    if s.label != s.strategy:
        head = f"{mark} {s.label} = {s.strategy}{method}: expected {expected}, observed {s.final_zombies}"
    kids = "child" if s.children == 1 else "children"
    tail = f"; max {s.max_zombies}, {s.children} {kids}, leftover {s.leftover}"
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


def _put(out: IO[str], text: str) -> None:
    # The reader may leave (`| head`): exit 141 quietly; the lab runner still cleans up.
    try:
        out.write(text)
        out.flush()
    except BrokenPipeError:
        reader_left()


class Printer:
    """Base: one per run. `update` is called after every sample round."""

    def __init__(self, specs: Sequence[LabSpec], default_method: str | None) -> None:
        self.specs = list(specs)
        self.default_method = default_method
        self._printed: set[int] = set()

    def begin(self) -> None:
        pass

    def update(self, labs: list[Lab], samples: list[Sample]) -> None:
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
        _put(self.out, json.dumps(obj) + "\n")

    def update(self, labs: list[Lab], samples: list[Sample]) -> None:
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


class PlainPrinter(Printer):
    """Piped output: a line when a lab's counts change, then the summaries."""

    def __init__(self, specs: Sequence[LabSpec], default_method: str | None, out: IO[str]) -> None:
        super().__init__(specs, default_method)
        self.out = out
        self._last: dict[str, tuple[int, int, int]] = {}
        self._notes: dict[int, int] = {}

    def begin(self) -> None:
        for spec in self.specs:
            method = method_text(spec, self.default_method)
            via = f", start method {method}" if spec.start_method else ""
            _put(self.out, f"{spec.name}: {spec.strategy.title}{via}\n")

    def update(self, labs: list[Lab], samples: list[Sample]) -> None:
        prefix = len(self.specs) > 1
        for lab in labs:
            seen = self._notes.get(id(lab), 0)
            for text in lab.notes[seen:]:
                _put(self.out, f"{lab.spec.name}: note: {display(text)}\n")
            self._notes[id(lab)] = len(lab.notes)
        for s in samples:
            key = (s.alive, s.zombies, s.reaped)
            if self._last.get(s.label) == key:
                continue
            self._last[s.label] = key
            who = f"{s.label:<11} " if prefix else ""
            _put(
                self.out,
                f"{who}t={s.t:5.2f}s  alive {s.alive:>3}  zombies {s.zombies:>3}  "
                f"reaped {s.reaped:>3}  {bar(s.zombies)}\n",
            )

    def end(self, labs: list[Lab]) -> None:
        self.update(labs, [])
        for lab in labs:
            if lab.summary is not None:
                _put(self.out, summary_line(lab.summary, why(lab.spec)) + "\n")


class LivePrinter(Printer):
    """A terminal: a rich Live table, redrawn after every sample."""

    def __init__(
        self, specs: Sequence[LabSpec], default_method: str | None, console: Console
    ) -> None:
        super().__init__(specs, default_method)
        self.console = console
        self.history: list[Sample] = []
        self._live: Live | None = None
        self._labs: list[Lab] = []

    def begin(self) -> None:
        self._live = Live(self._render(), console=self.console, auto_refresh=False, transient=False)
        self._live.start()

    def update(self, labs: list[Lab], samples: list[Sample]) -> None:
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

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


def single_view(
    spec: LabSpec, labs: list[Lab], history: list[Sample], default_method: str | None
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
    for name, justify in (
        ("exp", "left"),
        ("strategy", "left"),
        ("start method", "left"),
        ("t (s)", "right"),
        ("alive", "right"),
        ("zombies", "right"),
        ("max", "right"),
        ("reaped", "right"),
        ("expected", "right"),
        ("observed", "right"),
        ("", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
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
        zombies = Text(str(s.zombies), style="bold red" if s.zombies else "") if s else Text("")
        table.add_row(
            Text(spec.name),
            Text(spec.strategy.name),
            Text(method_text(spec, default_method)),
            f"{s.t:.1f}" if s else "",
            str(s.alive) if s else "",
            zombies,
            str(lab.max_zombies) if lab is not None and s else "",
            str(s.reaped) if s else "",
            "-" if expected is None else str(expected),
            observed,
            mark,
        )
    return table
