"""What the multiprocessing strategies share: the context, the workers, the waits.

The workers are module-level functions so that every start method can find them
(``spawn`` and ``forkserver`` pickle the target by name).
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from zombiectl.demo.labproc import die_with_parent, wait_exited_unreaped


def context(p: SimpleNamespace) -> Any:
    import multiprocessing

    return multiprocessing.get_context(p.start_method)


def work(lifetime: float) -> None:
    """The child's whole job (the post's ``print``): live `lifetime` seconds, then return."""
    die_with_parent()
    time.sleep(lifetime)


def work_until(release: Any) -> None:
    """Stay running until the parent sets `release` (after its last start), then return."""
    die_with_parent()
    release.wait()


def wait_exited(proc: Any) -> None:
    """Block until proc has exited, without reaping it (its zombie stays for start() to find)."""
    wait_exited_unreaped(proc.pid, proc.sentinel)


def expected_mp(p: SimpleNamespace, method: str | None, leaked: int) -> int:
    """fork and spawn: the worker is our child and stays a zombie until polled.
    forkserver: the worker is the fork server's child, reaped by the server at once."""
    return 0 if method == "forkserver" else leaked


MP_USES = frozenset({"count", "interval", "lifetime", "start_method"})


FORKSERVER_REASON = (
    "forkserver: the workers are the fork server's children, and it reaps each one at once."
)


def reason_mp(direct: str) -> Any:
    """A summary line: `direct` for fork and spawn, the fork server's story otherwise."""

    def reason(p: SimpleNamespace, method: str | None) -> str:
        return FORKSERVER_REASON if method == "forkserver" else direct

    return reason
