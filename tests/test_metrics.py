"""Prometheus metrics: the exposition checked by the reference parser, `--textfile` written
atomically, the contrib rules and units, and node_exporter + prometheus for real."""

from __future__ import annotations

import errno
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from peers import require_peer
from proctools import GLOBAL_TIMEOUT, in_top, roomy_top, wait_until
from promstack import (
    GrowingParent,
    comm_of,
    families,
    node_exporter,
    prometheus,
    sample,
)

from zombiectl.cli import cli, run_cli
from zombiectl.errors import BadUsage, OutputFailed, PermissionDenied, ZombiectlError
from zombiectl.fastpath import dispatch, parse_list
from zombiectl.listing import textfile
from zombiectl.listing.cli import command as list_command
from zombiectl.listing.output import resolve_format
from zombiectl.listing.render_text import DEFAULT_TOP, listing_prometheus
from zombiectl.listing.zombies import ListResult
from zombiectl.proc.table import ParentZombies
from zombiectl.untrusted import display

ROOT = Path(__file__).resolve().parent.parent
CONTRIB = ROOT / "contrib"
RULES = CONTRIB / "prometheus" / "zombiectl-rules.yml"
METRICS = {
    "zombiectl_processes",
    "zombiectl_zombies",
    "zombiectl_zombie_parents",
    "zombiectl_zombies_by_parent",
    "zombiectl_zombies_by_container",
    "zombiectl_container_zombies",
    "zombiectl_container_init_zombies",
    "zombiectl_container_pids",
    "zombiectl_container_pids_max",
    "zombiectl_scan_duration_seconds",
}
# The bytes a process name may hold that the exposition format must escape, and more.
WEIRD_NAME = 'z"q\\x\ny) é'


@pytest.fixture
def growing_parent() -> Iterator[type[GrowingParent]]:
    made: list[GrowingParent] = []

    def make(name: str = "") -> GrowingParent:
        parent = GrowingParent(name)
        made.append(parent)
        return parent

    yield make  # type: ignore[misc]
    for parent in made:
        parent.close()


def by_parent(fams: dict[str, list]) -> dict[str, object]:
    return {s.labels["ppid"]: s for s in fams.get("zombiectl_zombies_by_parent", [])}


# --------------------------------------------------------------------------- the exposition


def test_exposition_of_real_zombies_parses_with_the_reference_parser(
    zombie_parent, growing_parent, zombiectl
) -> None:
    plain = zombie_parent(3)
    weird = growing_parent(WEIRD_NAME)
    weird.grow(2)
    assert comm_of(weird.pid) == WEIRD_NAME  # the kernel kept every byte
    res = zombiectl("list", "--format", "prometheus", "--top", str(roomy_top()))
    assert res.returncode == 0, res.stderr
    from prometheus_client.parser import text_string_to_metric_families

    parsed = list(text_string_to_metric_families(res.stdout))
    assert {f.name for f in parsed} == METRICS
    for fam in parsed:
        assert fam.type == "gauge" and fam.documentation, fam
    fams = families(res.stdout)
    series = by_parent(fams)
    assert series[str(plain.pid)].value == 3
    assert series[str(weird.pid)].value == 2
    # The label is the name as a screen shows it: the newline as the two characters \n.
    assert series[str(weird.pid)].labels["parent"] == display(WEIRD_NAME) == 'z"q\\x\\ny) é'
    # One label set for every series: what an operator's queries and recording rules rely on.
    assert {frozenset(s.labels) for s in series.values()} == {
        frozenset({"ppid", "parent", "container", "init"})
    }
    assert sample(fams, "zombiectl_zombies") >= 5
    assert sample(fams, "zombiectl_zombie_parents") >= len(series) >= 2


def test_top_limits_the_parent_series_and_keeps_the_biggest(zombie_parent, zombiectl) -> None:
    zombie_parent(1)
    zombie_parent(2)
    one = families(zombiectl("list", "--format", "prometheus", "--top", "1").stdout)
    (top,) = by_parent(one).values()
    assert top.value >= 2
    none = families(zombiectl("list", "--format", "prometheus", "--top", "0").stdout)
    assert none["zombiectl_zombies_by_parent"] == []  # HELP and TYPE, no series
    assert sample(none, "zombiectl_zombie_parents") >= 2


