"""SQNR in dB, accumulated over batches (the error measure of every quantized path)."""

from __future__ import annotations

import math

import numpy as np


def sqnr_db(signal_power: float, noise_power: float) -> float:
    return math.inf if noise_power == 0 else 10 * math.log10(max(signal_power, 1e-30) / noise_power)


class PowerSums:
    """Signal and noise power sums per key (accumulated over batches of tiles)."""

    def __init__(self) -> None:
        self.sums: dict[str, list[float]] = {}

    def add(self, key: str, reference: np.ndarray, estimate: np.ndarray) -> None:
        entry = self.sums.setdefault(key, [0.0, 0.0])
        entry[0] += float(np.sum(np.square(reference, dtype=np.float64)))
        entry[1] += float(np.sum(np.square(np.asarray(estimate, np.float64) - reference)))

    def db(self) -> dict[str, float]:
        return {key: sqnr_db(*values) for key, values in self.sums.items()}
