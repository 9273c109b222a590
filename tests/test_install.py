"""The system install of docs/install.md, followed literally in an isolated prefix, gives
the path the systemd units and the cron line call; bash completion works as documented.

The prefix stands in for `/`: `/opt/...` and `/usr/local/...` in the guide's commands
become `PREFIX/opt/...` and `PREFIX/usr/local/...`, so the test never writes the
machine's own /opt or /usr/local.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from peers import require_peer
from proctools import GLOBAL_TIMEOUT

ROOT = Path(__file__).resolve().parent.parent
GUIDE = (ROOT / "docs" / "install.md").read_text()
SERVICE = ROOT / "contrib/systemd/zombiectl-textfile.service"
TIMER = ROOT / "contrib/systemd/zombiectl-textfile.timer"
CRON = ROOT / "contrib/cron/zombiectl"


def section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", GUIDE, re.S | re.M)
    assert match, f"docs/install.md has no section {title!r}"
    return match.group(1)


def code_blocks(text: str) -> list[list[str]]:
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    return [[ln for ln in b.splitlines() if ln.strip() and not ln.startswith("#")] for b in blocks]


def install_commands() -> list[str]:
    return code_blocks(section("For the whole machine"))[0]


def link_path(commands: list[str]) -> str:
    (link,) = [c.split()[-1] for c in commands if c.startswith("ln ")]
    return link


def test_units_and_cron_call_the_path_the_install_creates() -> None:
    link = link_path(install_commands())
    assert link == "/usr/local/bin/zombiectl"
    exec_start = re.search(r"^ExecStart=(\S+)", SERVICE.read_text(), re.M)
    assert exec_start and exec_start.group(1) == link
    cron = [ln for ln in CRON.read_text().splitlines() if ln and not ln.startswith("#")]
    assert cron and all(ln.split()[6] == link for ln in cron)


@pytest.mark.slow
def test_guide_system_install_works_in_an_isolated_prefix(tmp_path: Path) -> None:
    prefix = tmp_path / "root"
    (prefix / "usr/local/bin").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    for command in install_commands():
        if command.startswith("apt-get "):
            continue  # the system's venv module: this interpreter has one already
        command = command.replace("python3 ", f"{sys.executable} ", 1)
        command = re.sub(r"(?<![\w.])/(opt|usr/local)/", rf"{prefix}/\1/", command)
        assert str(prefix) in command or command.startswith(sys.executable)
        done = subprocess.run(
            command,
            shell=True,
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=10 * GLOBAL_TIMEOUT,
        )
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    installed = prefix / link_path(install_commands()).lstrip("/")
    version = subprocess.run(
        [installed, "--version"], capture_output=True, text=True, timeout=GLOBAL_TIMEOUT, env=env
    )
    assert version.returncode == 0 and version.stdout.startswith("zombiectl ")
    # Only the runtime dependencies went into the system venv.
    freeze = subprocess.run(
        [prefix / "opt/zombiectl/bin/pip", "freeze"],
        capture_output=True,
        text=True,
        timeout=GLOBAL_TIMEOUT,
    )
    names = {re.split(r"[=@ ]", ln)[0].lower() for ln in freeze.stdout.splitlines() if ln}
    assert {"click", "psutil", "rich"} <= names and "pytest" not in names

    analyze = require_peer("systemd-analyze")
    units = tmp_path / "units"
    units.mkdir()
    (units / SERVICE.name).write_text(
        SERVICE.read_text().replace("/usr/local/bin/zombiectl", str(installed))
    )
    shutil.copy(TIMER, units / TIMER.name)
    verify = subprocess.run(
        [analyze, "verify", units / SERVICE.name, units / TIMER.name],
        capture_output=True,
        text=True,
        timeout=GLOBAL_TIMEOUT,
    )
    assert verify.returncode == 0, verify.stderr
    # The unmodified unit names a path that does not exist here: verify must say so, or
    # the check above proves nothing.
    broken = subprocess.run(
        [analyze, "verify", SERVICE], capture_output=True, text=True, timeout=GLOBAL_TIMEOUT
    )
    if not Path("/usr/local/bin/zombiectl").exists():
        assert broken.returncode != 0 and "/usr/local/bin/zombiectl" in broken.stderr


def completions(words: list[str], script: str) -> list[str]:
    """What bash offers for the last of `words`, through the completion script click wrote."""
    program = (
        f"source {script}\n"
        f"COMP_WORDS=({' '.join(words)})\n"
        f"COMP_CWORD={len(words) - 1}\n"
        "_zombiectl_completion zombiectl\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", program],
        capture_output=True,
        text=True,
        timeout=GLOBAL_TIMEOUT,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
    )
    assert done.returncode == 0, done.stderr
    return [ln for ln in done.stdout.splitlines() if ln]


def test_bash_completion_as_the_guide_says(tmp_path: Path) -> None:
    zombiectl = Path(sys.executable).parent / "zombiectl"
    assert "_ZOMBIECTL_COMPLETE=bash_source zombiectl" in section("Shell completion")
    script = tmp_path / "zombiectl-complete.bash"
    source = subprocess.run(
        [zombiectl],
        env={**os.environ, "_ZOMBIECTL_COMPLETE": "bash_source"},
        capture_output=True,
        text=True,
        timeout=GLOBAL_TIMEOUT,
    )
    assert source.returncode == 0 and "complete " in source.stdout
    script.write_text(source.stdout)
    assert completions(["zombiectl", "re"], str(script)) == ["reap"]
    offered = completions(["zombiectl", "demo", "mp"], str(script))
    assert offered == ["mp", "mp-single"]
    assert "--json" in completions(["zombiectl", "list", "--j"], str(script))
