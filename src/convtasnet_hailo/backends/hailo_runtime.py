"""``hailo_runtime``: runs compiled HEFs on a Hailo device through HailoRT (``hailo_platform``).

The execution mode is read off the HEFs, never assumed (``plan.packing``; docs/hailo_facts.md,
"Runtime limits"; hailo-ai/hailort):

- HEFs of one stage each -> ``scheduled_groups``: one VDevice under the model scheduler
  (ROUND_ROBIN, always set: the 4.23 Python binding's default is NONE, ``pyhailort.cpp``
  ``VDeviceParams.default()``), every HEF configured once, each stage's network group called in turn. On
  HailoRT 4.x (Hailo-8/8L) through vstreams; on HailoRT 5.x (Hailo-10H), which has no
  ``configure()`` (``vdevice/vdevice_hrpc_client.cpp``), through InferModel, one per network
  group (``create_infer_model(hef, name)`` takes a network-group name: ``infer_model.cpp``).
- HEFs of several stages joined as networks -> ``activated_packs`` (HailoRT 4.x only): a VDevice
  with scheduling NONE, one pack activated at a time, its networks run one by one through a
  vstream pipeline over that network alone, which HailoRT allows only for a single-context group
  (``net_flow/pipeline/inference_pipeline.cpp``). A multi-context pack is refused here, before
  anything runs, with the re-export that fixes it; under a scheduler such a pack would never
  dispatch (``vdevice/scheduler/infer_request_accumulator.cpp``).

A device holds at most 32 configured network groups (26 on HailoRT 5): more run in windows,
released and reconfigured on a fresh VDevice as the executor moves on (HailoRT frees a slot only
with its device, ``vdma/vdma_device.cpp``), and say so (stderr once; ``reconfigurations`` in the
run JSON). A HEF newer than this HailoRT (HAILO_HEF_NOT_SUPPORTED) and one for another chip
(HAILO_HEF_NOT_COMPATIBLE_WITH_DEVICE) are refused in one line saying what to do
(``compile.versions``). Each port goes to the stream HailoRT says holds its ONNX name, never to a
list position, and tiles go in batches in the shape HailoRT gives that stream (NHWC, NHW or NC:
``backends.streams``), float32 or the HEF's quantized format (host-side scale/zero-point). Every
device wait has the ``timeout_ms`` given here.
Imported lazily. Never falls back to another backend.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..dfc.manifest import HefFile, hef_files
from ..dfc.versions import not_supported_line
from ..errors import UserError
from ..hailo.layout import dfc_net_name, nchw_to_nhwc, nhwc_to_nchw
from ..plan.onnx_names import port_original_names
from ..plan.options import refuse_float_only
from ..plan.packing import HAILORT_4_23, HAILORT_5, ExecutionMode, RuntimeLimits
from ..plan.stage_plan import StagePlan
from ..plan.stages import Stage
from .base import Backend, register_backend
from .hailort_api import (
    HEF_NOT_SUPPORTED,
    INFER_MODEL,
    IO_FORMATS,
    VSTREAMS,
    dequantize,
    first_line,
    import_runtime,
    one_scale,
    quantize,
    runtime_api,
)
from .streams import bind_ports, format_order, from_stream, reported_shape, to_stream

log = logging.getLogger(__name__)


@dataclasses.dataclass
class _StagePipeline:
    """One stage on the device: its HEF, network and vstream infos (in the plan's port order, each
    found by its original name: ``backends.streams``),
    and, once its window is configured, its network group and its way in (an ``InferVStreams``
    over its network, or a configured InferModel)."""

    hef: HefFile
    group_name: str
    network: str
    input_infos: list
    output_infos: list
    group: Any = None
    pipeline: Any = None


@dataclasses.dataclass
class _HefFacts:
    hef: HefFile
    group_name: str
    multi_context: bool


@register_backend("hailo_runtime")
class HailoRuntimeBackend(Backend):
    name = "hailo_runtime"
    #: A HEF always computes in its quantized format, whatever the I/O format.
    quantized = True

    def __init__(
        self,
        hef_dir: str | Path | None = None,
        batch_size: int = 8,
        timeout_ms: int = 10_000,
        io_format: str = "float32",
        limits: RuntimeLimits | None = None,
    ) -> None:
        if hef_dir is None:
            raise UserError("backend hailo_runtime needs compiled stages: pass --hef-dir DIR (from `compile`)")
        if io_format not in IO_FORMATS:
            raise UserError(f"--io-format {io_format!r}: choose {' or '.join(IO_FORMATS)}")
        self.hef_dir, self.batch_size, self.timeout_ms, self.io_format = (
            Path(hef_dir),
            batch_size,
            timeout_ms,
            io_format,
        )
        self.hailo = import_runtime()
        self.version, self.api = runtime_api(self.hailo)
        self.limits = limits or (HAILORT_5 if self.api == INFER_MODEL else HAILORT_4_23)
        self.mode: ExecutionMode | None = None
        self._stages: dict[str, _StagePipeline] = {}
        self._windows: list[list[HefFile]] = []
        self._window: int | None = None
        self._vdevice = None
        self._device_stack = contextlib.ExitStack()  # the VDevice
        self._window_stack = contextlib.ExitStack()  # the configured window's pipelines or infer models
        self._activation = None  # the activated pack's context (activated_packs)
        self._last_group = None
        self.configurations = self.reconfigurations = self.activations = self.switches = 0
        self.device_seconds: dict[str, float] = {}
        self.device_calls: dict[str, int] = {}

    # -- preparation: facts from the HEFs, the mode, the windows --------------------------------

    def _open_hef(self, hef: HefFile):
        try:
            return self.hailo.HEF(str(hef.path))
        except Exception as exc:
            if HEF_NOT_SUPPORTED in str(exc):  # status 92: a HEF newer than this HailoRT (compile.versions)
                raise UserError(
                    not_supported_line(f"stage {hef.stages[0]}", hef.path.name, hef.dfc_version, self.version)
                ) from None
            raise UserError(
                f"stage {hef.stages[0]}: HailoRT cannot read {hef.path.name} ({first_line(exc)}); recompile it"
            ) from None

    def _network_of(self, stage: str, hef: HefFile, names: list[str]) -> str:
        """The network that runs ``stage``: the only one, or the one named as the DFC named the
        stage when it was joined (``<group>/<net>``; unconfirmed naming)."""
        if len(hef.stages) == 1 and len(names) == 1:
            return names[0]
        wanted = dfc_net_name(stage)
        found = [n for n in names if n.split("/")[-1] == wanted]
        if len(found) != 1:
            raise UserError(
                f"stage {stage}: {hef.path.name} has no network named {wanted} (it has "
                f"{', '.join(names)}); recompile the export with `convtasnet-hailo compile`"
            )
        return found[0]

    @staticmethod
    def _check_shapes(stage: Stage, ports: list, infos: list, widths: list[int], where: str, tile_w: int) -> None:
        """Each port's stream has the port's NHWC frame (1, width, channels) in the shape HailoRT
        reports for the stream's format order (``streams.reported_shape``)."""
        for port, info, width in zip(ports, infos, widths, strict=False):
            order, nhwc = format_order(info), (1, width, port.channels)
            if tuple(info.shape) != reported_shape(order, nhwc):
                raise UserError(
                    f"stage {stage.name}: port {port.name} is stream {info.name} of {where}, shape "
                    f"{tuple(info.shape)} ({order}); the plan at tile_w {tile_w} needs {nhwc} (NHWC): "
                    "compile the export made for this plan and tile width"
                )

    def _stream_originals(self, handle, group: str, infos: list, where: str) -> dict[str, tuple[str, ...]]:
        """Stream -> the ONNX names HailoRT says it holds (``HEF.get_original_names_from_vstream_name``)."""
        originals = {}
        for info in infos:
            try:
                originals[info.name] = tuple(handle.get_original_names_from_vstream_name(info.name, group))
            except Exception as exc:  # HailoRTException: the HEF does not map the stream
                raise UserError(
                    f"{where}: HailoRT gives no original names for stream {info.name} "
                    f"({first_line(exc)}); recompile the export with `convtasnet-hailo compile`"
                ) from None
        return originals

    def _bind(self, handle, group: str, stage: Stage, network: str, tile_w: int, hef: HefFile) -> tuple[list, list]:
        """The stage's input and output vstream infos, in the plan's port order, each found by name."""
        where = f"network {network} of {hef.path.name}"
        wanted = port_original_names(stage)
        bound = []
        for kind, ports, infos in (
            ("input", stage.inputs, handle.get_input_vstream_infos(network)),
            ("output", stage.outputs, handle.get_output_vstream_infos(network)),
        ):
            by_name = {info.name: info for info in infos}
            names = bind_ports(
                f"stage {stage.name} ({where})",
                kind,
                {p.name: wanted[p.name] for p in ports},
                self._stream_originals(handle, group, infos, where),
            )
            bound.append([by_name[names[p.name]] for p in ports])
        self._check_shapes(
            stage,
            list(stage.inputs),
            bound[0],
            [p.geometry.tile_input_width(tile_w) for p in stage.inputs],
            where,
            tile_w,
        )
        self._check_shapes(
            stage, list(stage.outputs), bound[1], [p.width(tile_w) for p in stage.outputs], where, tile_w
        )
        return bound[0], bound[1]

    def _read_hef(self, plan: StagePlan, tile_w: int, hef: HefFile) -> _HefFacts:
        handle = self._open_hef(hef)
        infos = handle.get_network_groups_infos()
        if len(infos) != 1:
            raise UserError(
                f"{hef.path.name} holds {len(infos)} network groups; `compile` makes one per HEF: recompile the export"
            )
        group = infos[0]
        names = handle.get_networks_names(group.name)
        for name in hef.stages:
            network = self._network_of(name, hef, names)
            inputs, outputs = self._bind(handle, group.name, plan.stage(name), network, tile_w, hef)
            self._stages[name] = _StagePipeline(hef, group.name, network, inputs, outputs)
        return _HefFacts(hef, group.name, bool(group.is_multi_context))

    def _choose_mode(self, facts: list[_HefFacts]) -> ExecutionMode:
        """From the HEFs: one stage each -> scheduled_groups; packs -> activated_packs, which
        needs HailoRT 4's vstreams and single-context packs."""
        packs = [f for f in facts if len(f.hef.stages) > 1]
        if not packs:
            return ExecutionMode.SCHEDULED_GROUPS
        if self.api == INFER_MODEL:
            raise UserError(
                f"{packs[0].hef.path.name} joins {len(packs[0].hef.stages)} stages in one network group; "
                f'HailoRT {self.version} runs only InferModel, which runs whole network groups ("Passing '
                'network name is not supported yet!"): re-export with --execution-mode scheduled_groups '
                "--hw-arch hailo10h and compile again"
            )
        multi = [f for f in packs if f.multi_context]
        if multi:
            raise UserError(
                f"pack {multi[0].group_name} ({multi[0].hef.path.name}) compiled multi-context, and HailoRT "
                'runs one network of a multi-context group only together with all the others ("For '
                "multi-context network groups, the pipeline must be created for all available "
                f'networks"; {len(multi)} of {len(packs)} packs are): re-export with --networks-per-group 1 '
                "(or smaller packs) and compile again"
            )
        return ExecutionMode.ACTIVATED_PACKS

    def _prepare(self, plan: StagePlan, tile_w: int) -> None:
        refuse_float_only(plan.float_only_options, f"--backend {self.name}")
        self._release()
        hefs = hef_files(self.hef_dir, [s.name for s in plan.stages])
        facts = [self._read_hef(plan, tile_w, hef) for hef in hefs]
        self.mode = self._choose_mode(facts)
        per_window = self.limits.network_groups_per_device
        self._windows = [hefs[i : i + per_window] for i in range(0, len(hefs), per_window)]
        if len(self._windows) > 1:
            log.warning(
                f"hailo_runtime: {len(hefs)} network groups exceed the {per_window} a device configures at "
                f"once; configuring in {len(self._windows)} windows, reconfigured for every utterance"
            )
        self._open_device()
        self._configure_window(0)

    # -- the device and its windows --------------------------------------------------------------

    def _open_device(self) -> None:
        hailo = self.hailo
        params = hailo.VDevice.create_params()
        params.scheduling_algorithm = (
            hailo.HailoSchedulingAlgorithm.NONE
            if self.mode is ExecutionMode.ACTIVATED_PACKS
            else hailo.HailoSchedulingAlgorithm.ROUND_ROBIN
        )
        try:
            self._vdevice = self._device_stack.enter_context(hailo.VDevice(params))
        except Exception as exc:  # HailoRTException subclasses
            raise UserError(
                f"no usable Hailo device ({first_line(exc)}); check `hailortcli scan` and the hailo_pci driver"
            ) from None

    def _configure_window(self, index: int) -> None:
        """Releases the configured window and configures every HEF of window ``index`` on a fresh
        VDevice: HailoRT frees a configured core-op's slot only when the device object dies (both
        branches, ``vdma/vdma_device.hpp``: ``m_core_ops`` is a vector of weak pointers that is only
        appended to, and ``vdma_device.cpp`` counts its expired entries against the limit), so
        neither a released network group nor a shut-down ConfiguredInferModel (HailoRT 5) gives
        its slot back on the same VDevice."""
        if self._window is not None:
            self._deactivate()
            self._window_stack.close()
            for pipe in self._stages.values():
                pipe.group = pipe.pipeline = None
            self._device_stack.close()
            self._open_device()
            self._last_group = None
            self.reconfigurations += 1
        for hef in self._windows[index]:
            if self.api == INFER_MODEL:
                self._configure_infer_model(hef)
            else:
                self._configure_vstreams(hef)
            self.configurations += 1
        self._window = index

    @staticmethod
    def _configure_failed(hef: HefFile, exc: Exception) -> UserError:
        if type(exc).__name__ == "HailoRTHEFNotCompatibleWithDevice":  # status 93, pyhailort.py
            return UserError(
                f"stage {hef.stages[0]}: this device cannot run {hef.path.name} ({first_line(exc)}): a "
                "Hailo-8 runs hailo8, hailo8r and hailo8l HEFs, a Hailo-8L only hailo8l ones, a Hailo-10H "
                "only hailo10h ones (HailoRT device_internal.cpp is_hef_compatible); recompile with the "
                "--hw-arch of this device (`hailortcli fw-control identify` names it)"
            )
        return UserError(
            f"stage {hef.stages[0]}: HailoRT cannot configure {hef.path.name} ({first_line(exc)}; the "
            f"reason is in hailort.log)"
        )

    def _configure_vstreams(self, hef: HefFile) -> None:
        hailo = self.hailo
        handle = self._open_hef(hef)
        params = hailo.ConfigureParams.create_from_hef(handle, interface=hailo.HailoStreamInterface.PCIe)
        for group_params in params.values():
            group_params.batch_size = self.batch_size
        try:
            (group,) = self._vdevice.configure(handle, params)
        except Exception as exc:  # HailoRTException: a limit, the architecture or the device
            raise self._configure_failed(hef, exc) from None
        fmt = hailo.FormatType.FLOAT32 if self.io_format == "float32" else None  # None: the HEF's own format
        for name in hef.stages:
            pipe = self._stages[name]
            inputs = hailo.InputVStreamParams.make(
                group, format_type=fmt, timeout_ms=self.timeout_ms, network_name=pipe.network
            )
            outputs = hailo.OutputVStreamParams.make(
                group, format_type=fmt, timeout_ms=self.timeout_ms, network_name=pipe.network
            )
            pipe.group = group
            try:
                pipe.pipeline = self._window_stack.enter_context(hailo.InferVStreams(group, inputs, outputs))
            except Exception as exc:
                raise UserError(
                    f"stage {name}: HailoRT refuses a pipeline over network {pipe.network} "
                    f"({first_line(exc)}; the reason is in hailort.log)"
                ) from None

    def _configure_infer_model(self, hef: HefFile) -> None:
        pipe = self._stages[hef.stages[0]]
        try:
            model = self._vdevice.create_infer_model(str(hef.path), pipe.group_name)
            model.set_batch_size(self.batch_size)
            if self.io_format == "float32":
                for stream in list(model.inputs) + list(model.outputs):
                    stream.set_format_type(self.hailo.FormatType.FLOAT32)
            pipe.pipeline = self._window_stack.enter_context(model.configure())
        except Exception as exc:
            raise self._configure_failed(hef, exc) from None
        pipe.group = model

    def _deactivate(self) -> None:
        if self._activation is not None:
            activation, self._activation = self._activation, None
            activation.__exit__(None, None, None)

    def _enter_group(self, pipe: _StagePipeline) -> None:
        """Counts scheduler switches; in activated_packs, activates the stage's pack (one at a time)."""
        if pipe.group is self._last_group:
            return
        self._last_group = pipe.group
        if self.mode is ExecutionMode.SCHEDULED_GROUPS:
            self.switches += 1
            return
        self._deactivate()
        try:
            activation = pipe.group.activate()
            activation.__enter__()
        except Exception as exc:
            raise UserError(
                f"stage {pipe.hef.stages[0]}: HailoRT cannot activate {pipe.group_name} "
                f"({first_line(exc)}; the reason is in hailort.log)"
            ) from None
        self._activation = activation
        self.activations += 1

    # -- running -------------------------------------------------------------------------------

    def _device_dtype(self, info):
        if self.io_format == "float32":
            return np.float32
        # The HEF's own integer format (vstream_info.format.type, quant_info: unconfirmed attribute paths).
        return np.uint8 if getattr(info.format.type, "name", "") == "UINT8" else np.uint16

    def _to_device(self, info, tiles: np.ndarray) -> np.ndarray:
        if self.io_format == "float32":
            return np.ascontiguousarray(tiles, dtype=np.float32)
        scale, zero_point = one_scale(info)
        return quantize(tiles, scale, zero_point, self._device_dtype(info))

    def _from_device(self, info, buffer: np.ndarray) -> np.ndarray:
        if self.io_format == "float32":
            return np.asarray(buffer, np.float32)
        return dequantize(buffer, *one_scale(info))

    def _infer(self, pipe: _StagePipeline, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One batch through the device: the vstream pipeline, or InferModel bindings (one per frame)."""
        if self.api == VSTREAMS:
            return pipe.pipeline.infer(feed)
        frames = len(next(iter(feed.values())))
        outputs = {info.name: np.empty((frames, *info.shape), self._device_dtype(info)) for info in pipe.output_infos}
        bindings = [
            pipe.pipeline.create_bindings(
                input_buffers={name: np.ascontiguousarray(x[k]) for name, x in feed.items()},
                output_buffers={name: out[k] for name, out in outputs.items()},
            )
            for k in range(frames)
        ]
        pipe.pipeline.run(bindings, self.timeout_ms)
        return outputs

    def run_stage(self, stage: Stage, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        pipe = self._stages.get(stage.name)
        if pipe is None:
            raise UserError(f"stage {stage.name} is not among the configured HEFs")
        if pipe.pipeline is None:
            self._configure_window(next(i for i, w in enumerate(self._windows) if pipe.hef in w))
        self._enter_group(pipe)
        # infos are in port order, bound by original name in prepare, where their shapes were checked
        nhwc = [
            to_stream(nchw_to_nhwc(inputs[p.name]), info)
            for p, info in zip(stage.inputs, pipe.input_infos, strict=False)
        ]
        batch = len(nhwc[0])
        outputs: list[list[np.ndarray]] = [[] for _ in pipe.output_infos]
        started = time.perf_counter()
        for first in range(0, batch, self.batch_size):
            chunk = slice(first, min(first + self.batch_size, batch))
            feed = {
                info.name: self._to_device(info, tiles[chunk])
                for info, tiles in zip(pipe.input_infos, nhwc, strict=False)
            }
            try:
                result = self._infer(pipe, feed)
            except Exception as exc:  # HailoRTException (timeouts included): no fallback, name the stage
                raise UserError(
                    f"stage {stage.name}: the device run failed ({first_line(exc)}); timeout was {self.timeout_ms} ms"
                ) from None
            for k, info in enumerate(pipe.output_infos):
                outputs[k].append(self._from_device(info, result[info.name]))
        self.device_seconds[stage.name] = self.device_seconds.get(stage.name, 0.0) + time.perf_counter() - started
        self.device_calls[stage.name] = self.device_calls.get(stage.name, 0) + -(-batch // self.batch_size)
        return {
            port.name: nhwc_to_nchw(from_stream(np.concatenate(outputs[k]), pipe.output_infos[k]))
            for k, port in enumerate(stage.outputs)
        }

    def stats(self) -> dict:
        groups = sum(len(w) for w in self._windows)
        return {
            "hailort_version": self.version,
            "api": self.api,
            "execution_mode": self.mode.value if self.mode else None,
            "device_seconds": {k: round(v, 6) for k, v in self.device_seconds.items()},
            "device_calls": dict(self.device_calls),
            "hefs": groups,
            "network_groups": groups,
            "network_groups_per_device": self.limits.network_groups_per_device,
            "configure_windows": len(self._windows),
            "configurations": self.configurations,
            "reconfigurations": self.reconfigurations,
            "activations": self.activations,
            "scheduler_switches": self.switches,
        }

    def _release(self) -> None:
        self._deactivate()
        self._window_stack.close()
        self._device_stack.close()
        self._window = self._vdevice = self._last_group = None
        self._stages.clear()

    def _close(self) -> None:
        self._release()
