"""A backend wrapper that times the device calls: what a run spends outside them is host work."""

from __future__ import annotations

import time

import numpy as np

from ..plan.stages import Stage
from .base import Backend


class StageTimer(Backend):
    """Wraps a backend; adds up the time its stages take (the rest of a run is host work)."""

    name = "stage_timer"

    def __init__(self, inner: Backend) -> None:
        self.inner, self.seconds, self.calls = inner, 0.0, 0
        self.quantized = inner.quantized

    def prepare(self, plan, tile_w: int) -> None:
        self.inner.prepare(plan, tile_w)

    def run_stage(self, stage: Stage, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        started = time.perf_counter()
        out = self.inner.run_stage(stage, inputs)
        self.seconds += time.perf_counter() - started
        self.calls += 1
        return out
