"""pytest plugin: fail (or warn about) tests that leave zombies or running processes behind.

Installed with zombiectl (entry point ``pytest11``: ``zombiectl``) and inactive unless
asked for, so it changes no other project's test run:

    pytest --zombies          # fail: a leaking test gets an error in its teardown
    pytest --zombies-warn     # warn: the same text as a pytest warning
    [pytest] zombies = fail   # or warn, or off (the default); a flag wins over the ini

Inactive, this module only declares its options and the ``zombies_allowed`` marker.
Active, pytest becomes a child subreaper at start-up, and after each test (setup, call
and teardown) reads its own process tree once. What a test started and left (a zombie
anywhere in the tree, or a process still running, once a 0.5 s grace period has passed) is named
in the report, then collected: the running killed, the dead reaped. What a session-,
package-, module- or class-scoped fixture starts in its setup is that fixture's, checked
when it is torn down. ``@pytest.mark.zombies_allowed`` exempts a test (what it leaves is
still collected, quietly). See `guard` for ownership and orphans.

Order of collection (`tree.collect`): a ``multiprocessing.Pool`` replaces a worker that
dies for as long as the Pool's parent side (its handler thread) lives, so killing workers
first only makes new ones. So the parent side goes first: a Pool living in pytest itself
is terminated through its own ``terminate()``; then every leftover process is frozen with
SIGSTOP, parents before children, so no parent can react to a child's death; only then
does each get SIGKILL, and pytest reaps those that are its children (by pid, never
``waitpid(-1)``, so that a Popen the test keeps still gets its own status).

Under pytest-xdist each worker guards itself (and is its own subreaper); the controller,
which runs no test, does nothing. Without /proc the check is off, with one warning.

A real failure (``pytest --zombies``, a test that starts ``sleep 60`` and never waits)::

    __________________ ERROR at teardown of test_starts_a_worker ___________________
    test_worker.py::test_starts_a_worker left 1 process behind (checked after teardown, 0.5 s grace for exiting processes):
      pid 16811 (sleep): still running, state S, parent 16801 (pytest), cmdline: sleep 60
      collected: running ones killed, zombies reaped
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Generator

    from zombiectl.proc.prctl import Subreaper
    from zombiectl.testing.guard import Ledger, Owner

MODES = ("fail", "warn", "off")
MARKER = "zombies_allowed"


class ZombieLeakWarning(pytest.PytestWarning):
    """A test or fixture left a zombie or a running process behind (``--zombies-warn``)."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("zombiectl", "zombie and stray-process leaks (zombiectl)")
    group.addoption(
        "--zombies",
        action="store_true",
        default=False,
        help="fail a test that leaves a zombie or a running process behind",
    )
    group.addoption(
        "--zombies-warn",
        action="store_true",
        default=False,
        help="warn, instead of failing, about such a test",
    )
    parser.addini("zombies", "leak check when no flag is given: fail, warn or off", default="off")


def mode_of(config: pytest.Config) -> str:
    """fail, warn or off: the flags first, then the ini value."""
    if config.getoption("zombies") and config.getoption("zombies_warn"):
        raise pytest.UsageError("--zombies and --zombies-warn: give one of them")
    if config.getoption("zombies"):
        return "fail"
    if config.getoption("zombies_warn"):
        return "warn"
    value = str(config.getini("zombies")).strip().lower() or "off"
    if value not in MODES:
        raise pytest.UsageError(f"ini option zombies = {value!r}: expected fail, warn or off")
    return value


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}: the zombie leak check does not report this test")
    mode = mode_of(config)
    if mode == "off" or _is_xdist_controller(config):
        return
    if not have_proc():
        config.issue_config_time_warning(
            ZombieLeakWarning("zombie leak check disabled: this platform has no /proc"),
            stacklevel=2,
        )
        return
    config.pluginmanager.register(LeakGuard(mode), "zombiectl-leak-guard")


def have_proc() -> bool:
    """True where /proc can be read; elsewhere the check is off (with one warning)."""
    return os.path.exists("/proc/self/stat")


def _is_xdist_controller(config: pytest.Config) -> bool:
    if hasattr(config, "workerinput"):
        return False
    return getattr(config.option, "dist", "no") != "no" and bool(
        getattr(config.option, "numprocesses", None) or getattr(config.option, "tx", None)
    )


class LeakGuard:
    """The hooks that run only when the check is on."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.ledger: Ledger | None = None
        self.subreaper: Subreaper | None = None
        self.recording = False
        self.test: Owner | None = None
        self.fixture_leaks: list[str] = []

    def pytest_configure(self, config: pytest.Config) -> None:
        from zombiectl.proc.prctl import Subreaper
        from zombiectl.testing import forks
        from zombiectl.testing.guard import Ledger

        self.recording = forks.start()
        self.subreaper = Subreaper()
        self.subreaper.start()
        self.ledger = Ledger()

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.ledger is not None:
            from zombiectl.testing.tree import collect

            collect({p.key for p in self.ledger.leftovers()}, self.ledger.me)
        if self.subreaper is not None:
            self.subreaper.stop()
        if self.recording:
            from zombiectl.testing import forks

            forks.stop()

    def pytest_report_header(self, config: pytest.Config) -> str:
        return f"zombiectl: zombie leak check on ({self.mode}), pytest is a child subreaper"

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        from zombiectl.testing.guard import NOBODY

        # Started while test modules were imported: there before any test, so nobody's.
        if self.ledger is not None:
            self.ledger.claim(NOBODY)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, None, None]:
        from zombiectl.testing.guard import Owner

        self.test = Owner("test", item.nodeid)
        if item.get_closest_marker(MARKER) is not None and self.ledger is not None:
            self.ledger.exempt.add(self.test)
        return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(
        self, fixturedef: pytest.FixtureDef[object], request: pytest.FixtureRequest
    ) -> Generator[None, object, object]:
        if self.ledger is None or fixturedef.scope == "function" or self.test is None:
            return (yield)
        from zombiectl.testing.guard import Owner

        self.ledger.claim(self.test)
        try:
            return (yield)
        finally:
            self.ledger.claim(Owner("fixture", fixturedef.argname, fixturedef.scope))

    def pytest_fixture_post_finalizer(
        self, fixturedef: pytest.FixtureDef[object], request: pytest.FixtureRequest
    ) -> None:
        if self.ledger is None or fixturedef.scope == "function" or self.test is None:
            return
        from zombiectl.testing.guard import Owner

        owner = Owner("fixture", fixturedef.argname, fixturedef.scope)
        leak = self.ledger.check(owner, self.test)
        if leak is not None:
            self.fixture_leaks.append(leak.text(self.ledger.grace))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> Generator[None, None, None]:
        try:
            return (yield)
        finally:
            self._after_test(item)

    def _after_test(self, item: pytest.Item) -> None:
        if self.ledger is None or self.test is None:
            return
        leak = self.ledger.check(self.test, self.test)
        self.ledger.exempt.discard(self.test)
        texts = [*self.fixture_leaks, *([leak.text(self.ledger.grace)] if leak else [])]
        self.fixture_leaks = []
        if not texts:
            return
        text = "\n".join(texts)
        if self.mode == "fail":
            pytest.fail(text, pytrace=False)
        import warnings

        # Attributed to the test's own line, where the reader will look.
        path, line, _ = item.location
        warnings.warn_explicit(ZombieLeakWarning(text), ZombieLeakWarning, path, (line or 0) + 1)
