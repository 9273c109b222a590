"""Renderers that need neither rich nor psutil: JSON and Prometheus text exposition.

They take the data objects from `zombiectl.listing` and return strings.
"""

from __future__ import annotations

import json

from zombiectl.listing import ListResult

DEFAULT_TOP = 20


def listing_json(result: ListResult) -> str:
    return json.dumps(result.as_dict())


def escape_label(value: str) -> str:
    """Escape a label value as the text exposition format requires."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _gauge(lines: list[str], name: str, help_text: str) -> None:
    lines.append(f"# HELP {name} {help_text}")
    lines.append(f"# TYPE {name} gauge")


def listing_prometheus(result: ListResult, top: int = DEFAULT_TOP) -> str:
    lines: list[str] = []
    _gauge(lines, "zombiectl_processes", "Processes in the process table.")
    lines.append(f"zombiectl_processes {result.processes}")
    _gauge(lines, "zombiectl_zombies", "Zombie processes (state Z) in the process table.")
    lines.append(f"zombiectl_zombies {result.zombies}")
    _gauge(
        lines,
        "zombiectl_zombies_by_parent",
        f"Zombies by parent process, for the {top} parents with the most.",
    )
    for g in result.parents[:top]:
        lines.append(
            f'zombiectl_zombies_by_parent{{ppid="{g.pid}",parent="{escape_label(g.name)}"}} '
            f"{g.zombies}"
        )
    _gauge(lines, "zombiectl_scan_duration_seconds", "Time taken to scan the process table.")
    lines.append(f"zombiectl_scan_duration_seconds {result.scan_seconds:.6f}")
    return "\n".join(lines) + "\n"
