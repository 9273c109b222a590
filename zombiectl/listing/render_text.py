"""Renderers that need neither rich nor psutil: JSON, Prometheus text exposition, and the
cells and footer of `list`'s table (rich draws them on a terminal, `render_plain` on a pipe).

They take the data objects from `zombiectl.listing.zombies` and return strings.
"""

from __future__ import annotations

from zombiectl.listing.zombies import ListResult
from zombiectl.proc.records import ParentZombies
from zombiectl.ui.cells import PARENTS_COLUMNS, format_pids, plural
from zombiectl.untrusted import display

TYPE_CHECKING = False  # typing costs ~4 ms to import; mypy treats this name as true
if TYPE_CHECKING:
    from zombiectl.proc.containers import Container

DEFAULT_TOP = 20


def listing_footer(result: ListResult) -> str:
    scan = f"scan {result.scan_seconds * 1000:.1f} ms"
    if not result.parents:
        where = f" under pid {result.pid}" if result.pid is not None else ""
        return (
            f"no zombies{where} among {plural(result.processes, 'process', 'processes')} ({scan})"
        )
    return (
        f"{plural(len(result.parents), 'parent')} "
        f"{'leaks' if len(result.parents) == 1 else 'leak'} "
        f"{plural(result.zombies, 'zombie')} among "
        f"{result.processes} processes ({scan})"
    )


def parents_columns(result: ListResult) -> tuple[str, ...]:
    """The titles of `list`'s table; CONTAINER only when a parent is in a container (on a
    host without any, it would only repeat "-")."""
    if any(c is not None for c in result.containers.values()):
        return (*PARENTS_COLUMNS, "CONTAINER")
    return PARENTS_COLUMNS


def parents_row(result: ListResult, g: ParentZombies, with_container: bool) -> list[str]:
    """One parent's cells in `list`'s table, as text (rich styles some of them)."""
    row = [str(g.pid), display(g.name), display(g.user), str(g.zombies), format_pids(g.zombie_pids)]
    if with_container:
        c = result.container_of(g.pid)
        cell = "-" if c is None else display(container_title(c))
        row.append(cell + " (init)" if c is not None and g.pid in result.inits else cell)
    return row


CONTAINERS_COLUMNS: tuple[str, ...] = (
    "CONTAINER",
    "RUNTIME",
    "INIT",
    "ZOMBIES",
    "PARENTS",
    "WORST PARENT",
)
CONTAINERS_RIGHT = frozenset(("INIT", "ZOMBIES", "PARENTS"))


def containers_rows(result: ListResult) -> list[list[str]]:
    """`list --by container`'s cells, as text: one row per container, the host's "host"."""
    rows = []
    for row in result.by_container():
        c = row.container
        rows.append(
            [
                "host" if c is None else display(container_title(c)),
                "-" if c is None or c.runtime is None else c.runtime,
                "-" if c is None or not c.init_pid else str(c.init_pid),
                str(row.zombies),
                str(row.parents),
                f"{row.worst.pid} {display(row.worst.name)} ({row.worst.zombies})",
            ]
        )
    return rows


def listing_json(result: ListResult) -> str:
    # Imported here: json pulls in re, milliseconds that `--format prometheus` never needs.
    import json

    return json.dumps(result.as_dict())


def escape_label(value: str) -> str:
    """A label value from untrusted text, escaped as the text exposition format requires.

    The value is the name as a screen shows it (`display`): labels end up on dashboards
    and in terminals (`curl`, `promtool`), so no raw control character goes in. That
    leaves no newline to escape, only backslashes and double quotes.
    """
    return display(value).replace("\\", "\\\\").replace('"', '\\"')


# (name, HELP). Fixed texts, whatever the options and the data: metadata that changes
# from one write to the next only surprises whatever stores it.
_PROCESSES = ("zombiectl_processes", "Processes in the process table.")
_ZOMBIES = (
    "zombiectl_zombies",
    "Zombie processes (state Z): all of them, or with --pid only that parent's.",
)
_PARENTS = (
    "zombiectl_zombie_parents",
    "Parents with at least one zombie, all of them (not only those in zombies_by_parent).",
)
_BY_PARENT = (
    "zombiectl_zombies_by_parent",
    "Zombies of one parent (ppid, parent: its name, container: its container's id or empty "
    "on the host, init: true when the parent is a PID namespace's PID 1), for the parents "
    "with the most (--top, default 20). A series ends when its parent has no zombie left "
    "or leaves the top.",
)
_BY_CONTAINER = (
    "zombiectl_zombies_by_container",
    "Zombies held by the processes of one container (container: its id), for the containers "
    "with the most (--top, default 20); the host has no series.",
)
_CONTAINER_ZOMBIES = (
    "zombiectl_container_zombies",
    "Zombies held by the processes of one container, one series for every container "
    "holding any (no top cut).",
)
_CONTAINER_INIT_ZOMBIES = (
    "zombiectl_container_init_zombies",
    "Zombies held by a container's PID 1 (0 when its other processes hold them), one "
    "series for every container holding any zombie.",
)
_CONTAINER_PIDS = (
    "zombiectl_container_pids",
    "Tasks in a container's pids cgroup, zombies included (pids.current), for every "
    "container holding zombies.",
)
_CONTAINER_PIDS_MAX = (
    "zombiectl_container_pids_max",
    "The limit of a container's pids cgroup (pids.max); no series when unlimited.",
)
_DURATION = ("zombiectl_scan_duration_seconds", "Seconds taken to scan the process table.")


