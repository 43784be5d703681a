"""The typed records of the noise study: when output is good enough (:class:`Target`), how the
study runs (:class:`NoiseSettings`), one emulation's outcome on a set of audio (:class:`Outcome`)
and the calibrated plan it works on (:class:`CalibratedRun`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ..hailo import quant_scheme as qs
from ..hailo.emulation import Calibrated
from ..plan.cost_model import DeviceModel
from ..plan.options import PlanOptions
from ..plan.stage_plan import StagePlan
from .datasets import DEFAULT_CALIB_COUNT

#: The default target (`noise`, `build`): SI-SNRi at most this far below float's.
DEFAULT_TARGET_LOSS_DB = 0.3
#: Where the judging audio has no sources (no SI-SNRi): the SI-SNR against float that holds the
#: same loss for a float output of up to 13.5 dB SI-SNR. Quantization noise N dB under the output,
#: independent of float's own error at S dB, costs 10*log10(1 + 10**((S - N) / 10)) dB: 0.3 dB at
#: N = S + 11.5.
DEFAULT_TARGET_DB = 25.0
#: More 16-bit layers than this share of the layers is a loud warning (and exit 1 with --strict):
#: the device runs 16-bit layers at about a seventh of the speed (cost_model ``a16_slowdown``).
MAX_16BIT_SHARE = 0.2


@dataclasses.dataclass(frozen=True)
class Target:
    """When quantized output is good enough: SI-SNRi within ``si_snri_loss_db`` of float (when the
    judging audio has sources and a loss is given), else ``si_snr_vs_float_db`` against float."""

    si_snr_vs_float_db: float = DEFAULT_TARGET_DB
    si_snri_loss_db: float | None = DEFAULT_TARGET_LOSS_DB

    def met(self, outcome: Outcome, float_si_snri: float | None) -> bool:
        if self.si_snri_loss_db is not None and outcome.si_snri is not None and float_si_snri is not None:
            return float_si_snri - outcome.si_snri <= self.si_snri_loss_db
        return outcome.vs_float_db >= self.si_snr_vs_float_db

    def describe(self) -> str:
        """The target in words, both forms (which one decides depends on the judging audio)."""
        if self.si_snri_loss_db is None:
            return f"SI-SNR against float >= {self.si_snr_vs_float_db:g} dB"
        return (
            f"SI-SNRi at most {self.si_snri_loss_db:g} dB below float (audio with sources), else SI-SNR against "
            f"float >= {self.si_snr_vs_float_db:g} dB"
        )


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
    (``parse_clipping``), whether to run the ONNX Runtime cross-check and the assumption flips,
    the device cost model that prices the 16-bit choices (its chip and PCIe link), the plan's
    layout (``options``: the export's, so the model scripts name its layers) and where the
    calibration tiles go (``calib_dir``; default ``out/calib``: `compile` given the same folder,
    audio, count and tile width reuses them)."""

    out: Path
    tile_w: int = 256
    target: Target = Target()
    calib_count: int = DEFAULT_CALIB_COUNT
    scheme: qs.Scheme = qs.Scheme()
    clipping: str = "auto"
    ort_check: bool = True
    effects: bool = True
    device: DeviceModel = DeviceModel()
    options: PlanOptions = PlanOptions()
    calib_dir: Path | None = None

    @property
    def calibration_folder(self) -> Path:
        return self.calib_dir if self.calib_dir is not None else self.out / "calib"


@dataclasses.dataclass
class CalibratedRun:
    """The plan, its calibration files and the emulation's base (ranges, scheme) for a run."""

    plan: StagePlan
    files: dict
    base: Calibrated
    layers: list[str]
