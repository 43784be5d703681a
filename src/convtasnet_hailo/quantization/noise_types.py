"""The typed records of the noise study: when output is good enough (:class:`Target`), how the
study runs (:class:`NoiseSettings`), one emulation's outcome on a set of audio (:class:`Outcome`)
and the calibrated plan it works on (:class:`CalibratedRun`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ..hailo import quant_scheme as qs
from ..hailo.emulation import Calibrated
from ..plan.stage_plan import StagePlan


@dataclasses.dataclass(frozen=True)
class Target:
    """When quantized output is good enough: SI-SNRi within ``si_snri_loss_db`` of float (when the
    judging audio has sources and a loss is given), else ``si_snr_vs_float_db`` against float."""

    si_snr_vs_float_db: float = 40.0
    si_snri_loss_db: float | None = None

    def met(self, outcome: Outcome, float_si_snri: float | None) -> bool:
        if self.si_snri_loss_db is not None and outcome.si_snri is not None and float_si_snri is not None:
            return float_si_snri - outcome.si_snri <= self.si_snri_loss_db
        return outcome.vs_float_db >= self.si_snr_vs_float_db


@dataclasses.dataclass
class Outcome:
    finals: list[np.ndarray]
    vs_float_db: float
    si_snri: float | None
    per_stage: dict[str, float]

    def summary(self) -> dict:
        return {"si_snr_vs_float_db": self.vs_float_db, "si_snri_db": self.si_snri}


@dataclasses.dataclass(frozen=True)
class NoiseSettings:
    """How `noise` analyses: ``out`` (the folder its calibration tiles and model scripts go in),
    the tile width, the target, calibration tiles per stage input, the scheme, the clipping
    (``parse_clipping``), and whether to run the ONNX Runtime cross-check and the assumption flips."""

    out: Path
    tile_w: int = 256
    target: Target = Target()
    calib_count: int = 1024
    scheme: qs.Scheme = qs.Scheme()
    clipping: str = "auto"
    ort_check: bool = True
    effects: bool = True


@dataclasses.dataclass
class CalibratedRun:
    """The plan, its calibration files and the emulation's base (ranges, scheme) for a run."""

    plan: StagePlan
    files: dict
    base: Calibrated
    layers: list[str]