def test_at_most_20_parent_series_by_default() -> None:
    parents = [ParentZombies(100 + i, f"p{i}", "root", [1000 + i] * (30 - i)) for i in range(30)]
    fams = families(listing_prometheus(ListResult(999, 435, parents, 0.01)))
    series = by_parent(fams)
    assert len(series) == 20
    assert set(series) == {str(100 + i) for i in range(20)}  # the 20 biggest
    assert sample(fams, "zombiectl_zombie_parents") == 30
    assert len(by_parent(families(listing_prometheus(ListResult(9, 0, parents, 0), 25)))) == 25


@pytest.mark.parametrize(
    "name", ['a"b', "back\\slash", "\\n", '\\"', "ends\\", "é日本", ") (x", "[/]", ""]
)
def test_label_values_round_trip_through_the_parser(name) -> None:
    text = listing_prometheus(ListResult(5, 1, [ParentZombies(7, name, "u", [8])], 0.0))
    assert by_parent(families(text))["7"].labels["parent"] == name


@pytest.mark.parametrize(
    ("name", "shown"),
    [("new\nline", "new\\nline"), ("\x1b[2J", "\\x1b[2J"), ("a\tb\r", "a\\tb\\r"),
     ("rtl\u202e", "rtl\\u202e"), ("bad\\xff", "bad\\xff")],
)  # fmt: skip
def test_label_values_hold_control_characters_escaped_as_display_shows_them(name, shown) -> None:
    text = listing_prometheus(ListResult(5, 1, [ParentZombies(7, name, "u", [8])], 0.0))
    assert not any(ch < " " and ch != "\n" for ch in text)
    assert by_parent(families(text))["7"].labels["parent"] == shown == display(name)


def test_help_text_does_not_change_with_options_or_data() -> None:
    def metadata(text: str) -> list[str]:
        return [line for line in text.splitlines() if line.startswith("#")]

    few = ListResult(5, 1, [ParentZombies(7, "a", "u", [8])], 0.0)
    many = ListResult(50, 3, [ParentZombies(i, "b", "u", [i + 1]) for i in range(3)], 0.5)
    assert metadata(listing_prometheus(few, 20)) == metadata(listing_prometheus(many, 1))


# --------------------------------------------------------------------------- fast and click


AGREEMENT_CASES = [
    [],
    ["--json"],
    ["--format", "prometheus"],
    ["--format=prometheus", "--top=3"],
    ["--top", "0", "--format", "prometheus"],
    ["--pid", "1", "--max", "7", "--json"],
    ["--json", "--format", "prometheus"],
    ["--textfile", "/tmp/x.prom"],
    ["--textfile=/tmp/x.prom", "--top", "5", "--max=2"],
    ["--format", "prometheus", "--textfile", "rel.prom"],
    ["--textfile", "a b.prom", "--textfile", "c.prom"],
    ["--top", "²"],
    ["--top", "-1"],
    ["--textfile"],
    ["--textfile", "--json"],
    ["--textfile="],
    ["--json=1"],
    ["--format", "xml"],
    ["--pid", "0"],
    ["-h"],
    ["--", "--json"],
]


@pytest.mark.parametrize("args", AGREEMENT_CASES, ids=" ".join)
def test_fast_parser_agrees_with_click(args) -> None:
    fast = parse_list(args)
    try:
        ctx = list_command.make_context("list", list(args), resilient_parsing=False)
    except (click.UsageError, click.exceptions.Exit):
        assert fast is None, "the fast path accepts what click refuses"
        return
    if fast is not None:
        assert fast == ctx.params


def test_fast_parser_knows_every_click_option() -> None:
    fast = parse_list([])
    assert fast is not None
    assert set(fast) == {p.name for p in list_command.params if p.name != "help"}


@pytest.mark.parametrize(
    ("fmt", "as_json", "textfile", "expected"),
    [
        (None, False, None, "table"),
        (None, True, None, "json"),
        ("prometheus", True, None, "json"),
        (None, False, "x.prom", "prometheus"),
        ("prometheus", False, "x.prom", "prometheus"),
        ("json", False, "x.prom", BadUsage),
        ("table", False, "x.prom", BadUsage),
        (None, True, "x.prom", BadUsage),
    ],
)
def test_resolve_format(fmt, as_json, textfile, expected) -> None:
    if expected is BadUsage:
        with pytest.raises(BadUsage, match="--textfile writes the prometheus format"):
            resolve_format(fmt, as_json, textfile)
    else:
        assert resolve_format(fmt, as_json, textfile) == expected


