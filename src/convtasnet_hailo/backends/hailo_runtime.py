"""``hailo_runtime``: runs compiled HEFs on a Hailo device through HailoRT (``hailo_platform``).

One VDevice for the whole run (round-robin scheduler), every stage's HEF configured once in
``prepare``, all tiles of a stage sent in batches in the HEF's layout (NHWC), float32 or the
HEF's quantized format (host-side scale/zero-point). A device holds at most 32 configured network
groups (``plan.packing.RuntimeLimits``): a plan with more HEFs than that is configured in windows
of consecutive stages, released and reconfigured as the executor moves on, and says so (stderr
once, ``reconfigurations`` in the run JSON). Written against the documented InferModel
API (HAILO_FACTS.md, "Runtime API"); imported lazily. Never falls back to another backend.
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

import numpy as np

from ..compile.layout import nchw_to_nhwc, nhwc_to_nchw
from ..compile.manifest import stage_artifacts
from ..errors import UserError
from ..plan.builder import StagePlan
from ..plan.packing import HAILORT_4_23, RuntimeLimits
from ..plan.stages import Stage
from .base import Backend, register_backend

RUNTIME_FIX = ("install HailoRT 4.x with its Python binding (Raspberry Pi OS: `sudo apt install hailo-all`; "
               "elsewhere hailort .deb + hailort wheel from https://hailo.ai/developer-zone/)")
IO_FORMATS = ("float32", "quantized")


def quantize(x: np.ndarray, scale: float, zero_point: float, dtype) -> np.ndarray:
    """float -> the HEF's integer format: round(x / scale + zero_point), clipped to the type."""
    info = np.iinfo(dtype)
    # float64: in float32, adding a zero point like 32768 drops the low bits before rounding
    return np.clip(np.rint(np.asarray(x, np.float64) / scale + zero_point), info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: float) -> np.ndarray:
    return ((q.astype(np.float32) - zero_point) * scale).astype(np.float32)


def import_runtime():
    try:
        import hailo_platform
    except ImportError:
        raise UserError(f"backend hailo_runtime needs HailoRT (hailo_platform is not importable): {RUNTIME_FIX}") from None
    return hailo_platform


def hef_paths(hef_dir: Path, plan: StagePlan) -> dict[str, Path]:
    """stage -> HEF file (``compile.manifest.stage_artifacts``)."""
    return stage_artifacts(hef_dir, [s.name for s in plan.stages], "hef")


