"""`list --by container` on a pipe: plain text, byte for byte rich's, without importing rich."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from proctools import GLOBAL_TIMEOUT
from rich.console import Console

from zombiectl.listing import render_plain as plain
from zombiectl.listing.render_table import listing_table
from zombiectl.listing.zombies import ListResult
from zombiectl.proc.containers import Container
from zombiectl.proc.table import ParentZombies
from zombiectl.ui.console import PIPE_WIDTH


def _container(cid: str, init: int, runtime: str | None = "runc") -> Container:
    return Container(cid, runtime, None, 4026532000 + init, init, "/x")


def _by_container(parents: list[ParentZombies], placed: dict[int, Container | None]) -> ListResult:
    zombies = sum(g.zombies for g in parents)
    inits = {pid for pid, c in placed.items() if c is not None and c.init_pid == pid}
    return ListResult(
        zombies + 40, zombies, parents, 0.0123, containers=placed, inits=inits, by="container"
    )


def _k8s() -> Container:
    c = _container("c0ffee" + "0" * 58, 70, "kubernetes")
    c.k8s_namespace, c.k8s_pod, c.k8s_container = "shop", "web-7d4b9", "app"
    return c


WEB, NS = _container("web", 7), _container("pidns:4026532999", 50, None)
TABLES = {
    "host only": _by_container([ParentZombies(4242, "leaky", "www", [4243])], {4242: None}),
    "containers and host": _by_container(
        [
            ParentZombies(7, "sleep", "root", [8, 9, 10]),
            ParentZombies(30, "py", "root", [31, 32]),
            ParentZombies(12, "app", "root", [13]),
            ParentZombies(50, "sh", "root", [51]),
        ],
        {7: WEB, 30: None, 12: WEB, 50: NS},
    ),
    "kubernetes names": _by_container([ParentZombies(70, "node", "1000", [71])], {70: _k8s()}),
    "hostile name": _by_container(
        [ParentZombies(8, "[bold]a\x1b[2J\nb", "root", [9])], {8: _container("[red]x", 8)}
    ),
}


def _rich_piped(result: ListResult) -> str:
    out = io.StringIO()
    Console(file=out, highlight=False, width=PIPE_WIDTH).print(listing_table(result))
    return out.getvalue()


@pytest.mark.parametrize("name", sorted(TABLES))
def test_plain_containers_table_is_byte_identical_to_rich_piped(name: str) -> None:
    text = plain.parents_table_text(TABLES[name])
    assert text is not None
    assert text == _rich_piped(TABLES[name])


def test_piped_by_container_imports_no_rich(zombie_parent) -> None:
    """Scoped to one parent: other tests' processes may be named with characters only
    rich measures, and then rich draws (rightly)."""
    parent = zombie_parent(2)
    code = (
        "import sys\n"
        "from zombiectl.main import main\n"
        "try:\n"
        f"    main(['list', '--by', 'container', '--pid', '{parent.pid}'])\n"
        "except SystemExit as e:\n"
        "    sys.stderr.write(f\"{e.code} {sorted(m for m in sys.modules if m == 'rich')}\")\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=GLOBAL_TIMEOUT
    )
    assert res.stderr == "0 []"
    (host,) = [ln for ln in res.stdout.splitlines() if ln.startswith("host ")]
    assert host.split()[3:6] == ["2", "1", str(parent.pid)]  # ZOMBIES, PARENTS, WORST