def test_fast_path_writes_textfile_without_click_rich_or_psutil(tmp_path, zombie_parent) -> None:
    parent = zombie_parent(2)
    out = tmp_path / "z.prom"
    code = (
        "import sys\n"
        "from zombiectl.main import main\n"
        "try:\n"
        f"    main(['list', '--textfile', {str(out)!r}, '--top', '1', '--pid', '{parent.pid}'])\n"
        "except SystemExit as e:\n"
        "    heavy = sorted({m.split('.')[0] for m in sys.modules} & {'click', 'rich', 'psutil'})\n"
        "    print(e.code, heavy)\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=GLOBAL_TIMEOUT
    )
    assert res.stdout.strip() == "0 []", res.stderr
    assert by_parent(families(out.read_text()))[str(parent.pid)].value == 2


def test_fast_and_click_paths_write_the_same_textfile(tmp_path, zombie_parent, zombiectl) -> None:
    parent = zombie_parent(3)
    fast, slow = tmp_path / "fast.prom", tmp_path / "slow.prom"
    args = ["list", "--pid", str(parent.pid), "--top", "5"]
    assert zombiectl(*args, "--textfile", str(fast)).returncode == 0
    res = CliRunner().invoke(cli, [*args, "--format", "prometheus", "--textfile", str(slow)])
    assert res.exit_code == 0 and res.output == ""

    def stable(path: Path) -> list[str]:
        return [
            line
            for line in path.read_text().splitlines()
            if not line.startswith(("zombiectl_processes ", "zombiectl_scan_duration_seconds "))
        ]

    assert stable(fast) == stable(slow)
    assert f'zombiectl_zombies_by_parent{{ppid="{parent.pid}",' in fast.read_text()


def test_max_still_applies_with_textfile(tmp_path, zombie_parent, zombiectl) -> None:
    parent = zombie_parent(2)
    out = tmp_path / "z.prom"
    res = zombiectl("list", "--pid", str(parent.pid), "--max", "1", "--textfile", str(out))
    assert res.returncode == 1 and res.stdout == "" and res.stderr == ""
    assert sample(families(out.read_text()), "zombiectl_zombies") == 2


# --------------------------------------------------------------------------- --textfile


def _payload(tag: str, lines: int = 4000) -> bytes:
    body = "".join(
        f'zombiectl_zombies_by_parent{{ppid="{i}",parent="{tag}"}} {i}\n' for i in range(lines)
    )
    return f"# {tag}\n{body}# end {tag}\n".encode()


def test_a_reader_never_sees_a_partial_file(tmp_path) -> None:
    path = tmp_path / "z.prom"
    versions = {_payload("a"), _payload("b")}
    textfile.write_atomically(str(path), _payload("a"))
    seen: list[bytes] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            seen.append(path.read_bytes())

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(100):
            textfile.write_atomically(str(path), _payload("ab"[i % 2]))
    finally:
        stop.set()
        thread.join()
    assert len(seen) > 10
    bad = [s for s in seen if s not in versions]
    assert not bad, f"{len(bad)} of {len(seen)} reads saw a partial file"
    assert os.listdir(tmp_path) == ["z.prom"]


def test_new_file_is_readable_by_node_exporter_whatever_the_umask(tmp_path) -> None:
    path = tmp_path / "z.prom"
    old = os.umask(0o077)
    try:
        textfile.write_atomically(str(path), b"zombiectl_zombies 1\n")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
    path.chmod(0o640)
    textfile.write_atomically(str(path), b"zombiectl_zombies 2\n")
    assert path.stat().st_mode & 0o777 == 0o640  # an operator's choice is kept
    assert path.read_bytes() == b"zombiectl_zombies 2\n"


@pytest.mark.parametrize("failing", ["write", "fsync", "replace"])
def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch, failing):
    # A full disk is hard to cause for real; the error path is what matters here.
    path = tmp_path / "z.prom"
    path.write_bytes(b"old\n")

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(textfile.os, failing, boom)
    with pytest.raises(ZombiectlError) as info:
        textfile.write_atomically(str(path), b"new\n")
    monkeypatch.undo()
    # A full disk: the documented exit 74 (EX_IOERR), not 1, which means "--max exceeded".
    assert type(info.value) is OutputFailed and info.value.exit_code == 74
    assert "No space left on device" in str(info.value)
    assert path.read_bytes() == b"old\n"
    assert os.listdir(tmp_path) == ["z.prom"]


