"""TEST DOUBLE of the documented HailoRT Python surface (``hailo_platform``, InferModel API;
HAILO_FACTS.md, Runtime API).

Not HailoRT: a "HEF" here is the JSON the hailo_sdk_client test double writes, naming the
stage's ONNX; ``run`` computes each tile with that ONNX in onnxruntime, in NHWC like a device.
Counts VDevices and configurations so tests can prove one device and one configuration per
stage. Enforces HailoRT 4.23's limits with its error texts (HAILO_FACTS.md, "Runtime limits"): at
most 32 configured network groups (core-ops) per device, released when a configured model's
context exits, and at most 8 network groups per HEF. Environment: HAILO_DOUBLE_DEVICES (JSON list of device ids, default one),
HAILO_DOUBLE_ARCH (the device's architecture, default hailo8), HAILO_DOUBLE_IO ("float32" or
"quantized": the HEF's native I/O is UINT16 with scale 2**-8, zero point 32768).
Lives under tests/; only tests put it on sys.path.
"""

from __future__ import annotations

import enum
import json
import os
from types import SimpleNamespace

import numpy as np

STATS = {"vdevices": 0, "configured": 0, "released": 0, "runs": 0, "frames": 0}
#: HailoRT 4.23: CONTROL_PROTOCOL__MAX_CONTEXT_SWITCH_APPLICATIONS, HAILO_MAX_NETWORK_GROUPS.
MAX_CORE_OPS_PER_DEVICE, MAX_NETWORK_GROUPS_PER_HEF = 32, 8
QP_SCALE, QP_ZP = 2.0 ** -8, 32768.0


class HailoRTException(Exception):
    pass


class HailoSchedulingAlgorithm(enum.Enum):
    NONE = 0
    ROUND_ROBIN = 1


class FormatType(enum.Enum):
    FLOAT32 = "float32"
    UINT8 = "uint8"
    UINT16 = "uint16"


class Device:
    @staticmethod
    def scan():
        return json.loads(os.environ.get("HAILO_DOUBLE_DEVICES", '["0000:01:00.0"]'))


class HEF:
    def __init__(self, path):
        with open(path) as handle:
            self.data = json.load(handle)

    def get_network_group_names(self):
        return list(self.data.get("network_groups", [self.data["hef_double"]]))


class _Stream:
    def __init__(self, name, shape):
        self.name, self.shape = name, tuple(shape)
        native = os.environ.get("HAILO_DOUBLE_IO", "float32") == "quantized"
        self.format = SimpleNamespace(type=FormatType.UINT16 if native else FormatType.FLOAT32)
        self.quant_infos = [SimpleNamespace(qp_scale=QP_SCALE, qp_zp=QP_ZP)]

    def set_format_type(self, format_type):
        self.format = SimpleNamespace(type=format_type)


class _Buffer:
    def __init__(self):
        self.array = None

    def set_buffer(self, array):
        self.array = array

    def get_buffer(self):
        return self.array


class _Bindings:
    def __init__(self, inputs, outputs):
        self.inputs = {n: _Buffer() for n in inputs}
        self.outputs = {n: _Buffer() for n in outputs}

    def input(self, name=None):
        return self.inputs[name or next(iter(self.inputs))]

    def output(self, name=None):
        return self.outputs[name or next(iter(self.outputs))]


