"""Test-session set-up. The leak guard is zombiectl's own pytest plugin, on in fail mode
(`zombies = fail` in pyproject.toml): the session is a child subreaper, and any test that
leaves a process or a zombie behind gets an error.

Being a subreaper matters: a process a test orphans (a killed lab parent's children, a
double fork) is adopted by this session rather than by PID 1, so the guard sees it, and
nothing is left to an init that may reap slowly or never.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest
from proctools import (
    GLOBAL_TIMEOUT,
    Parent,
    StatesParent,
    ZombieParent,
    start_parent,
    terminate_registered,
)

pytest_plugins = ["pytester"]


@pytest.fixture
def parent() -> Iterator[Callable[..., Parent]]:
    """Factory: parent(mode, n, **kwargs) -> start_parent's real parent of n zombies
    that behaves as mode says (reaps on SIGCHLD, one per SIGCHLD, never, ...)."""
    made: list[Parent] = []

    def make(mode: str, n: int, **kwargs: object) -> Parent:
        p = start_parent(mode, n, **kwargs)  # type: ignore[arg-type]
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


@pytest.fixture
def zombie_parent() -> Iterator[Callable[..., ZombieParent]]:
    """Factory: zombie_parent(n, alive=0) -> a real parent with n zombie children."""
    made: list[ZombieParent] = []

    def make(zombies: int, alive: int = 0) -> ZombieParent:
        parent = ZombieParent(zombies, alive)
        made.append(parent)
        return parent

    yield make
    for parent in made:
        parent.close()


@pytest.fixture
def states_parent() -> Iterator[StatesParent]:
    """A real parent with one zombie, one stopped (T), one traced (t), one sleeping child."""
    parent = StatesParent("zombie", "stopped", "traced", "sleeping")
    yield parent
    parent.close()


def run_zombiectl(
    *args: str, timeout: float = GLOBAL_TIMEOUT, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    """`python -m zombiectl ARGS` as a real subprocess, output captured as text."""
    env = dict(os.environ)
    env.pop("FORCE_COLOR", None)
    env.setdefault("NO_COLOR", "1")
    env["COLUMNS"] = "120"
    return subprocess.run(
        [sys.executable, "-m", "zombiectl", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def zombiectl() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_zombiectl


def pytest_configure(config: pytest.Config) -> None:
    """Give the session (and so every process it starts) a Ctrl-C that works.

    A run started in the background of a non-interactive shell (`make test &` in a
    script, many CI runners) inherits SIGINT ignored, as POSIX asks; so would every
    zombiectl it starts, and the tests that end one with SIGINT would wait in vain.
    A Python handler, unlike SIG_IGN, is reset to the default by exec.
    """
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Delete the test containers a killed earlier session left running."""
    from containers import delete_leftovers

    delete_leftovers()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """End whatever a helper started and a failed test left running."""
    terminate_registered()


def pytest_report_header(config: pytest.Config) -> str:
    return f"zombiectl tests: session pid {os.getpid()}"