def test_interrupted_write_leaves_no_temporary(tmp_path, monkeypatch) -> None:
    path = tmp_path / "z.prom"

    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(textfile.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        textfile.write_atomically(str(path), b"new\n")
    assert os.listdir(tmp_path) == []


def test_a_stale_temporary_with_our_pid_is_not_reused(tmp_path) -> None:
    path = tmp_path / "z.prom"
    stale = tmp_path / f".z.prom.{os.getpid()}.0.tmp"
    stale.write_bytes(b"someone else's\n")
    textfile.write_atomically(str(path), b"zombiectl_zombies 0\n")
    assert stale.read_bytes() == b"someone else's\n"
    assert sorted(os.listdir(tmp_path)) == sorted([stale.name, "z.prom"])


@pytest.mark.parametrize(
    ("target", "code", "needle"),
    [
        ("missing/z.prom", 2, "directory does not exist"),
        ("z.txt", 2, "must name a *.prom file"),
        ("z.prom.tmp", 2, "must name a *.prom file"),
        ("adir.prom", 2, "is a directory"),
        ("afile.prom/z.prom", 2, "is not a directory"),
        ("/sys/zombiectl.prom", 4, "cannot write to /sys"),
        ("/proc/zombiectl.prom", 4, "cannot create files in /proc"),
    ],
)
@pytest.mark.parametrize("path", ["fast", "click"])
def test_bad_textfile_is_one_line_and_leaves_nothing(
    tmp_path, zombiectl, capsys, monkeypatch, target, code, needle, path
) -> None:
    (tmp_path / "adir.prom").mkdir()
    (tmp_path / "afile.prom").write_text("x")
    before = sorted(os.listdir(tmp_path))
    if path == "fast":
        res = zombiectl("list", "--textfile", target, cwd=tmp_path)
        rc, out, err = res.returncode, res.stdout, res.stderr
    else:
        monkeypatch.chdir(tmp_path)
        rc = run_cli(["list", "--format", "prometheus", "--textfile", target])
        out, err = capsys.readouterr()
    assert rc == code, err
    assert err.count("\n") == 1 and needle in err, err
    assert err.startswith("zombiectl: error: ") and out == ""
    assert sorted(os.listdir(tmp_path)) == before


def test_textfile_with_json_is_a_usage_error(tmp_path, zombiectl) -> None:
    res = zombiectl("list", "--json", "--textfile", str(tmp_path / "z.prom"))
    assert res.returncode == 2
    assert res.stderr.startswith("zombiectl list: error: --textfile writes the prometheus format")
    assert os.listdir(tmp_path) == []


@pytest.fixture
def reachable_dir() -> Iterator[Path]:
    """A directory any user can reach (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="zombiectl-test-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


def _as_unprivileged(args: list[str], use_click: bool) -> tuple[int, str]:
    """Run `list ARGS` in a forked child that is not root (nobody, when we are root)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        rc = 99
        try:
            os.close(r)
            os.dup2(w, 2)
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
            # pytest's capture replaced sys.stdout and sys.stderr: back to the real fds.
            sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
            sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
            rc = run_cli(["list", *args]) if use_click else dispatch(["list", *args])
        finally:
            sys.stderr.flush()
            os._exit(rc if isinstance(rc, int) else 98)
    os.close(w)
    with os.fdopen(r) as f:
        err = f.read()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), err


@pytest.mark.parametrize("use_click", [False, True], ids=["fast", "click"])
def test_unwritable_directory_exits_4_as_an_ordinary_user(reachable_dir, use_click) -> None:
    if os.geteuid() != 0:
        reachable_dir.chmod(0o555)
    target = reachable_dir / "z.prom"
    code, err = _as_unprivileged(["--format", "prometheus", "--textfile", str(target)], use_click)
    assert code == 4, err
    assert err == f"zombiectl: error: cannot write to {reachable_dir}: Permission denied\n"
    assert os.listdir(reachable_dir) == []


