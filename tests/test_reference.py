"""docs/reference.md names every command, option, metric and exit code, states the error
line and the JSON fields of `list`, `watch`, `reap`, `doctor` and `check`, so none can
drift."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from containers import pid_namespace
from proctools import unshare_works

from zombiectl import errors, stdout
from zombiectl.cli import cli
from zombiectl.listing import render_text as text

REFERENCE = (Path(__file__).resolve().parent.parent / "docs" / "reference.md").read_text()


def _commands() -> Iterator[tuple[str, click.Command]]:
    """Every click command under the root, demo's strategy subcommands included."""
    ctx = click.Context(cli)

    def walk(path: str, cmd: click.Command) -> Iterator[tuple[str, click.Command]]:
        yield path, cmd
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                assert sub is not None, name
                yield from walk(f"{path} {name}", sub)

    yield from walk("zombiectl", cli)


COMMANDS = list(_commands())
OPTIONS = sorted(
    {
        (path, flag)
        for path, cmd in COMMANDS
        for param in cmd.params
        if isinstance(param, click.Option)
        for flag in [*param.opts, *param.secondary_opts]
    }
)


def test_walk_finds_every_command_and_demo_strategy() -> None:
    paths = {path for path, _ in COMMANDS}
    assert {"zombiectl list", "zombiectl run", "zombiectl check"} <= paths
    assert {"zombiectl demo fork", "zombiectl demo server", "zombiectl demo all"} <= paths


@pytest.mark.parametrize(("path", "flag"), OPTIONS)
def test_every_option_is_in_the_reference(path: str, flag: str) -> None:
    # As the reference writes an option: in backquotes, alone or with its metavar.
    assert re.search(rf"`{re.escape(flag)}[` ]", REFERENCE), f"{path}: {flag} is not documented"


@pytest.mark.parametrize("path", sorted({p for p, _ in COMMANDS if p.count(" ") == 1}))
def test_every_command_has_a_section(path: str) -> None:
    assert re.search(rf"^### `{re.escape(path)}\b", REFERENCE, re.M), path


def test_every_metric_is_in_the_reference() -> None:
    source = Path(text.__file__).read_text()
    metrics = set(re.findall(r"\"(zombiectl_[a-z_]+)\"", source))
    assert len(metrics) >= 6
    for metric in metrics:
        assert f"`{metric}`" in REFERENCE, metric


def test_every_exit_code_is_in_the_reference() -> None:
    table = REFERENCE.split("## Exit codes", 1)[1]
    codes = {v for k, v in [*vars(errors).items(), *vars(stdout).items()] if k.startswith("EXIT_")}
    for code in codes:
        assert re.search(rf"^\| (\d+ / )?{code}( / \d+)? \|", table, re.M), code


# --------------------------------------------------------------------------- error lines


def _error_formats() -> tuple[str, str]:
    """The two error-line formats the reference states: a plain error and bad usage."""
    sentence = REFERENCE.split("errors are one line on stderr", 1)[1]
    plain, usage = re.findall(r"`(zombiectl[^`]*: error: …[^`]*)`", sentence)[:2]
    return plain, usage


def test_an_error_line_reads_as_the_reference_says(zombiectl, zombie_parent) -> None:
    plain, _ = _error_formats()
    prefix = plain.split("…", 1)[0]
    beyond_any_pid = str(2**22 + 1)  # above the largest pid_max Linux allows
    held = zombie_parent(1)
    for args, code in [
        (["list", "--pid", beyond_any_pid], errors.EXIT_NO_PROCESS),
        # Not a terminal and no --yes: no consent, nothing signalled.
        (["reap", "--pid", str(held.pid)], errors.EXIT_USAGE),
    ]:
        res = zombiectl(*args, stdin=subprocess.DEVNULL)
        assert res.returncode == code, (args, res.stderr)
        assert res.stderr.count("\n") == 1 and res.stderr.startswith(prefix), res.stderr


def test_a_usage_error_line_reads_as_the_reference_says(zombiectl) -> None:
    _, usage = _error_formats()
    head, tail = (part.replace("CMD", "list") for part in usage.split("…", 1))
    res = zombiectl("list", "--pid", "abc")
    assert res.returncode == errors.EXIT_USAGE
    line = res.stderr.rstrip("\n")
    assert "\n" not in line and line.startswith(head) and line.endswith(tail), line


# --------------------------------------------------------------------------- JSON fields
#
# The JSON blocks of the reference are a notation, not JSON: `"key": type`, `"key"` alone
# (a field whose value is not spelled out), `"key"?` (present only in some runs, the prose
# says when), `"a|b"` (one of these strings), `A | B` (either), and `...` (more, not
# listed). Each block is read into a small schema, and real output of real runs is held
# against it both ways: every field documented appears, every field that appears is
# documented.


@dataclass
class Obj:
    fields: dict[str, tuple[bool, object]]  # name -> (optional, schema)
    open: bool = False


@dataclass
class Arr:
    item: object


@dataclass
class Choice:
    """`A | B`: alternatives; a string literal `"a|b"` is a Choice of its words."""

    options: list[object]
    words: frozenset[str] = frozenset()


