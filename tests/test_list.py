"""`zombiectl list`: parsing and errors through CliRunner, real zombies through subprocesses."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner
from proctools import GLOBAL_TIMEOUT, into_closed_pipe

from zombiectl.cli import cli, run_cli
from zombiectl.fastpath import parse_list
from zombiectl.listing.render_table import listing_footer
from zombiectl.listing.render_text import escape_label, listing_prometheus
from zombiectl.listing.zombies import ListResult
from zombiectl.proc.table import ParentZombies

NO_PID = str(2**22 + 7)  # above any pid_max


def comm_of(pid: int) -> str:
    with open(f"/proc/{pid}/comm") as f:
        return f.read().rstrip("\n")


def test_json_lists_real_zombies_by_parent(zombie_parent, zombiectl) -> None:
    parent = zombie_parent(4)
    res = zombiectl("list", "--json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert set(data) >= {"processes", "zombies", "parents"}
    mine = [p for p in data["parents"] if p["pid"] == parent.pid]
    assert mine == [
        {
            "pid": parent.pid,
            "name": comm_of(parent.pid),  # read here, not by zombiectl
            "user": pwd.getpwuid(os.getuid()).pw_name,  # this session started it
            "zombies": 4,
            "zombie_pids": parent.zombie_pids,
            "container": None,  # on the host
        }
    ]
    assert data["zombies"] >= 4 and data["processes"] > data["zombies"]


def test_pid_filter_and_max(zombie_parent, zombiectl) -> None:
    parent = zombie_parent(3)
    other = zombie_parent(2)
    res = zombiectl("list", "--json", "--pid", str(parent.pid))
    data = json.loads(res.stdout)
    assert [p["pid"] for p in data["parents"]] == [parent.pid]
    assert data["zombies"] == 3
    assert other.pid not in [p["pid"] for p in data["parents"]]
    assert zombiectl("list", "--pid", str(parent.pid), "--max", "3").returncode == 0
    over = zombiectl("list", "--pid", str(parent.pid), "--max", "2")
    assert over.returncode == 1
    assert str(parent.pid) in over.stdout


def test_table_output(zombie_parent, zombiectl) -> None:
    parent = zombie_parent(12)
    res = zombiectl("list", "--pid", str(parent.pid))
    assert res.returncode == 0
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["PARENT", "NAME", "USER", "ZOMBIES", "ZOMBIE", "PIDS"]
    row = lines[1].split()
    assert row[0] == str(parent.pid) and row[3] == "12"
    assert "(+4)" in lines[1]
    assert "1 parent leaks 12 zombies" in res.stdout
    assert "\x1b[" not in res.stdout  # piped: no colour


def test_prometheus_output_of_real_zombies(zombie_parent, zombiectl) -> None:
    parent = zombie_parent(3)
    res = zombiectl("list", "--format", "prometheus", "--pid", str(parent.pid))
    assert res.returncode == 0
    assert f'zombiectl_zombies_by_parent{{ppid="{parent.pid}",parent="python' in res.stdout
    assert "zombiectl_zombies 3\n" in res.stdout


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["list", "--pid", NO_PID], 3, "no such process"),
        (["list", "--json", "--pid", NO_PID], 3, "no such process"),
        (["list", "--pid", "abc"], 2, "not a process id"),
        (["list", "--pid", "-5"], 2, "not a process id"),
        (["list", "--pid", "0"], 2, "not a process id"),
        (["list", "--max", "-1"], 2, "--max"),
        (["list", "--format", "xml"], 2, "--format"),
        (["list", "--bogus"], 2, "--bogus"),
        (["nosuchcommand"], 2, "nosuchcommand"),
    ],
)
def test_errors_are_one_line_with_exit_code(zombiectl, args, code, needle) -> None:
    res = zombiectl(*args)
    assert res.returncode == code
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert needle in res.stderr
    assert "Traceback" not in res.stderr


def test_run_cli_maps_usage_errors_to_2(capsys) -> None:
    assert run_cli(["list", "--pid", "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("zombiectl list: error:") and err.count("\n") == 1


def test_help_has_an_example() -> None:
    res = CliRunner().invoke(cli, ["list", "--help"])
    assert res.exit_code == 0
    assert "zombiectl list --json" in res.output


def test_version(zombiectl) -> None:
    from zombiectl import __version__

    assert zombiectl("--version").stdout.strip() == f"zombiectl {__version__}"


def _fast(**changed: object) -> dict[str, object]:
    opts: dict[str, object] = {
        "pid": None,
        "max_zombies": None,
        "fmt": None,
        "as_json": False,
        "top": 20,
        "textfile": None,
        "by": "parent",
    }
    opts.update(changed)
    return opts


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--json"], _fast(as_json=True)),
        (["--format", "prometheus", "--top", "3"], _fast(fmt="prometheus", top=3)),
        (["--format=json", "--pid=12", "--max", "0"], _fast(fmt="json", pid=12, max_zombies=0)),
        (["--json", "--format", "prometheus"], _fast(fmt="prometheus", as_json=True)),
        (["--textfile", "/x/z.prom", "--top=0"], _fast(textfile="/x/z.prom", top=0)),
    ],
)
def test_fast_parser_accepts(args, expected) -> None:
    assert parse_list(args) == expected


@pytest.mark.parametrize(
    "args",
    [
        ["--pid", "x"],
        ["--pid", "0"],
        ["--help"],
        ["--max"],
        ["--pid", "-3"],
        ["--format", "xml"],
        ["extra"],
        ["--by", "pod"],
        ["--by"],
    ],
)
def test_fast_parser_defers_anything_unusual_to_click(args) -> None:
    assert parse_list(args) is None


def test_fast_and_click_paths_give_the_same_json(zombie_parent, zombiectl) -> None:
    parent = zombie_parent(2)
    fast = json.loads(zombiectl("list", "--json", "--pid", str(parent.pid)).stdout)
    slow = CliRunner().invoke(cli, ["list", "--json", "--pid", str(parent.pid)])
    slow_data = json.loads(slow.output)
    for d in (fast, slow_data):
        d.pop("scan_duration_seconds")
        d.pop("processes")
    assert fast == slow_data


def test_prometheus_escapes_label_values_and_honours_top() -> None:
    parents = [ParentZombies(10 + i, f'we"ird\\na\nme{i}', "root", [100 + i]) for i in range(5)]
    text = listing_prometheus(ListResult(50, 5, parents, 0.01), top=2)
    series = [line for line in text.splitlines() if line.startswith("zombiectl_zombies_by_parent{")]
    assert len(series) == 2
    # The label holds the name as a screen shows it: the real newline as the two
    # characters \n, each backslash then escaped for the exposition format.
    assert (
        series[0]
        == 'zombiectl_zombies_by_parent{ppid="10",parent="we\\"ird\\\\na\\\\nme0",container="",init="false"} 1'
    )
    assert escape_label('a"b') == 'a\\"b'


def test_footer_wording() -> None:
    assert listing_footer(ListResult(1, 0, [], 0.002)).startswith("no zombies among 1 process ")
    assert listing_footer(ListResult(9, 0, [], 0.002)).startswith("no zombies among 9 processes ")
    two = [ParentZombies(1, "a", "u", [2, 3]), ParentZombies(4, "b", "u", [5])]
    assert listing_footer(ListResult(9, 3, two, 0.002)).startswith(
        "2 parents leak 3 zombies among 9"
    )


def _hidepid_works() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("setpriv"):
        return False
    probe = subprocess.run(
        ["unshare", "--mount", "sh", "-c", "mount -t proc -o hidepid=invisible proc /proc"],
        capture_output=True,
    )
    return probe.returncode == 0


@pytest.mark.root
@pytest.mark.parametrize(
    "args",
    [["list", "--pid", "1", "--json"], ["list", "--pid", "1"], ["watch", "--pid", "1", "--once"]],
)
def test_process_hidden_by_hidepid_is_permission_denied(args) -> None:
    """With /proc mounted hidepid=invisible, another user's process exists but cannot be read: exit 4."""
    if not _hidepid_works():
        pytest.skip("needs root, unshare, setpriv and a mountable proc with hidepid")
    script = (
        "mount -t proc -o hidepid=invisible proc /proc && "
        # dac_read_search: the interpreter may live under a directory only root can
        # read; it does not let the process see through hidepid or signal others.
        "exec setpriv --reuid 65534 --regid 65534 --clear-groups"
        " --inh-caps=+dac_read_search --ambient-caps=+dac_read_search"
        f" {sys.executable} -m zombiectl {' '.join(args)}"
    )
    res = subprocess.run(
        ["unshare", "--mount", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=GLOBAL_TIMEOUT,
    )
    assert res.returncode == 4, res.stderr
    assert res.stderr.strip() == "zombiectl: error: cannot read process 1: permission denied"


@pytest.mark.slow
def test_thousands_of_zombies_agree_with_ps(zombie_parent, zombiectl) -> None:
    parent = zombie_parent(3000, alive=5)
    data = json.loads(zombiectl("list", "--json", "--pid", str(parent.pid)).stdout)
    ps = subprocess.run(["ps", "-eo", "pid=,ppid=,stat="], capture_output=True, text=True).stdout
    rows = [line.split() for line in ps.splitlines()]
    ps_zombies = sorted(int(r[0]) for r in rows if r[1] == str(parent.pid) and r[2].startswith("Z"))
    assert data["parents"][0]["zombie_pids"] == ps_zombies == parent.zombie_pids
    assert data["zombies"] == 3000
    everything = json.loads(zombiectl("list", "--json").stdout)
    assert everything["processes"] >= 3006


@pytest.mark.parametrize("args", [["list"], ["list", "--json"], ["watch", "--once"]])
def test_output_into_a_closed_pipe_is_quiet(zombie_parent, args) -> None:
    """`zombiectl list | head -0`: the reader has left; exit as SIGPIPE would (141), no traceback."""
    zombie_parent(3)
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "80"}
    assert into_closed_pipe(args, env) == (141, "")


def test_stopped_and_traced_children_are_not_zombies(states_parent, zombiectl) -> None:
    kids = states_parent.kids
    res = zombiectl("list", "--pid", str(states_parent.pid), "--json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["zombies"] == 1
    assert [p["zombie_pids"] for p in data["parents"]] == [[kids["zombie"]]]
    prom = zombiectl("list", "--pid", str(states_parent.pid), "--format", "prometheus").stdout
    assert "zombiectl_zombies 1\n" in prom