def test_unreachable_directory_exits_4_not_2(reachable_dir) -> None:
    private = reachable_dir / "private"
    (private / "sub").mkdir(parents=True)
    private.chmod(0o700 if os.geteuid() == 0 else 0o000)
    try:
        code, err = _as_unprivileged(["--textfile", str(private / "sub" / "z.prom")], False)
    finally:
        private.chmod(0o700)
    assert code == 4, err
    assert err == f"zombiectl: error: cannot write to {private / 'sub'}: Permission denied\n"


def test_write_errors_map_to_exit_codes() -> None:
    enospc = OSError(errno.ENOSPC, "No space left on device")
    assert type(textfile._error(enospc, "/x/z.prom")) is OutputFailed
    assert type(textfile._error(OSError(errno.EBUSY, "busy"), "/x/z.prom")) is ZombiectlError
    assert isinstance(textfile._error(OSError(errno.EROFS, "ro"), "/x/z.prom"), PermissionDenied)


# --------------------------------------------------------------------------- contrib and docs


def test_rules_file_passes_promtool_check_and_its_unit_tests() -> None:
    promtool = require_peer("promtool")
    check = subprocess.run(
        [promtool, "check", "rules", str(RULES)],
        capture_output=True,
        text=True,
        timeout=GLOBAL_TIMEOUT,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "5 rules found" in check.stdout
    tests = subprocess.run(
        [promtool, "test", "rules", "zombiectl-rules.test.yml"],
        capture_output=True,
        text=True,
        timeout=GLOBAL_TIMEOUT,
        cwd=RULES.parent,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr


def _exec_start() -> list[str]:
    unit = (CONTRIB / "systemd" / "zombiectl-textfile.service").read_text()
    (line,) = [x for x in unit.splitlines() if x.startswith("ExecStart=")]
    return line.removeprefix("ExecStart=").split()


def _cron_command() -> list[str]:
    lines = (CONTRIB / "cron" / "zombiectl").read_text().splitlines()
    (line,) = [x for x in lines if x and not x.startswith("#")]
    fields = line.split()
    assert fields[:6] == ["*", "*", "*", "*", "*", "root"]
    return fields[6:]


@pytest.mark.parametrize("command", [_exec_start, _cron_command], ids=["systemd", "cron"])
def test_shipped_command_lines_work(tmp_path, zombie_parent, command) -> None:
    parent = zombie_parent(2)
    argv = command()
    assert argv[0] == "/usr/local/bin/zombiectl"
    assert argv[-2:] == ["--textfile", "/var/lib/prometheus/node-exporter/zombiectl.prom"]
    out = tmp_path / "zombiectl.prom"
    argv = [sys.executable, "-m", "zombiectl", *argv[1:-1], str(out)]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=GLOBAL_TIMEOUT)
    assert res.returncode == 0 and res.stdout == "" and res.stderr == ""
    series = {int(k): s.value for k, s in by_parent(families(out.read_text())).items()}
    assert in_top(series, parent.pid, 2, top=DEFAULT_TOP)


def test_systemd_units_verify(tmp_path) -> None:
    analyze = require_peer("systemd-analyze")
    zombiectl_bin = shutil.which("zombiectl", path=str(Path(sys.executable).parent))
    if zombiectl_bin is None:
        pytest.skip("no zombiectl script beside this interpreter")
    units = []
    for src in sorted((CONTRIB / "systemd").iterdir()):
        dst = tmp_path / src.name
        # verify insists that ExecStart's program exists here.
        dst.write_text(src.read_text().replace("/usr/local/bin/zombiectl", zombiectl_bin))
        units.append(str(dst))
    res = subprocess.run(
        [analyze, "verify", "--man=no", *units],
        capture_output=True,
        text=True,
        timeout=GLOBAL_TIMEOUT,
    )
    assert res.returncode == 0 and res.stderr == "", res.stderr


def test_fleet_guide_links_the_shipped_files_and_shows_their_command() -> None:
    guide = (ROOT / "docs" / "fleet.md").read_text()
    for path in [
        CONTRIB / "systemd" / "zombiectl-textfile.service",
        CONTRIB / "systemd" / "zombiectl-textfile.timer",
        CONTRIB / "cron" / "zombiectl",
        RULES,
    ]:
        assert f"(../{path.relative_to(ROOT).as_posix()})" in guide, f"no link to {path.name}"
    # The command both run, as the guide shows it on a line of its own.
    assert f"\n{' '.join(_cron_command())}\n" in guide
    assert f"\n{' '.join(_exec_start())}\n" in guide


# --------------------------------------------------------------------------- the real stack


def _adapt(expr: str, threshold: float) -> str:
    """The rule's expression with the threshold of its final comparison replaced."""
    adapted, n = re.subn(r">\s*-?[0-9.]+\s*$", f"> {threshold}", expr.strip())
    assert n == 1, f"rule expression no longer ends in a comparison: {expr}"
    return adapted


def _scrape_until_readers_agree(ne, write) -> dict[str, list]:
    """Write the textfile and scrape, until zombiectl and node_exporter (each scanning at
    its own moment) count the same zombies: other suites make zombies concurrently."""
    fams: dict[str, list] = {}
    pairs = []

    def agree() -> bool:
        nonlocal fams
        write()
        fams = families(ne.get("/metrics"))
        pair = (sample(fams, "zombiectl_zombies"), sample(fams, "node_processes_state", state="Z"))
        pairs.append(pair)
        return pair[0] is not None and pair[0] == pair[1]

    assert wait_until(agree, interval=0.2), (
        f"zombiectl vs node_exporter never agreed: {pairs[-10:]}"
    )
    return fams


@pytest.mark.slow
def test_node_exporter_and_prometheus_see_the_zombies(
    tmp_path, zombie_parent, growing_parent, zombiectl
) -> None:
    ne_bin = require_peer("node_exporter")
    prom_bin = require_peer("prometheus")
    textdir = tmp_path / "textfile"
    textdir.mkdir()
    prom_file = textdir / "zombiectl.prom"

    def write() -> None:
        res = zombiectl(
            "list", "--format", "prometheus", "--top", top, "--textfile", str(prom_file)
        )
        assert res.returncode == 0 and res.stdout == "" and res.stderr == "", res.stderr

    known = zombie_parent(5)
    top = str(roomy_top())
    grower = growing_parent()
    grower.grow(1)
    with node_exporter(ne_bin, textdir, tmp_path / "node_exporter.log") as ne:
        fams = _scrape_until_readers_agree(ne, write)
        assert sample(fams, "zombiectl_zombies") >= 6
        assert sample(fams, "zombiectl_zombies_by_parent", ppid=str(known.pid)) == 5
        assert sample(fams, "zombiectl_zombies_by_parent", ppid=str(grower.pid)) == 1
        assert sample(fams, "node_textfile_scrape_error") == 0

        workdir = tmp_path / "prometheus"
        workdir.mkdir()
        with prometheus(prom_bin, ne.address, RULES, workdir) as prom:

            def grower_at(n: int) -> bool:
                result = prom.query(f'zombiectl_zombies_by_parent{{ppid="{grower.pid}"}}')
                return bool(result) and float(result[0]["value"][1]) == n

            assert wait_until(lambda: grower_at(1), interval=0.2), prom.log_tail()
            grower.grow(4)
            write()
            assert wait_until(lambda: grower_at(5), interval=0.2), prom.log_tail()

            rules = prom.alerting_rules()
            assert set(rules) == {
                "ZombiesHigh",
                "ZombieParentGrowing",
                "ContainerInitNotReaping",
                "ContainerPidsNearLimit",
                "ZombiectlTextfileStale",
            }
            for rule in rules.values():
                assert not rule.get("lastError"), rule

            # zombiectl_zombies > 50, with a threshold the test's own zombies exceed.
            high = prom.query(_adapt(rules["ZombiesHigh"]["query"], 5))
            assert len(high) == 1 and float(high[0]["value"][1]) >= 6
            assert not prom.query(_adapt(rules["ZombiesHigh"]["query"], 10**9))

            # delta(zombiectl_zombies_by_parent[30m]) > 20: the grower gained 4, the known
            # parent none.
            growth = prom.query(_adapt(rules["ZombieParentGrowing"]["query"], 3))
            grown = {r["metric"]["ppid"]: float(r["value"][1]) for r in growth}
            assert grown.get(str(grower.pid), 0) >= 4, growth
            assert str(known.pid) not in grown

            # The staleness rule's regex matches the file label node_exporter really sets.
            stale_query = rules["ZombiectlTextfileStale"]["query"]
            (fresh,) = prom.query(_adapt(stale_query, -3600))
            assert fresh["metric"]["file"].endswith("zombiectl.prom")
            assert not prom.query(stale_query)
