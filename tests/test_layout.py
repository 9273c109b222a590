"""The shape of the package: one folder per command, registered in one line; /proc read
only by `zombiectl.proc`; no import cycle between packages; every stdout write safe; rich
imported only for output that is drawn."""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from proctools import GLOBAL_TIMEOUT, into_closed_pipe

from zombiectl.cli import COMMANDS, command_module

PACKAGE = Path(__file__).resolve().parent.parent / "zombiectl"


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_command_is_its_folders_cli_module(name: str) -> None:
    folder = COMMANDS[name][0]
    assert (PACKAGE / folder / "cli.py").is_file()
    command = importlib.import_module(command_module(name)).command
    assert isinstance(command, click.Command)
    assert command.name == name


def test_help_imports_no_command_module() -> None:
    code = (
        "import sys\n"
        "from zombiectl.cli import run_cli\n"
        "run_cli(['--help'])\n"
        "print(' '.join(m for m in sys.modules if m.endswith('.cli') and m != 'zombiectl.cli'))"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=GLOBAL_TIMEOUT
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[-1] == ""
    for name in COMMANDS:
        assert name in res.stdout


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m.startswith("zombiectl.")}


def _package_of(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) < 3 or not (PACKAGE / parts[1]).is_dir():
        return None
    return parts[1]


def test_no_import_cycle_between_packages() -> None:
    edges: dict[str, set[str]] = {}
    for path in PACKAGE.glob("*/**/*.py"):
        source = path.relative_to(PACKAGE).parts[0]
        for module in _imports(path):
            target = _package_of(module)
            if target is not None and target != source:
                edges.setdefault(source, set()).add(target)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in edges.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cycles = sorted(p for p in edges if reaches(p, p, {p}))
    assert cycles == [], f"packages in an import cycle: {cycles} ({edges})"


def test_proc_imports_no_command_package() -> None:
    for path in (PACKAGE / "proc").glob("*.py"):
        for module in _imports(path):
            package = _package_of(module)
            assert package in (None, "proc"), f"{path.name} imports {module}"


@pytest.mark.parametrize(
    "args", [["doctor", "--json", "--no-probe"], ["demo", "--list"]], ids=["doctor", "demo"]
)
def test_output_into_a_closed_pipe_is_quiet(args: list[str]) -> None:
    """The reader has left before the command writes: exit 141, as by SIGPIPE, silently."""
    assert into_closed_pipe(args) == (141, "")


def test_reap_json_into_a_closed_pipe_is_quiet(zombie_parent) -> None:
    parent = zombie_parent(2)
    assert into_closed_pipe(["reap", "--pid", str(parent.pid), "--dry-run", "--json"]) == (141, "")


# Modules that still read /proc themselves, each to move onto zombiectl.proc; the list
# only shrinks.
READS_PROC_ITSELF: set[str] = set()


def _builds_proc_path(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return any(
        isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
        and ("/proc/" in node.value or node.value == "/proc")
        for node in ast.walk(tree)
    )


def test_only_proc_builds_proc_paths() -> None:
    builders = {
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if path.relative_to(PACKAGE).parts[0] != "proc" and _builds_proc_path(path)
    }
    assert builders <= READS_PROC_ITSELF, sorted(builders - READS_PROC_ITSELF)


# The system calls Python leaves to ctypes, and the pidfd ones it wraps: only
# zombiectl.proc makes them.
SYSTEM_CALLS = {"ctypes", "pidfd_open", "pidfd_send_signal", "setns", "prctl"}


def _system_calls(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in SYSTEM_CALLS)
        elif isinstance(node, ast.Attribute) and node.attr in SYSTEM_CALLS:
            found.add(node.attr)
        elif isinstance(node, ast.Constant) and node.value in SYSTEM_CALLS:
            found.add(str(node.value))  # getattr(libc, "setns")
    return found


def test_only_proc_makes_system_calls() -> None:
    makers = {
        path.relative_to(PACKAGE).as_posix(): sorted(calls)
        for path in PACKAGE.rglob("*.py")
        if path.relative_to(PACKAGE).parts[0] != "proc" and (calls := _system_calls(path))
    }
    assert makers == {}


@pytest.mark.parametrize(
    "args",
    [
        ["list", "--json"],
        ["list"],
        ["watch", "--once", "--json"],
        ["watch", "--once"],
        ["reap", "--dry-run", "--json"],
        ["reap", "--yes", "--json", "--timeout", "0.2"],
        ["check", "--json", "--", "true"],
        ["check", "--", "true"],
    ],
    ids=" ".join,
)
def test_output_not_drawn_imports_no_rich(zombie_parent, args: list[str]) -> None:
    """JSON, and lines written to a pipe, are not drawn: rich is not imported for them.

    Scoped to one parent of our own: a name only rich can measure (wide characters,
    which other tests give their processes) rightly sends a piped table to rich."""
    parent = zombie_parent(2)
    if args[0] != "check":
        args = [*args, "--pid", str(parent.pid)]
    code = (
        "import sys\n"
        "from zombiectl.main import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit:\n"
        "    pass\n"
        "sys.stderr.write(f\"rich imported: {'rich' in sys.modules}\\n\")\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    res = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=GLOBAL_TIMEOUT,
    )
    assert res.stderr.splitlines()[-1] == "rich imported: False", res.stderr