@register_backend("hailo_runtime")
class HailoRuntimeBackend(Backend):
    name = "hailo_runtime"

    def __init__(self, hef_dir: str | Path | None = None, batch_size: int = 8, timeout_ms: int = 10_000,
                 io_format: str = "float32", limits: RuntimeLimits = HAILORT_4_23) -> None:
        if hef_dir is None:
            raise UserError("backend hailo_runtime needs compiled stages: pass --hef-dir DIR (from `compile`)")
        if io_format not in IO_FORMATS:
            raise UserError(f"--io-format {io_format!r}: choose {' or '.join(IO_FORMATS)}")
        self.hef_dir, self.batch_size, self.timeout_ms, self.io_format = Path(hef_dir), batch_size, timeout_ms, io_format
        self.hailo = import_runtime()
        self._stack = contextlib.ExitStack()
        self._models: dict[str, tuple] = {}  # stage -> (infer_model, configured_model or None)
        self.limits = limits
        self._windows: list[list[str]] = []
        self._window_stack = contextlib.ExitStack()
        self.configurations = 0
        self.reconfigurations = 0
        self.device_seconds: dict[str, float] = {}
        self.device_calls: dict[str, int] = {}

    def _vdevice(self):
        hailo = self.hailo
        params = hailo.VDevice.create_params()
        params.scheduling_algorithm = hailo.HailoSchedulingAlgorithm.ROUND_ROBIN
        try:
            return self._stack.enter_context(hailo.VDevice(params))
        except Exception as exc:  # HailoRTException subclasses
            raise UserError(f"no usable Hailo device ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                            "check `hailortcli scan` and the hailo_pci driver") from None

    def _check_shapes(self, stage: Stage, infer_model, tile_w: int, hef: Path) -> None:
        expected = {p.name: (1, p.geometry.tile_input_width(tile_w), p.channels) for p in stage.inputs}
        got = [tuple(infer_model.input(n).shape) for n in infer_model.input_names]
        if sorted(got) != sorted(expected.values()):
            raise UserError(f"stage {stage.name}: {hef.name} takes inputs {got}, the plan at tile_w {tile_w} needs "
                            f"{sorted(expected.values())} (NHWC); compile the export made for this tile width")

    def _prepare(self, plan: StagePlan, tile_w: int) -> None:
        self._release()
        paths = hef_paths(self.hef_dir, plan)
        vdevice = self._vdevice()
        hailo = self.hailo
        infer_models = {}
        for stage in plan.stages:
            try:
                infer_model = vdevice.create_infer_model(str(paths[stage.name]))
            except Exception as exc:
                text = str(exc)
                hint = "it was compiled for another architecture; recompile with the right --hw-arch" \
                    if "arch" in text.lower() else "recompile it"
                raise UserError(f"stage {stage.name}: HailoRT cannot load {paths[stage.name].name} "
                                f"({type(exc).__name__}); {hint}") from None
            self._check_shapes(stage, infer_model, tile_w, paths[stage.name])
            infer_model.set_batch_size(self.batch_size)
            fmt = hailo.FormatType.FLOAT32 if self.io_format == "float32" else None
            for name in list(infer_model.input_names) + list(infer_model.output_names):
                stream = infer_model.input(name) if name in infer_model.input_names else infer_model.output(name)
                if fmt is not None:
                    stream.set_format_type(fmt)
            infer_models[stage.name] = infer_model
        # One network group per stage HEF; a window holds what the device configures at once.
        per_window = self.limits.network_groups_per_device
        names = [stage.name for stage in plan.stages]
        self._windows = [names[i:i + per_window] for i in range(0, len(names), per_window)]
        if len(self._windows) > 1:
            print(f"hailo_runtime: {len(names)} HEFs exceed the {per_window} network groups a device configures at "
                  f"once; configuring in {len(self._windows)} windows, reconfigured for every utterance (pack the "
                  "stages into fewer network groups to avoid it)", file=sys.stderr)
        self._models = {name: (model, None) for name, model in infer_models.items()}
        self._configure_window(self._windows[0])

    def _configure_window(self, window: list[str]) -> None:
        """Releases the configured window and configures ``window`` (every stage of it)."""
        if any(configured is not None for _, configured in self._models.values()):
            self._window_stack.close()
            self._models = {name: (model, None) for name, (model, _) in self._models.items()}
            self.reconfigurations += 1
        for name in window:
            model = self._models[name][0]
            try:
                configured = self._window_stack.enter_context(model.configure())
            except Exception as exc:  # HailoRTException: a limit or the device
                raise UserError(f"stage {name}: HailoRT cannot configure its HEF ({type(exc).__name__}: "
                                f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
            self._models[name] = (model, configured)
            self.configurations += 1

    #: A HEF always computes in its quantized format, whatever the I/O format.
    quantized = True

    def _device_dtype(self, stream):
        if self.io_format == "float32":
            return np.float32
        # The HEF's own integer format (unconfirmed attribute path: stream.format.type).
        return np.uint8 if getattr(stream.format.type, "name", "") == "UINT8" else np.uint16

    def _to_device(self, stream, tiles: np.ndarray) -> np.ndarray:
        if self.io_format == "float32":
            return tiles.astype(np.float32)
        quant = stream.quant_infos[0]
        return quantize(tiles, quant.qp_scale, quant.qp_zp, self._device_dtype(stream))

    def _from_device(self, stream, buffer: np.ndarray) -> np.ndarray:
        if self.io_format == "float32":
            return buffer
        quant = stream.quant_infos[0]
        return dequantize(buffer, quant.qp_scale, quant.qp_zp)

    def run_stage(self, stage: Stage, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if stage.name not in self._models:
            raise UserError(f"stage {stage.name} is not among the configured HEFs")
        if self._models[stage.name][1] is None:
            self._configure_window(next(w for w in self._windows if stage.name in w))
        infer_model, configured = self._models[stage.name]
        # HEF stream names are the parser's (net/input_layer1...): matched to the plan's ports in
        # order (unconfirmed naming; the shapes were checked in prepare).
        in_names, out_names = list(infer_model.input_names), list(infer_model.output_names)
        nhwc = [nchw_to_nhwc(inputs[p.name]) for p in stage.inputs]
        batch = len(nhwc[0])
        outputs: list[list[np.ndarray]] = [[] for _ in out_names]
        started = time.perf_counter()
        for first in range(0, batch, self.batch_size):
            chunk = range(first, min(first + self.batch_size, batch))
            bindings = []
            for index in chunk:
                binding = configured.create_bindings()
                for name, tiles in zip(in_names, nhwc):
                    binding.input(name).set_buffer(self._to_device(infer_model.input(name), tiles[index]))
                for name in out_names:
                    stream = infer_model.output(name)
                    binding.output(name).set_buffer(np.empty(stream.shape, dtype=self._device_dtype(stream)))
                bindings.append(binding)
            try:
                configured.run(bindings, self.timeout_ms)
            except Exception as exc:  # HailoRTException (timeouts included): no fallback, name the stage
                raise UserError(f"stage {stage.name}: the device run failed ({type(exc).__name__}: "
                                f"{str(exc).splitlines()[0] if str(exc) else ''}); timeout was {self.timeout_ms} ms") from None
            for binding in bindings:
                for k, name in enumerate(out_names):
                    outputs[k].append(self._from_device(infer_model.output(name), binding.output(name).get_buffer()))
        self.device_seconds[stage.name] = self.device_seconds.get(stage.name, 0.0) + time.perf_counter() - started
        self.device_calls[stage.name] = self.device_calls.get(stage.name, 0) + -(-batch // self.batch_size)
        return {port.name: nhwc_to_nchw(np.stack(outputs[k])) for k, port in enumerate(stage.outputs)}

    def stats(self) -> dict:
        return {"device_seconds": {k: round(v, 6) for k, v in self.device_seconds.items()},
                "device_calls": dict(self.device_calls), "configure_windows": len(self._windows),
                "configurations": self.configurations, "reconfigurations": self.reconfigurations}

    def _release(self) -> None:
        self._window_stack.close()
        self._stack.close()
        self._models.clear()

    def _close(self) -> None:
        self._release()
