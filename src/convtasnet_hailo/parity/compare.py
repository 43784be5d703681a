"""Elementwise comparison of stitched tensors with the reference (the exactness contract)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..tolerances import ATOL, RTOL


@dataclasses.dataclass(frozen=True)
class TensorDiff:
    """How far one stitched tensor is from its reference.

    ``max_rel`` is max-abs divided by the reference's peak magnitude (DESIGN.md);
    ``all_close`` is ``|s - r| <= atol + rtol * |r|`` everywhere.
    """

    name: str
    max_abs: float
    max_rel: float
    peak: float
    all_close: bool
    shape_ok: bool = True
    sqnr_db: float = math.inf  # signal-to-quantization-noise ratio of the stage, dB


def diff_tensor(name: str, stitched: np.ndarray, reference: np.ndarray,
                atol: float = ATOL, rtol: float = RTOL) -> TensorDiff:
    if stitched.shape != reference.shape:
        return TensorDiff(name, math.inf, math.inf, float(np.abs(reference).max(initial=0.0)), False, False)
    error = np.abs(stitched.astype(np.float64) - reference.astype(np.float64))
    magnitude = np.abs(reference.astype(np.float64))
    peak = float(magnitude.max(initial=0.0))
    max_abs = float(error.max(initial=0.0))
    finite = bool(np.isfinite(stitched).all())
    close = finite and bool((error <= atol + rtol * magnitude).all())
    max_rel = max_abs / peak if peak > 0 else (0.0 if max_abs == 0 else math.inf)
    noise = float(np.sum(error ** 2))
    sqnr = 10 * math.log10(float(np.sum(magnitude ** 2)) / noise) if noise > 0 and finite else (
        math.inf if finite else -math.inf)
    return TensorDiff(name, max_abs if finite else math.inf, max_rel if finite else math.inf, peak, close,
                      sqnr_db=sqnr)
