"""From command options to a backend: the option combinations each backend reads. Opened by
``runtime.open_run`` only."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..backends.base import Backend
from ..backends.registry import load_backend
from ..errors import UserError

HAILO_BACKENDS = ("hailo_runtime", "hailo_emulator")
#: Backends computing in the device's integers: parity may compare them with the emulation.
QUANTIZED_BACKENDS = HAILO_BACKENDS + ("hailo_quant",)


@dataclasses.dataclass(frozen=True)
class BackendOptions:
    """What a command line says about the backend. ``export_dir`` is read by onnxruntime (its
    stages) and, as the plan of a run without ``--model``, by the Hailo backends;
    ``hef_dir`` by the Hailo backends only; other combinations are refused before any work."""

    name: str = "torch_proxy"
    export_dir: Path | None = None
    hef_dir: Path | None = None
    context: str = "quantized"
    io_format: str = "float32"
    batch_size: int = 8
    #: The folder `noise` wrote: what hailo_quant runs, and what parity compares quantized backends with.
    noise_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.noise_dir is not None and self.name not in QUANTIZED_BACKENDS:
            raise UserError(
                f"--noise-dir is read by quantized backends ({', '.join(QUANTIZED_BACKENDS)}), not "
                f"{self.name}: a float backend is judged against the float model"
            )
        if self.name == "hailo_quant" and self.noise_dir is None:
            raise UserError(
                "--backend hailo_quant needs --noise-dir DIR: the folder `convtasnet-hailo noise --out DIR` "
                "wrote (calibrated ranges and 16-bit layers)"
            )
        if self.export_dir is not None and self.name not in ("onnxruntime",) + HAILO_BACKENDS:
            raise UserError(
                f"--export-dir is read by --backend onnxruntime (its stages) and the Hailo backends (its "
                f"plan, without --model), not {self.name}: drop one of them"
            )
        if self.hef_dir is not None and self.name not in HAILO_BACKENDS:
            raise UserError(f"--hef-dir is read by --backend hailo_runtime or hailo_emulator, not {self.name}")

    @property
    def runs_any_plan(self) -> bool:
        """True when the backend builds what it runs from the plan itself (torch_proxy, or
        onnxruntime exporting into the run folder); False when it runs given artifacts
        (an export folder, HEFs, HARs) that fix the plan."""
        return self.name == "torch_proxy" or (self.name == "onnxruntime" and self.export_dir is None)

    def given(self) -> list[tuple[str, Path | None]]:
        """The folders the backend reads, for ``guard.check_run_files``."""
        return [("--export-dir", self.export_dir), ("--hef-dir", self.hef_dir), ("--noise-dir", self.noise_dir)]

    def factory_options(self) -> dict:
        if self.name == "hailo_runtime":
            return {"hef_dir": self.hef_dir, "io_format": self.io_format, "batch_size": self.batch_size}
        if self.name == "hailo_emulator":
            return {"hef_dir": self.hef_dir, "context": self.context}
        if self.name == "hailo_quant":
            return {"noise_dir": self.noise_dir}
        return {}


def open_backend(options: BackendOptions, model_info: dict, scratch: Path | None) -> Backend:
    """The backend ``options`` name. onnxruntime without ``--export-dir`` exports each plan it is
    prepared for into ``scratch`` (and nowhere else); a ``--noise-dir`` is checked to be this
    model's first."""
    factory_options = options.factory_options()
    if options.noise_dir is not None:
        from ..hailo.noise_folder import check_noise_dir_model

        check_noise_dir_model(options.noise_dir, model_info)
    if options.name == "onnxruntime":
        factory_options.update(
            {"export_dir": options.export_dir}
            if options.export_dir is not None
            else {"scratch": scratch, "model_info": model_info}
        )
    return load_backend(options.name, **factory_options)


def open_emulation(options: BackendOptions) -> Backend | None:
    """The device-arithmetic emulation a quantized backend is compared with (``--noise-dir``), or
    None. For ``--backend hailo_quant`` itself there is nothing else to compare with."""
    if options.noise_dir is None or options.name == "hailo_quant":
        return None
    return load_backend("hailo_quant", noise_dir=options.noise_dir)
