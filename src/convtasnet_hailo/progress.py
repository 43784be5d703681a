"""Progress of a long step in counts and an estimated time left, on the caller's module logger.

A line at most every ``every_s`` seconds (none for a step that ends sooner), and one when the
step ends if any was written: ``calibration: 12 of 48 recordings, 31 s, about 93 s left``.
The estimate is the mean time per item so far times the items left.
"""

from __future__ import annotations

import logging
import time

#: Seconds between progress lines: a step shorter than this says nothing.
EVERY_S = 5.0


class Progress:
    """Counts ``total`` items of ``what`` (e.g. "calibration", "recordings") on ``log``."""

    def __init__(self, log: logging.Logger, what: str, total: int, unit: str, every_s: float = EVERY_S) -> None:
        self.log, self.what, self.total, self.unit, self.every_s = log, what, total, unit, every_s
        self.done = 0
        self.started = self.last = time.monotonic()
        self.said = False

    def step(self, count: int = 1) -> None:
        """``count`` more items done: a line when ``every_s`` have passed since the last one."""
        self.done += count
        now = time.monotonic()
        if now - self.last >= self.every_s and self.done < self.total:
            self.last, self.said = now, True
            elapsed = now - self.started
            left = elapsed / self.done * (self.total - self.done)
            self.log.info(
                f"{self.what}: {self.done} of {self.total} {self.unit}, {elapsed:.0f} s, about {left:.0f} s left"
            )

    def status(self) -> str:
        """``k of n <unit>, about S s left`` (the count and estimate, for a caller's own line)."""
        left = (time.monotonic() - self.started) / max(self.done, 1) * (self.total - self.done)
        tail = f", about {left:.0f} s left" if self.done < self.total else ""
        return f"{self.done} of {self.total} {self.unit}{tail}"

    def finish(self) -> None:
        """The closing line, where progress lines were written (or the step took ``every_s``)."""
        elapsed = time.monotonic() - self.started
        if self.said or elapsed >= self.every_s:
            self.log.info(f"{self.what}: {self.done} of {self.total} {self.unit} done in {elapsed:.0f} s")