ANY = None  # a scalar type word (int, str, ...), or a value the block leaves open (`...`)
_TOKEN = re.compile(r'\s*("(?:[^"\\]|\\.)*"\??|\.\.\.|[{}\[\]:,|]|[A-Za-z_][\w]*)')


def _tokens(block: str) -> list[str]:
    out, pos = [], 0
    while pos < len(block.rstrip()):
        m = _TOKEN.match(block, pos)
        assert m, f"cannot read the reference's JSON block at: {block[pos : pos + 40]!r}"
        out.append(m.group(1))
        pos = m.end()
    return out


class _Reader:
    def __init__(self, block: str) -> None:
        self.toks = _tokens(block)
        self.i = 0

    def peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.toks[self.i]
        assert expected is None or tok == expected, f"expected {expected!r}, read {tok!r}"
        self.i += 1
        return tok

    def value(self) -> object:
        options = [self.single()]
        while self.peek() == "|":
            self.take("|")
            options.append(self.single())
        return options[0] if len(options) == 1 else Choice(options)

    def single(self) -> object:
        tok = self.take()
        if tok == "{":
            return self.obj()
        if tok == "[":
            item = ANY if self.peek() == "..." else self.value()
            if self.peek() == "...":
                self.take("...")
            self.take("]")
            return Arr(item)
        if tok.startswith('"'):
            return Choice([], frozenset(tok.strip('"').split("|")))
        return ANY  # int, str, float, bool, null, true, false, ...

    def obj(self) -> Obj:
        schema = Obj({})
        while (tok := self.take()) != "}":
            if tok == ",":
                continue
            if tok == "...":
                schema.open = True
                continue
            assert tok.startswith('"'), f"expected a field name, read {tok!r}"
            optional = tok.endswith("?")
            name = tok.rstrip("?").strip('"')
            value = ANY
            if self.peek() == ":":
                self.take(":")
                value = self.value()
            schema.fields[name] = (optional, value)
        return schema


def json_blocks(command: str) -> list[Obj]:
    """The JSON blocks of a command's section, in order, read into schemas."""
    section = re.split(rf"^### `zombiectl {command}\b", REFERENCE, flags=re.M)[1]
    section = re.split(r"^##", section, flags=re.M)[0]
    blocks = re.findall(r"^```\n(\{.*?)^```", section, flags=re.M | re.S)
    schemas = []
    for block in blocks:
        reader = _Reader(block)
        reader.take("{")
        schemas.append(reader.obj())
    return schemas


def _also(base: Obj, extra: Obj) -> Obj:
    """base, and extra's fields where the text says an object "also has" them (optional)."""
    more = {name: (True, sub) for name, (_, sub) in extra.fields.items()}
    return Obj({**base.fields, **more}, base.open or extra.open)


def mismatches(schema: object, value: object, path: str = "") -> list[str]:
    """Where value (real output) and schema (the reference) disagree; [] when they agree."""
    if schema is ANY or value is None:
        return []
    if isinstance(schema, Choice):
        if isinstance(value, str) and schema.words:
            return [] if value in schema.words else [f"{path}: {value!r} not in {schema.words}"]
        fitting = [o for o in schema.options if isinstance(o, Obj) == isinstance(value, dict)]
        fitting = [o for o in fitting if isinstance(o, Arr) == isinstance(value, list)]
        return mismatches(fitting[0], value, path) if fitting else []
    if isinstance(schema, Arr):
        assert isinstance(value, list), f"{path}: a list is documented, {value!r} is real"
        return [m for i, v in enumerate(value) for m in mismatches(schema.item, v, f"{path}[{i}]")]
    assert isinstance(schema, Obj)
    assert isinstance(value, dict), f"{path}: an object is documented, {value!r} is real"
    # In an open object (`{"R": int, ...}`) the keys vary and those listed are examples.
    out = [
        f"{path}.{name}: documented, missing from real output"
        for name, (optional, _) in schema.fields.items()
        if not optional and not schema.open and name not in value
    ]
    if not schema.open:
        out += [
            f"{path}.{name}: in real output, not documented"
            for name in value
            if name not in schema.fields
        ]
    for name, (_, sub) in schema.fields.items():
        if name in value:
            out += mismatches(sub, value[name], f"{path}.{name}")
    return out


def seen_fields(value: object, path: str = "") -> set[str]:
    """Every field path in a real output (list items merged), to know each was exercised."""
    out: set[str] = set()
    if isinstance(value, dict):
        for name, sub in value.items():
            out.add(f"{path}.{name}")
            out |= seen_fields(sub, f"{path}.{name}")
    elif isinstance(value, list):
        for sub in value:
            out |= seen_fields(sub, path)
    return out


def documented_fields(schema: object, path: str = "") -> set[str]:
    out: set[str] = set()
    if isinstance(schema, Choice):
        for option in schema.options:
            out |= documented_fields(option, path)
    elif isinstance(schema, Arr):
        out |= documented_fields(schema.item, path)
    elif isinstance(schema, Obj) and not schema.open:
        for name, (_, sub) in schema.fields.items():
            out.add(f"{path}.{name}")
            out |= documented_fields(sub, path + "." + name)
    return out


