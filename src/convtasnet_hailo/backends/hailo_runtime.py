"""``hailo_runtime``: runs compiled HEFs on a Hailo device through HailoRT (``hailo_platform``).

Written against HailoRT's vstream API (HAILO_FACTS.md, "Runtime API"; ``pyhailort.py`` on branch
``hailo8``), because it addresses a *network* inside a network group and the InferModel API does
not ("Passing network name is not supported yet!"): a HEF from `compile` holds one network group
of up to 8 stages joined as networks (``plan.packing``); each stage gets its own vstream params
(``InputVStreamParams.make(ng, network_name=...)``) and ``InferVStreams`` pipeline, which runs only
that network. One VDevice (round-robin scheduler), every HEF configured once in ``prepare``, all
tiles of a stage sent in batches in the HEF's layout (NHWC), float32 or the HEF's quantized format
(host-side scale/zero-point). A device holds at most 32 configured network groups
(``plan.packing.RuntimeLimits``) and the vstream API frees them only with the VDevice: more HEFs
than that run in windows, each on a fresh VDevice, released and reconfigured as the executor moves
on, and say so (stderr once, ``reconfigurations`` in the run JSON). Imported lazily. Never falls
back to another backend.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..compile.layout import dfc_net_name, nchw_to_nhwc, nhwc_to_nchw
from ..compile.manifest import HefFile, hef_files
from ..errors import UserError
from ..plan.builder import StagePlan
from ..plan.packing import HAILORT_4_23, RuntimeLimits
from ..plan.stages import Stage
from ..plan.builder import refuse_float_only
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
    except Exception as exc:  # a binding that fails at import (a driver or library mismatch) raises anything
        raise UserError(f"backend hailo_runtime: HailoRT (hailo_platform) fails at import ({_first_line(exc)}); "
                        f"repair the install: {RUNTIME_FIX}") from None
    return hailo_platform


def _first_line(exc: Exception) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


@dataclasses.dataclass
class _StagePipeline:
    """One stage on the device: its network's vstream names in the plan's port order, and, once
    its window is configured, the network group and the open ``InferVStreams``."""

    hef: HefFile
    network: str
    input_infos: list
    output_infos: list
    group: Any = None
    pipeline: Any = None


@register_backend("hailo_runtime")
class HailoRuntimeBackend(Backend):
    name = "hailo_runtime"
    #: A HEF always computes in its quantized format, whatever the I/O format.
    quantized = True

    def __init__(self, hef_dir: str | Path | None = None, batch_size: int = 8, timeout_ms: int = 10_000,
                 io_format: str = "float32", limits: RuntimeLimits = HAILORT_4_23) -> None:
        if hef_dir is None:
            raise UserError("backend hailo_runtime needs compiled stages: pass --hef-dir DIR (from `compile`)")
        if io_format not in IO_FORMATS:
            raise UserError(f"--io-format {io_format!r}: choose {' or '.join(IO_FORMATS)}")
        self.hef_dir, self.batch_size, self.timeout_ms, self.io_format = Path(hef_dir), batch_size, timeout_ms, io_format
        self.hailo = import_runtime()
        self.limits = limits
        self._stages: dict[str, _StagePipeline] = {}
        self._windows: list[list[HefFile]] = []
        self._window: int | None = None
        self._window_stack = contextlib.ExitStack()  # the VDevice and pipelines of the configured window
        self.configurations = 0
        self.reconfigurations = 0
        self.device_seconds: dict[str, float] = {}
        self.device_calls: dict[str, int] = {}

    def _open_hef(self, hef: HefFile):
        try:
            return self.hailo.HEF(str(hef.path))
        except Exception as exc:
            raise UserError(f"stage {hef.stages[0]}: HailoRT cannot read {hef.path.name} ({_first_line(exc)}); "
                            "recompile it") from None

    def _network_of(self, stage: str, hef: HefFile, names: list[str]) -> str:
        """The network that runs ``stage``: the only one, or the one named as the DFC named the
        stage when it was joined (``<group>/<net>``; unconfirmed naming)."""
        if len(hef.stages) == 1 and len(names) == 1:
            return names[0]
        wanted = dfc_net_name(stage)
        found = [n for n in names if n.split("/")[-1] == wanted]
        if len(found) != 1:
            raise UserError(f"stage {stage}: {hef.path.name} has no network named {wanted} (it has "
                            f"{', '.join(names)}); recompile the export with `convtasnet-hailo compile`")
        return found[0]

    def _check_shapes(self, stage: Stage, infos: list, tile_w: int, hef: HefFile) -> None:
        expected = [(1, p.geometry.tile_input_width(tile_w), p.channels) for p in stage.inputs]
        got = [tuple(info.shape) for info in infos]
        if got != expected:
            raise UserError(f"stage {stage.name}: {hef.path.name} takes inputs {got}, the plan at tile_w {tile_w} needs "
                            f"{expected} (NHWC); compile the export made for this tile width")

    def _prepare(self, plan: StagePlan, tile_w: int) -> None:
        refuse_float_only(plan.float_only_options, f"--backend {self.name}")
        self._release()
        hefs = hef_files(self.hef_dir, [s.name for s in plan.stages])
        for hef in hefs:
            handle = self._open_hef(hef)
            names = handle.get_networks_names()
            for name in hef.stages:
                network = self._network_of(name, hef, names)
                inputs, outputs = handle.get_input_vstream_infos(network), handle.get_output_vstream_infos(network)
                self._check_shapes(plan.stage(name), inputs, tile_w, hef)
                self._stages[name] = _StagePipeline(hef, network, inputs, outputs)
        self._windows = self._split_windows(hefs)
        if len(self._windows) > 1:
            print(f"hailo_runtime: {len(hefs)} HEFs exceed the {self.limits.network_groups_per_device} network groups "
                  f"a device configures at once; configuring in {len(self._windows)} windows, reconfigured for every "
                  "utterance (export with --networks-per-group 8 to pack the stages into fewer)", file=sys.stderr)
        self._configure_window(0)

    def _split_windows(self, hefs: list[HefFile]) -> list[list[HefFile]]:
        """Consecutive HEFs, at most ``network_groups_per_device`` network groups (one per HEF) each."""
        per_window = self.limits.network_groups_per_device
        return [hefs[i:i + per_window] for i in range(0, len(hefs), per_window)]

    def _vdevice(self):
        hailo = self.hailo
        params = hailo.VDevice.create_params()
        params.scheduling_algorithm = hailo.HailoSchedulingAlgorithm.ROUND_ROBIN
        try:
            return self._window_stack.enter_context(hailo.VDevice(params))
        except Exception as exc:  # HailoRTException subclasses
            raise UserError(f"no usable Hailo device ({_first_line(exc)}); check `hailortcli scan` and the hailo_pci "
                            "driver") from None

    def _configure_window(self, index: int) -> None:
        """Releases the configured window (its VDevice: the only way the vstream API frees network
        groups) and configures every HEF of window ``index`` with one pipeline per stage."""
        if self._window is not None:
            self._window_stack.close()
            for pipe in self._stages.values():
                pipe.group = pipe.pipeline = None
            self.reconfigurations += 1
        hailo = self.hailo
        vdevice = self._vdevice()
        fmt = hailo.FormatType.FLOAT32 if self.io_format == "float32" else None  # None: the HEF's own format
        for hef in self._windows[index]:
            handle = self._open_hef(hef)
            params = hailo.ConfigureParams.create_from_hef(handle, interface=hailo.HailoStreamInterface.PCIe)
            for group_params in params.values():
                group_params.batch_size = self.batch_size
            try:
                (group,) = vdevice.configure(handle, params)
            except Exception as exc:  # HailoRTException: a limit, the architecture or the device
                text = str(exc)
                hint = "; it was compiled for another architecture: recompile with the right --hw-arch" \
                    if "arch" in text.lower() else ""
                raise UserError(f"stage {hef.stages[0]}: HailoRT cannot configure {hef.path.name} "
                                f"({_first_line(exc)}){hint}") from None
            self.configurations += 1
            for name in hef.stages:
                pipe = self._stages[name]
                inputs = hailo.InputVStreamParams.make(group, format_type=fmt, network_name=pipe.network)
                outputs = hailo.OutputVStreamParams.make(group, format_type=fmt, network_name=pipe.network)
                pipe.group = group
                pipe.pipeline = self._window_stack.enter_context(hailo.InferVStreams(group, inputs, outputs))
        self._window = index

    def _to_device(self, info, tiles: np.ndarray) -> np.ndarray:
        if self.io_format == "float32":
            return np.ascontiguousarray(tiles, dtype=np.float32)
        # The HEF's own integer format (vstream_info.format.type, quant_info: unconfirmed attribute paths).
        dtype = np.uint8 if getattr(info.format.type, "name", "") == "UINT8" else np.uint16
        return quantize(tiles, info.quant_info.qp_scale, info.quant_info.qp_zp, dtype)

    def _from_device(self, info, buffer: np.ndarray) -> np.ndarray:
        if self.io_format == "float32":
            return np.asarray(buffer, np.float32)
        return dequantize(buffer, info.quant_info.qp_scale, info.quant_info.qp_zp)

    def run_stage(self, stage: Stage, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        pipe = self._stages.get(stage.name)
        if pipe is None:
            raise UserError(f"stage {stage.name} is not among the configured HEFs")
        if pipe.pipeline is None:
            self._configure_window(next(i for i, w in enumerate(self._windows) if pipe.hef in w))
        # vstreams are matched to the plan's ports in order (unconfirmed naming; shapes checked in prepare)
        nhwc = [nchw_to_nhwc(inputs[p.name]) for p in stage.inputs]
        batch = len(nhwc[0])
        outputs: list[list[np.ndarray]] = [[] for _ in pipe.output_infos]
        started = time.perf_counter()
        for first in range(0, batch, self.batch_size):
            chunk = slice(first, min(first + self.batch_size, batch))
            feed = {info.name: self._to_device(info, tiles[chunk]) for info, tiles in zip(pipe.input_infos, nhwc)}
            try:
                result = pipe.pipeline.infer(feed)
            except Exception as exc:  # HailoRTException (timeouts included): no fallback, name the stage
                raise UserError(f"stage {stage.name}: the device run failed ({_first_line(exc)}); timeout was "
                                f"{self.timeout_ms} ms") from None
            for k, info in enumerate(pipe.output_infos):
                outputs[k].append(self._from_device(info, result[info.name]))
        self.device_seconds[stage.name] = self.device_seconds.get(stage.name, 0.0) + time.perf_counter() - started
        self.device_calls[stage.name] = self.device_calls.get(stage.name, 0) + -(-batch // self.batch_size)
        return {port.name: nhwc_to_nchw(np.concatenate(outputs[k])) for k, port in enumerate(stage.outputs)}

    def stats(self) -> dict:
        return {"device_seconds": {k: round(v, 6) for k, v in self.device_seconds.items()},
                "device_calls": dict(self.device_calls), "hefs": sum(len(w) for w in self._windows),
                "configure_windows": len(self._windows), "configurations": self.configurations,
                "reconfigurations": self.reconfigurations}

    def _release(self) -> None:
        self._window_stack.close()
        self._window = None
        self._stages.clear()

    def _close(self) -> None:
        self._release()
