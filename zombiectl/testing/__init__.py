"""Zombie and stray-process leak checks for test suites (the pytest plugin lives here).

PYTEST_DONT_REWRITE (zombiectl's own modules are not test code)

``keep(proc)`` hands a process to the test session: the leak check never blames it on
a test and never signals it.
"""

from zombiectl.testing.session import keep

__all__ = ["keep"]