def hold(schema: Obj, outputs: list[str]) -> None:
    """Every output agrees with schema, and together they show every documented field."""
    seen: set[str] = set()
    for out in outputs:
        value = json.loads(out)
        problems = mismatches(schema, value)
        assert not problems, "\n".join([*problems, out])
        seen |= seen_fields(value)
    assert documented_fields(schema) - seen == set(), "documented but never seen in these runs"


def test_the_notation_reader_sees_what_a_block_says() -> None:
    reader = _Reader('{"a": int, "b"?: [{"c", "d": "x|y"}], "e": null | {"f": {...}}, ...}')
    reader.take("{")
    schema = reader.obj()
    assert schema.open and list(schema.fields) == ["a", "b", "e"]
    assert schema.fields["b"][0] and not schema.fields["a"][0]
    # Open: the keys listed are examples, and others may come.
    assert documented_fields(schema) == set()
    assert mismatches(schema, {"z": 2}) == []
    closed = Obj(dict(schema.fields))
    assert documented_fields(closed) == {".a", ".b", ".b.c", ".b.d", ".e", ".e.f"}
    assert mismatches(closed, {"a": 1, "e": None, "z": 2}) == [".z: in real output, not documented"]
    assert mismatches(closed, {"e": {"f": {}}}) == [".a: documented, missing from real output"]
    (wrong,) = mismatches(closed, {"a": 1, "e": None, "b": [{"c": 1, "d": "z"}]})
    assert wrong.startswith(".b[0].d: 'z' not in")


def _json(zombiectl, *args: str, codes: tuple[int, ...] = (0,)) -> str:
    res = zombiectl(*args, stdin=subprocess.DEVNULL)
    assert res.returncode in codes, (args, res.returncode, res.stderr)
    return res.stdout


needs_unshare = pytest.mark.skipif(
    not unshare_works(), reason="needs root and `unshare --pid` (a container to attribute)"
)


@needs_unshare
def test_list_json_fields_are_the_reference(zombiectl, zombie_parent) -> None:
    plain, by_container = json_blocks("list")
    host = zombie_parent(2)
    with pid_namespace(2) as ns_init:
        runs = [
            _json(zombiectl, "list", "--json", "--pid", str(host.pid)),
            _json(zombiectl, "list", "--json", "--pid", str(ns_init)),
        ]
        hold(plain, runs)
        runs.append(_json(zombiectl, "list", "--json", "--by", "container", "--pid", str(ns_init)))
        runs.append(_json(zombiectl, "list", "--json", "--by", "container", "--pid", str(host.pid)))
    hold(_also(plain, by_container), runs)


def test_watch_json_fields_are_the_reference(zombiectl, zombie_parent) -> None:
    (schema,) = json_blocks("watch")
    held = zombie_parent(2)
    runs = [
        _json(zombiectl, "watch", "--json", "--once", "--pid", str(held.pid)),
        _json(zombiectl, "watch", "--json", "--once"),
    ]
    hold(schema, runs)


def test_reap_json_fields_are_the_reference(zombiectl, parent) -> None:
    (schema,) = json_blocks("reap")
    reaps = parent("all", 2)
    refused = f"--pid={os.getpid()}"  # an ancestor of zombiectl: refused, never signalled
    runs = [
        _json(zombiectl, "reap", "--json", "--dry-run", "--pid", str(reaps.pid), refused),
        _json(zombiectl, "reap", "--json", "--yes", "--pid", str(reaps.pid), refused, codes=(1,)),
    ]
    hold(schema, runs)


@needs_unshare
def test_doctor_json_fields_are_the_reference(zombiectl, zombie_parent) -> None:
    machine, containers = json_blocks("doctor")
    zombie_parent(1)
    runs = [
        _json(zombiectl, "doctor", "--json", "--timeout", "10", codes=(0, 1)),
        _json(zombiectl, "doctor", "--json", "--no-probe", codes=(0, 1)),
    ]
    hold(machine, runs)
    with pid_namespace(1) as init:
        run = _json(zombiectl, "doctor", "--containers", "--json", "--timeout", "0.2", codes=(0, 1))
        ours = [c["id"] for c in json.loads(run)["containers"] if c["init_pid"] == init]
        assert ours, run
        # The probe's fields appear only with --probe (root), aimed at this namespace alone.
        probed = _json(
            zombiectl,
            "doctor",
            "--containers",
            "--probe",
            "--container",
            ours[0],
            "--json",
            "--timeout",
            "0.5",
            codes=(0, 1),
        )
    hold(containers, [run, probed])


def test_check_json_fields_are_the_reference(zombiectl, zombie_parent) -> None:
    (schema,) = json_blocks("check")
    held = zombie_parent(2)
    runs = [
        _json(
            zombiectl, "check", "--json", "--", "sh", "-c", "sleep 0.1 & exec sleep 0.5", codes=(1,)
        ),
        _json(
            zombiectl, "check", "--json", "--pid", str(held.pid), "--duration", "0.3", codes=(1,)
        ),
    ]
    hold(schema, runs)
