"""``hailo_quant``: each stage computed the way the device computes it, in integers, without the SDK.

The arithmetic is :mod:`convtasnet_hailo.hailo.emulation` (every assumption in
:mod:`convtasnet_hailo.hailo.quant_scheme`); this module only makes it a backend. From a `noise`
folder (:mod:`convtasnet_hailo.hailo.noise_folder`) it takes that report's calibration tiles,
scheme and modes, so `parity --noise-dir` and `separate --backend hailo_quant` compute what the
report predicted. Judged by SQNR like every quantized backend.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UserError
from ..hailo import quant_scheme as qs
from ..hailo.emulation import Emulation, Precision, Ranges, build_emulation, calibrated, run_emulated
from ..hailo.noise_folder import noise_dir_files, read_noise_precision, read_noise_scheme
from ..plan.options import refuse_float_only
from ..plan.stages import Stage
from .base import Backend, register_backend


@register_backend("hailo_quant")
class HailoQuantBackend(Backend):
    """The device's integer arithmetic, emulated stage by stage (module docstring). From a `noise`
    folder it uses what that report advised: its calibration tiles, precision and scheme."""

    name = "hailo_quant"
    quantized = True

    def __init__(
        self,
        ranges: Ranges | None = None,
        precision: Precision | None = None,
        noise_dir: Path | None = None,
        emulation: Emulation | None = None,
    ) -> None:
        if ranges is None and noise_dir is None and emulation is None:
            raise UserError(
                "backend hailo_quant needs calibrated ranges: run `convtasnet-hailo noise --out DIR` "
                "on real audio, then pass --noise-dir DIR"
            )
        self.noise_dir = noise_dir
        plain = qs.Scheme(equalization=False, bias_correction=False)  # given ranges: the stages as they are
        self.emulation = emulation or (
            Emulation({}, ranges, precision or Precision(), plain) if ranges is not None else None
        )
        self.precision = precision or (read_noise_precision(noise_dir) if noise_dir else Precision())
        self.scheme = read_noise_scheme(noise_dir) if noise_dir else None

    def _prepare(self, plan, tile_w: int) -> None:
        refuse_float_only(plan.float_only_options, f"--backend {self.name}")
        if self.noise_dir is not None:
            base = calibrated(list(plan.stages), noise_dir_files(self.noise_dir), self.scheme)
            self.emulation = build_emulation(base, self.precision)

    @property
    def ranges(self) -> Ranges:
        return self.emulation.ranges

    def run_stage(self, stage: Stage, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return run_emulated(self.emulation, stage, inputs)
