"""Zombie and stray-process leak checks for test suites (the pytest plugin lives here)."""
