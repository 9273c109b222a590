"""What a demo is and what it reports: a lab to run, a sample of it, its summary.

Plain data (frozen dataclasses): `zombiectl.demo.runner` makes them, `zombiectl.demo.render`
draws them, `--json` writes their `as_dict()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from zombiectl.demo.strategies.registry import Strategy

# The parameters that shape a run's count, shown with it (a strategy adds its own).
SETTINGS = ("count", "interval", "lifetime", "gap")


@dataclass(frozen=True)
class LabSpec:
    """One lab to run: a strategy, its parameters, and the row label (e.g. "S5")."""

    strategy: Strategy
    params: SimpleNamespace
    start_method: str | None = None
    label: str = ""
    seen: str = ""  # what the post saw in this experiment (`demo all`)

    @property
    def name(self) -> str:
        return self.label or self.strategy.name

    @property
    def expected(self) -> int | None:
        return self.strategy.expected(self.params, self.start_method)

    @property
    def settings(self) -> dict[str, Any]:
        """The parameters that shape this run's count (count, interval, lifetime, gap, and
        a strategy's own such as the server's --reap)."""
        used = self.strategy.uses
        out = {k: getattr(self.params, k) for k in SETTINGS if k in used}
        for opt in self.strategy.options:
            if opt.shapes_count:
                out[opt.dest] = getattr(self.params, opt.dest)
        return out


@dataclass(frozen=True)
class LabSample:
    """What one look at a lab's children saw (a `--json` "sample" line)."""

    label: str
    strategy: str
    t: float
    alive: int
    zombies: int
    reaped: int
    experiment: str | None = None  # the row of `demo all` ("S5"); None for a single demo
    helpers: int = 0  # the lab parent's own children that the strategy did not start

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "event": "sample",
            "strategy": self.strategy,
            "t": round(self.t, 3),
            "alive": self.alive,
            "zombies": self.zombies,
            "reaped": self.reaped,
        }
        if self.helpers:
            d["helpers"] = self.helpers
        if self.experiment:
            d["experiment"] = self.experiment
        return d


@dataclass(frozen=True)
class Summary:
    """How a lab ended: its counts against the model's, and what was left (a "summary" line)."""

    label: str
    strategy: str
    start_method: str | None
    children: int
    max_zombies: int
    final_zombies: int
    expected_final_zombies: int | None
    leftover: int
    seconds: float
    interrupted: bool = False
    error: str | None = None
    error_kind: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    experiment: str | None = None
    helpers: tuple[str, ...] = ()  # what the uncounted children were ("fork server", ...)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def matches(self) -> bool:
        return self.expected_final_zombies is None or (
            self.final_zombies == self.expected_final_zombies
        )

    @property
    def ok(self) -> bool:
        return self.error is None and self.leftover == 0 and self.matches

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "event": "summary",
            "strategy": self.strategy,
            "start_method": self.start_method,
            "children": self.children,
            "max_zombies": self.max_zombies,
            "final_zombies": self.final_zombies,
            "expected_final_zombies": self.expected_final_zombies,
            "ok": self.ok,
            "leftover": self.leftover,
        }
        if self.experiment:
            d["experiment"] = self.experiment
        if self.settings:
            d["settings"] = self.settings
        d["seconds"] = round(self.seconds, 3)
        if self.interrupted:
            d["interrupted"] = True
        if self.error is not None:
            d["error"] = self.error
        if self.helpers:
            d["helpers"] = list(self.helpers)
        d.update(self.extra)
        return d