class _ConfiguredInferModel:
    def __init__(self, model):
        import onnxruntime as ort

        self.model, self.released = model, False
        self.session = ort.InferenceSession(model.onnx_path)
        self.onnx_inputs = [i.name for i in self.session.get_inputs()]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if not self.released:
            self.released = True
            self.model.vdevice.core_ops -= self.model.core_ops
            STATS["released"] += 1
        return False

    def create_bindings(self):
        return _Bindings(self.model.input_names, self.model.output_names)

    def run(self, bindings, timeout_ms):
        stuck = os.environ.get("HAILO_DOUBLE_TIMEOUT_STAGE")
        if stuck and stuck in self.model.onnx_path:
            raise HailoRTException(f"HAILO_TIMEOUT: run did not finish within {timeout_ms} ms")
        if len(bindings) > self.model.batch_size:
            raise HailoRTException(f"{len(bindings)} bindings > batch size {self.model.batch_size}")
        for binding in bindings:
            feeds = {}
            for onnx_name, name in zip(self.onnx_inputs, self.model.input_names):
                stream, tile = self.model.input(name), binding.input(name).get_buffer()
                if stream.format.type is not FormatType.FLOAT32:
                    tile = (tile.astype(np.float32) - QP_ZP) * QP_SCALE
                feeds[onnx_name] = tile[None].transpose(0, 3, 1, 2).astype(np.float32)  # (1,W,C) -> NCHW
            for name, out in zip(self.model.output_names, self.session.run(None, feeds)):
                stream, buffer = self.model.output(name), binding.output(name).get_buffer()
                nhwc = out[0].transpose(1, 2, 0)
                if stream.format.type is not FormatType.FLOAT32:
                    nhwc = np.clip(np.rint(nhwc.astype(np.float64) / QP_SCALE + QP_ZP), 0, 65535)
                buffer[...] = nhwc
            STATS["frames"] += 1
        STATS["runs"] += 1


class _InferModel:
    def __init__(self, hef_path, vdevice):
        import onnx

        self.vdevice = vdevice
        self.core_ops = len(HEF(hef_path).get_network_group_names())
        hef = HEF(hef_path).data
        self.onnx_path, self.batch_size = hef["onnx"], 1
        graph = onnx.load(self.onnx_path).graph
        net = hef["hef_double"]
        shape = lambda v: [d.dim_value for d in v.type.tensor_type.shape.dim]  # noqa: E731
        self._inputs = {f"{net}/input_layer{i}": _Stream(f"{net}/input_layer{i}", [shape(v)[2], shape(v)[3], shape(v)[1]])
                        for i, v in enumerate(graph.input, 1)}
        self._outputs = {f"{net}/output_layer{i}": _Stream(f"{net}/output_layer{i}", [shape(v)[2], shape(v)[3], shape(v)[1]])
                         for i, v in enumerate(graph.output, 1)}

    @property
    def input_names(self):
        return list(self._inputs)

    @property
    def output_names(self):
        return list(self._outputs)

    def input(self, name=None):
        return self._inputs[name or self.input_names[0]]

    def output(self, name=None):
        return self._outputs[name or self.output_names[0]]

    def set_batch_size(self, batch):
        self.batch_size = batch

    def configure(self):
        device = self.vdevice
        if device.core_ops + self.core_ops > MAX_CORE_OPS_PER_DEVICE:
            # vdma_device.cpp's log line, raised as HAILO_INVALID_OPERATION
            raise HailoRTException(
                f"HAILO_INVALID_OPERATION: Can't add {self.core_ops} core-ops from HEF. Currently "
                f"{device.core_ops} core-ops are configured; maximum allowed core-ops: {MAX_CORE_OPS_PER_DEVICE}.")
        device.core_ops += self.core_ops
        STATS["configured"] += 1
        return _ConfiguredInferModel(self)


class VDevice:
    def __init__(self, params=None):
        if not Device.scan():
            raise HailoRTException("HAILO_OUT_OF_PHYSICAL_DEVICES: no Hailo device found")
        self.arch = os.environ.get("HAILO_DOUBLE_ARCH", "hailo8")
        self.core_ops = 0
        STATS["vdevices"] += 1

    @staticmethod
    def create_params():
        return SimpleNamespace(scheduling_algorithm=HailoSchedulingAlgorithm.NONE)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def create_infer_model(self, hef_path, name=""):
        if name and name not in HEF(hef_path).get_network_group_names():
            # infer_model.cpp, InferModelBase::create: only a network group's name is accepted
            raise HailoRTException("HAILO_NOT_IMPLEMENTED: Passing network name is not supported yet!")
        hef = HEF(hef_path).data
        if hef["hw_arch"] != self.arch:
            raise HailoRTException(f"HAILO_INVALID_HEF: HEF compiled for arch {hef['hw_arch']}, device is {self.arch}")
        if len(HEF(hef_path).get_network_group_names()) > MAX_NETWORK_GROUPS_PER_HEF:
            raise HailoRTException("HAILO_INVALID_HEF: Too many network_groups on a given HEF")
        return _InferModel(hef_path, self)