def container_counts(result: ListResult) -> list[tuple[str, int]]:
    """(container id, zombies) for every container, most first; one entry per id."""
    counts: dict[str, int] = {}
    for g in result.parents:
        c = result.container_of(g.pid)
        if c is not None:
            counts[c.id] = counts.get(c.id, 0) + g.zombies
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def _gauge(lines: list[str], metric: tuple[str, str]) -> None:
    lines.append(f"# HELP {metric[0]} {metric[1]}")
    lines.append(f"# TYPE {metric[0]} gauge")


def container_labels(c: Container) -> str:
    """The label set that names a container in every zombiectl_container_* series: its
    id, and on Kubernetes its names (k8s_*: plain namespace, pod and container labels
    would clash with the target labels Prometheus sets)."""
    labels = f'container="{escape_label(c.id)}"'
    for name, value in (
        ("k8s_namespace", c.k8s_namespace),
        ("k8s_pod", c.k8s_pod),
        ("k8s_container", c.k8s_container),
    ):
        if value:
            labels += f',{name}="{escape_label(value)}"'
    return labels


def container_title(c: Container) -> str:
    """A container as a table names it: its id, and its Kubernetes names when known."""
    if c.k8s_pod is None:
        return c.id
    return f"{c.id} ({c.k8s_namespace}/{c.k8s_pod}/{c.k8s_container})"


def _container_series(lines: list[str], result: ListResult) -> None:
    """The zombiectl_container_* families: every container holding zombies, no top cut,
    so an alert on one container never depends on how many parents leak elsewhere."""
    totals = result.container_totals()
    pids = {t.container.id: t.container.pids() for t in totals}
    _gauge(lines, _CONTAINER_ZOMBIES)
    for t in totals:
        lines.append(f"zombiectl_container_zombies{{{container_labels(t.container)}}} {t.zombies}")
    _gauge(lines, _CONTAINER_INIT_ZOMBIES)
    for t in totals:
        labels = container_labels(t.container)
        lines.append(f"zombiectl_container_init_zombies{{{labels}}} {t.init_zombies}")
    _gauge(lines, _CONTAINER_PIDS)
    for t in totals:
        counts = pids[t.container.id]
        if counts is not None:
            lines.append(f"zombiectl_container_pids{{{container_labels(t.container)}}} {counts[0]}")
    _gauge(lines, _CONTAINER_PIDS_MAX)
    for t in totals:
        counts = pids[t.container.id]
        if counts is not None and counts[1] is not None:
            labels = container_labels(t.container)
            lines.append(f"zombiectl_container_pids_max{{{labels}}} {counts[1]}")


def listing_prometheus(result: ListResult, top: int = DEFAULT_TOP) -> str:
    """The text exposition format, for node_exporter's textfile collector or a scraper.

    Every zombiectl_zombies_by_parent series has the same four labels, ppid, parent,
    container and init; at most `top` of them, biggest leaker first, so one host adds a
    bounded number of series however many parents leak. Label sets are unique within
    the file: node_exporter drops a whole textfile that repeats a series.
    """
    lines: list[str] = []
    _gauge(lines, _PROCESSES)
    lines.append(f"zombiectl_processes {result.processes}")
    _gauge(lines, _ZOMBIES)
    lines.append(f"zombiectl_zombies {result.zombies}")
    _gauge(lines, _PARENTS)
    lines.append(f"zombiectl_zombie_parents {len(result.parents)}")
    _gauge(lines, _BY_PARENT)
    for g in result.parents[: max(top, 0)]:
        c = result.container_of(g.pid)
        container = "" if c is None else escape_label(c.id)
        init = "true" if g.pid in result.inits else "false"
        lines.append(
            f'zombiectl_zombies_by_parent{{ppid="{g.pid}",parent="{escape_label(g.name)}",'
            f'container="{container}",init="{init}"}} {g.zombies}'
        )
    _gauge(lines, _BY_CONTAINER)
    for cid, zombies in container_counts(result)[: max(top, 0)]:
        lines.append(f'zombiectl_zombies_by_container{{container="{escape_label(cid)}"}} {zombies}')
    _container_series(lines, result)
    _gauge(lines, _DURATION)
    lines.append(f"zombiectl_scan_duration_seconds {result.scan_seconds:.6f}")
    return "\n".join(lines) + "\n"
