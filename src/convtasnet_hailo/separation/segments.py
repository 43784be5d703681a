"""When to separate in segments (light: the CLI reads it to build its help)."""

from __future__ import annotations

import dataclasses
import math

from ..errors import UserError

#: `--segment auto` separates inputs longer than this in segments (whole-utterance gLN keeps
#: every intermediate tensor of the file in memory).
SEGMENT_AUTO_SECONDS = 120.0
SEGMENT_SECONDS = 30.0


@dataclasses.dataclass(frozen=True)
class SegmentPolicy:
    """``mode``: "auto", "off", or a segment length in seconds (as text)."""

    mode: str = "auto"
    overlap_seconds: float = 2.0

    def __post_init__(self) -> None:
        self.segment_seconds(0.0)  # a bad --segment is rejected before any work

    def segment_seconds(self, seconds: float) -> float | None:
        if self.mode == "off":
            return None
        if self.mode == "auto":
            return SEGMENT_SECONDS if seconds > SEGMENT_AUTO_SECONDS else None
        try:
            value = float(self.mode)
        except ValueError:
            raise UserError(f"--segment {self.mode!r}: use auto, off or a length in seconds") from None
        if not math.isfinite(value):
            raise UserError(f"--segment {self.mode!r} is not a finite length: use auto, off or a length in seconds")
        if value <= 2 * self.overlap_seconds:
            raise UserError(f"--segment {value:g} s must be longer than twice --overlap ({self.overlap_seconds:g} s)")
        return value
