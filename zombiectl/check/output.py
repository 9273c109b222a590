"""CMD's output: passed through live and kept for the reports, both within one limit.

A program's output is unbounded; the check's is not. Of each stream the first `limit`
bytes are passed through as they come and what is cut is said once; for the reports
the head and the tail are kept (half the limit each) with a line saying what was cut.
"""

from __future__ import annotations

import os


class Capture:
    def __init__(self, limit: int, through: int | None) -> None:
        self.limit = limit
        self.through = through  # where the output is passed on (None: nowhere)
        self.total = 0
        self._head = bytearray()
        self._tail = bytearray()
        self._cut_said = False

    def feed(self, data: bytes) -> None:
        passed = max(0, min(len(data), self.limit - self.total))
        if passed:
            self._pass(data[:passed])
        if passed < len(data) and not self._cut_said:
            self._cut_said = True
            self._pass(f"\n[zombiectl: output past {self.limit} bytes not shown]\n".encode())
        self.total += len(data)
        half = self.limit // 2
        room = max(0, half - len(self._head))
        self._head += data[:room]
        rest = data[room:]
        if rest:
            self._tail += rest
            del self._tail[: max(0, len(self._tail) - (self.limit - half))]

    def _pass(self, data: bytes) -> None:
        if self.through is None:
            return
        try:
            while data:
                data = data[os.write(self.through, data) :]
        except OSError:
            self.through = None  # the reader left: keep what the reports need

    def text(self) -> str:
        """What was kept, with a line where bytes were cut."""
        kept = len(self._head) + len(self._tail)
        cut = self.total - kept
        middle = f"\n[{cut} bytes cut]\n".encode() if cut > 0 else b""
        return (bytes(self._head) + middle + bytes(self._tail)).decode("utf-8", "replace")
