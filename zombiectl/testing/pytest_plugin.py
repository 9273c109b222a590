"""pytest plugin: fail (or warn about) tests that leave zombies or running processes behind.

PYTEST_DONT_REWRITE (zombiectl's own modules are not test code)

Installed with zombiectl (entry point ``pytest11``: ``zombiectl``) and inactive unless
asked for, so it changes no other project's test run:

    pytest --zombies          # fail: a leaking test gets an error in its teardown
    pytest --zombies-warn     # warn: the same text as a pytest warning
    [pytest] zombies = fail   # or warn, or off (the default); a flag wins over the ini

Inactive, this module only declares its options, the ``zombies_allowed`` marker and the
``zombiectl_session`` fixture. Active, it imports everything it needs at configure time,
makes pytest a child subreaper (ini ``zombies_subreaper``, default true), and after each
test (setup, call and teardown) reads its own process tree once. What a test started
and left (a zombie anywhere in the tree, or a process still running, once the grace of
ini ``zombies_grace`` seconds has passed) is named in the report. What a session-,
package-, module- or class-scoped fixture starts in its setup is that fixture's, checked
when it is torn down. What outlives tests by design goes to the session and is listed
once in the terminal summary (see `session`). See `guard` for ownership and orphans.

Warn mode, and a ``@pytest.mark.zombies_allowed`` test in any mode, only observe:
nothing is signalled, and nothing the tests started is reaped, so every test ends as it
would with the plugin off. Fail mode collects what it blames (`tree.collect`): a
``multiprocessing.Pool`` living in pytest is terminated through its own
``terminate()`` first (its handler thread would replace killed workers); then every
leftover is frozen with SIGSTOP, parents before children, then killed; pytest reaps its
own children by pid, a Popen-held one through that object's ``poll()``, so its owner
reads the signal status.

Under pytest-xdist each worker guards itself (and is its own subreaper); the controller,
which runs no test, only prints the header. Without /proc the check is off, with one
warning.

A real failure (``pytest --zombies``, a test that starts ``sleep 60`` and never waits)::

    __________________ ERROR at teardown of test_starts_a_worker ___________________
    test_worker.py::test_starts_a_worker left 1 process behind (checked after teardown, 0.5 s grace for exiting processes):
      pid 16811 (sleep): still running, state S, parent 16801 (pytest), cmdline: sleep 60
      collected: running ones killed, zombies reaped
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Generator
from typing import Any

import pytest

from zombiectl.proc.files import pid_path
from zombiectl.testing.session import keep

MODES = ("fail", "warn", "off")
MARKER = "zombies_allowed"
GRACE_DEFAULT = 0.5  # guard.GRACE_SECONDS (guard is imported only when the check is on)
GRACE_MAX = 60.0
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


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
        help="warn, instead of failing, about such a test (nothing is signalled)",
    )
    parser.addini("zombies", "leak check when no flag is given: fail, warn or off", default="off")
    parser.addini(
        "zombies_grace",
        f"seconds a leftover process gets to go away before it counts (0 to {GRACE_MAX:g})",
        default=str(GRACE_DEFAULT),
    )
    parser.addini(
        "zombies_ignore",
        "patterns (fnmatch) on a process's name or command line: never a test's leak",
        type="linelist",
        default=[],
    )
    parser.addini(
        "zombies_subreaper",
        "make pytest a child subreaper, so orphans come to it (true or false)",
        default="true",
    )


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


def grace_of(config: pytest.Config) -> float:
    """The ini option zombies_grace in seconds, from 0 to GRACE_MAX."""
    raw = str(config.getini("zombies_grace")).strip()
    try:
        value = float(raw) if raw.isascii() else math.nan
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 <= value <= GRACE_MAX):
        raise pytest.UsageError(
            f"ini option zombies_grace = {raw!r}: expected seconds from 0 to {GRACE_MAX:g}"
        )
    return value


def subreaper_of(config: pytest.Config) -> bool:
    raw = str(config.getini("zombies_subreaper")).strip()
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise pytest.UsageError(f"ini option zombies_subreaper = {raw!r}: expected true or false")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}: the zombie leak check does not report this test")
    mode = mode_of(config)
    if mode == "off":
        return
    grace, subreaper = grace_of(config), subreaper_of(config)
    if _is_xdist_controller(config):
        config.pluginmanager.register(ControllerHeader(mode, grace), "zombiectl-leak-header")
        return
    if not have_proc():
        config.issue_config_time_warning(
            ZombieLeakWarning("zombie leak check disabled: this platform has no /proc"),
            stacklevel=2,
        )
        return
    guard = LeakGuard(mode, grace, subreaper, config.getini("zombies_ignore"))
    config.pluginmanager.register(guard, "zombiectl-leak-guard")


def have_proc() -> bool:
    """True where /proc can be read; elsewhere the check is off (with one warning)."""
    return os.path.exists(pid_path("self", "stat"))


def _is_xdist_controller(config: pytest.Config) -> bool:
    if hasattr(config, "workerinput"):
        return False
    return getattr(config.option, "dist", "no") != "no" and bool(
        getattr(config.option, "numprocesses", None) or getattr(config.option, "tx", None)
    )


class SessionHandle:
    """The ``zombiectl_session`` fixture: ``keep(proc)`` hands a process to the session."""

    keep = staticmethod(keep)


@pytest.fixture(scope="session")
def zombiectl_session() -> SessionHandle:
    """Hands processes to the test session: ``zombiectl_session.keep(proc)``."""
    return SessionHandle()


def _not_rewritten(config: pytest.Config) -> None:
    """Take zombiectl's modules off the assertion rewriter's list (an installed plugin's
    whole package is on it): they are not test code, and the rewriter's compile of an
    AST deep in a test's stack can fail (SystemError: AST constructor recursion depth
    mismatch). The testing modules also say PYTEST_DONT_REWRITE, for any other pytest."""
    hook = getattr(config.pluginmanager, "rewrite_hook", None)
    marked = getattr(hook, "_must_rewrite", None)
    if not isinstance(marked, set):
        return
    mine = {n for n in marked if n == "zombiectl" or n.startswith("zombiectl.")}
    if mine:
        marked.difference_update(mine)
        cache = getattr(hook, "_marked_for_rewrite_cache", None)
        if isinstance(cache, dict):
            cache.clear()


SUMMARY_TITLE = "zombiectl: processes kept for the whole session"
WORKER_KEY = "zombiectl_session_processes"


def _summary(terminalreporter: Any, lines: list[str]) -> None:
    if lines:
        terminalreporter.write_sep("-", SUMMARY_TITLE)
        for line in lines:
            terminalreporter.write_line(line)


class ControllerHeader:
    """Under pytest-xdist the controller runs no test: it says the check is on, and
    prints the session-long processes each worker reports as it finishes."""

    def __init__(self, mode: str, grace: float) -> None:
        self.mode, self.grace = mode, grace
        self.lines: list[str] = []

    def pytest_report_header(self, config: pytest.Config) -> str:
        return (
            f"zombiectl: zombie leak check on ({self.mode}, {self.grace:g} s grace) "
            "in each xdist worker"
        )

    def pytest_testnodedown(self, node: Any, error: object) -> None:
        output = getattr(node, "workeroutput", None) or {}
        worker = getattr(getattr(node, "gateway", None), "id", "?")
        self.lines += [f"[{worker}] {line}" for line in output.get(WORKER_KEY, [])]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        _summary(terminalreporter, self.lines)


class LeakGuard:
    """The hooks that run only when the check is on.

    Everything they use is imported here, at configure time: an import from a hook
    would run deep in a test's stack, through the assertion rewriter."""

    def __init__(self, mode: str, grace: float, subreaper: bool, ignore: list[str]) -> None:
        self.mode, self.grace, self.want_subreaper, self.ignore = mode, grace, subreaper, ignore
        self.ledger: Any = None
        self.subreaper: Any = None
        self.recording = False
        self.test: Any = None
        self.fixture_leaks: list[str] = []

    def pytest_configure(self, config: pytest.Config) -> None:
        _not_rewritten(config)
        from zombiectl.proc import identity, prctl
        from zombiectl.testing import forks, guard, tree
        from zombiectl.untrusted import display

        identity.pidfd_support()  # probed now, not during a teardown
        if not identity.pidfd_supported():
            import psutil  # the signal path without pidfds

            del psutil
        display("\u00e9\x01")  # loads unicodedata
        self.forks, self.guard, self.tree = forks, guard, tree
        self.recording = forks.start()
        if self.want_subreaper:
            self.subreaper = prctl.Subreaper()
            self.subreaper.start()
        self.ledger = guard.Ledger(
            self.grace,
            collect_leaks=self.mode == "fail",
            ignore=self.ignore,
            subreaper=prctl.is_child_subreaper(),
        )

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.ledger is not None and self.mode == "fail":
            left = {p.key for p in self.ledger.leftovers()}
            if left:
                self.tree.collect(left, self.ledger.me, owners=self.forks.holders())
        if self.subreaper is not None:
            self.subreaper.stop()
        if self.recording:
            self.forks.stop()

    def pytest_report_header(self, config: pytest.Config) -> str:
        how = (
            "pytest is a child subreaper"
            if self.ledger is not None and self.ledger.subreaper
            else "not a subreaper: orphans found by a /proc scan"
        )
        return f"zombiectl: zombie leak check on ({self.mode}, {self.grace:g} s grace), {how}"

    def _held_lines(self) -> list[str]:
        held = self.ledger.long_lived() if self.ledger is not None else []
        return [
            f"pid {i.proc.pid} ({self.tree.display(i.proc.name)}): {i.why}; "
            f"first left after {i.first} (not a leak, not signalled)"
            for i in held
        ]

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        output = getattr(session.config, "workeroutput", None)
        if isinstance(output, dict):  # an xdist worker: the controller prints them
            output[WORKER_KEY] = self._held_lines()

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        _summary(terminalreporter, self._held_lines())

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # Started while test modules were imported: there before any test, so nobody's.
        if self.ledger is not None:
            self.ledger.claim(self.guard.NOBODY)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, None, None]:
        self.test = self.guard.Owner("test", item.nodeid)
        if self.ledger is not None:
            self.ledger.begin()
            if item.get_closest_marker(MARKER) is not None:
                self.ledger.exempt.add(self.test)
        return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(
        self, fixturedef: pytest.FixtureDef[object], request: pytest.FixtureRequest
    ) -> Generator[None, object, object]:
        if self.ledger is None or fixturedef.scope == "function" or self.test is None:
            return (yield)
        owner = self.guard.Owner("fixture", fixturedef.argname, fixturedef.scope)
        self.ledger.claim(self.test)
        try:
            value = yield
            self.ledger.wide[owner] = value
            return value
        finally:
            self.ledger.claim(owner)

    def pytest_fixture_post_finalizer(
        self, fixturedef: pytest.FixtureDef[object], request: pytest.FixtureRequest
    ) -> None:
        if self.ledger is None or fixturedef.scope == "function" or self.test is None:
            return
        owner = self.guard.Owner("fixture", fixturedef.argname, fixturedef.scope)
        self.ledger.wide.pop(owner, None)
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
        # Attributed to the test's own line, where the reader will look.
        path, line, _ = item.location
        warnings.warn_explicit(ZombieLeakWarning(text), ZombieLeakWarning, path, (line or 0) + 1)
