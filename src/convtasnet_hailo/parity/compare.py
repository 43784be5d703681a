"""Normwise comparison of stitched tensors with the reference (the exactness contract, v2)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..tolerances import TOL, contract_bound


@dataclasses.dataclass(frozen=True)
class TensorDiff:
    """How far one stitched tensor is from its reference.

    ``max_rel`` is max-abs divided by the reference's peak magnitude; ``bound`` is
    ``tol * max(1, peak)`` and ``all_close`` is ``max_abs <= bound`` (docs/exactness.md, tolerances.py).
    """

    name: str
    max_abs: float
    max_rel: float
    peak: float
    bound: float
    all_close: bool
    shape_ok: bool = True
    sqnr_db: float = math.inf  # signal-to-quantization-noise ratio of the stage, dB

    @property
    def margin(self) -> float:
        """bound / max_abs: how many times the error fits under the bound (inf when exact)."""
        if not math.isfinite(self.max_abs):
            return 0.0
        return self.bound / self.max_abs if self.max_abs > 0 else math.inf


def diff_tensor(name: str, stitched: np.ndarray, reference: np.ndarray, tol: float = TOL) -> TensorDiff:
    reference64 = np.asarray(reference, dtype=np.float64)
    peak = float(np.abs(reference64).max(initial=0.0))
    bound = contract_bound(peak, tol)
    if stitched.shape != reference.shape:
        return TensorDiff(name, math.inf, math.inf, peak, bound, False, False, -math.inf)
    if not np.isfinite(stitched).all():
        return TensorDiff(name, math.inf, math.inf, peak, bound, False, sqnr_db=-math.inf)
    error = np.abs(np.asarray(stitched, dtype=np.float64) - reference64)
    max_abs = float(error.max(initial=0.0))
    max_rel = max_abs / peak if peak > 0 else (0.0 if max_abs == 0 else math.inf)
    noise = float(np.sum(error**2))
    signal = float(np.sum(reference64**2))
    sqnr = math.inf if noise == 0 else (10 * math.log10(signal / noise) if signal > 0 else -math.inf)
    return TensorDiff(name, max_abs, max_rel, peak, bound, max_abs <= bound, sqnr_db=sqnr)
