"""TEST DOUBLE of the documented HailoRT Python surface (``hailo_platform``, vstream API;
HAILO_FACTS.md, Runtime API; ``pyhailort.py`` on branch ``hailo8``).

Not HailoRT: a "HEF" here is the JSON the hailo_sdk_client test double writes, naming each
network's ONNX; ``InferVStreams.infer`` computes each frame with that ONNX in onnxruntime, in NHWC
like a device. What it keeps from HailoRT:

- limits with their error texts (HAILO_FACTS.md, "Runtime limits"): at most 32 configured network
  groups (core-ops) per device, freed only when the VDevice is released (the legacy API has no
  per-group release); at most 8 network groups per HEF and 8 networks per network group;
- networks of one group addressed by name: ``InputVStreamParams.make(ng, network_name=...)``
  (an unknown name fails), and ``InferVStreams`` runs only the networks whose inputs it was given,
  which must be all of those networks' inputs;
- without the scheduler a network group must be activated before it infers;
- the HEF's architecture must match the device's.

Counts VDevices, configured network groups and frames so tests can prove one device and one
configuration per HEF. Environment: HAILO_DOUBLE_DEVICES (JSON list of device ids, default one),
HAILO_DOUBLE_ARCH (the device's architecture, default hailo8), HAILO_DOUBLE_IO ("float32" or
"quantized": the HEF's native I/O is UINT16 with scale 2**-8, zero point 32768),
HAILO_DOUBLE_TIMEOUT_STAGE (a network whose inference times out).
Lives under tests/; only tests put it on sys.path.
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
from types import SimpleNamespace

import numpy as np

STATS = {"vdevices": 0, "configured": 0, "released": 0, "runs": 0, "frames": 0}
#: HailoRT 4.23: CONTROL_PROTOCOL__MAX_CONTEXT_SWITCH_APPLICATIONS, HAILO_MAX_NETWORK_GROUPS,
#: HAILO_MAX_NETWORKS_IN_NETWORK_GROUP.
MAX_CORE_OPS_PER_DEVICE, MAX_NETWORK_GROUPS_PER_HEF, MAX_NETWORKS_PER_NETWORK_GROUP = 32, 8, 8
QP_SCALE, QP_ZP = 2.0 ** -8, 32768.0


class HailoRTException(Exception):
    pass


class HailoSchedulingAlgorithm(enum.Enum):
    NONE = 0
    ROUND_ROBIN = 1


class HailoStreamInterface(enum.Enum):
    PCIe = "pcie"
    ETH = "eth"


class FormatType(enum.Enum):
    AUTO = "auto"
    FLOAT32 = "float32"
    UINT8 = "uint8"
    UINT16 = "uint16"


class Device:
    @staticmethod
    def scan():
        return json.loads(os.environ.get("HAILO_DOUBLE_DEVICES", '["0000:01:00.0"]'))


def _shape(value_info) -> list[int]:
    return [d.dim_value for d in value_info.type.tensor_type.shape.dim]


class _Network:
    """One network of a HEF's network group: its ONNX and its vstream infos (NHWC shapes)."""

    def __init__(self, group: str, name: str, onnx_path: str):
        import onnx

        self.name, self.full_name, self.onnx_path = name, f"{group}/{name}", onnx_path
        graph = onnx.load(onnx_path).graph
        native = FormatType.UINT16 if os.environ.get("HAILO_DOUBLE_IO", "float32") == "quantized" else FormatType.FLOAT32
        info = lambda kind, i, v: SimpleNamespace(  # noqa: E731
            name=f"{name}/{kind}_layer{i}", network_name=self.full_name, shape=(_shape(v)[2], _shape(v)[3], _shape(v)[1]),
            format=SimpleNamespace(type=native), quant_info=SimpleNamespace(qp_scale=QP_SCALE, qp_zp=QP_ZP))
        self.inputs = [info("input", i, v) for i, v in enumerate(graph.input, 1)]
        self.outputs = [info("output", i, v) for i, v in enumerate(graph.output, 1)]
        self._session = None

    def session(self):
        import onnxruntime as ort

        if self._session is None:
            self._session = ort.InferenceSession(self.onnx_path)
        return self._session


class HEF:
    def __init__(self, path):
        with open(path) as handle:
            self.data = json.load(handle)
        self.path = str(path)
        self.group = self.data["hef_double"]
        listed = self.data.get("networks") or [{"name": self.group, "onnx": self.data["onnx"]}]
        self.networks = [(n["name"], n["onnx"]) for n in listed]

    def get_network_group_names(self):
        return list(self.data.get("network_groups", [self.group]))

    def get_networks_names(self, network_group_name=None):
        return [f"{self.group}/{name}" for name, _ in self.networks]

    def _infos(self, name, kind):
        """``name``: a network, or the network group (all its networks), or None (the first group)."""
        networks = [_Network(self.group, net, onnx_path) for net, onnx_path in self.networks]
        if name and name != self.group:
            networks = [n for n in networks if name in (n.full_name, n.name)]
            if not networks:
                raise HailoRTException(f"HAILO_NOT_FOUND: Failed to find network with name {name}")
        return [info for n in networks for info in getattr(n, kind)]

    def get_input_vstream_infos(self, name=None):
        return self._infos(name, "inputs")

    def get_output_vstream_infos(self, name=None):
        return self._infos(name, "outputs")


class ConfigureParams:
    @staticmethod
    def create_from_hef(hef, interface):
        return {name: SimpleNamespace(batch_size=1, stream_interface=interface) for name in hef.get_network_group_names()}


def _vstream_params(configured, format_type, network_name, kind):
    networks = configured.networks_named(network_name)
    return {info.name: SimpleNamespace(format_type=format_type or FormatType.AUTO, network_name=net.full_name)
            for net in networks for info in getattr(net, kind)}


class InputVStreamParams:
    @staticmethod
    def make(configured_network, quantized=None, format_type=None, timeout_ms=None, queue_size=None, network_name=None):
        return _vstream_params(configured_network, format_type, network_name, "inputs")


class OutputVStreamParams:
    @staticmethod
    def make(configured_network, quantized=None, format_type=None, timeout_ms=None, queue_size=None, network_name=None):
        return _vstream_params(configured_network, format_type, network_name, "outputs")


class ConfiguredNetwork:
    def __init__(self, hef, vdevice):
        self.name, self.vdevice, self.activated = hef.group, vdevice, False
        self.networks = [_Network(hef.group, name, onnx_path) for name, onnx_path in hef.networks]

    def get_networks_names(self):
        return [n.full_name for n in self.networks]

    def networks_named(self, network_name=None):
        if not network_name:
            return list(self.networks)
        found = [n for n in self.networks if network_name in (n.full_name, n.name)]
        if not found:
            raise HailoRTException(f"HAILO_NOT_FOUND: Failed to find network with name {network_name}")
        return found

    def get_input_vstream_infos(self, network_name=None):
        return [i for n in self.networks_named(network_name) for i in n.inputs]

    def get_output_vstream_infos(self, network_name=None):
        return [o for n in self.networks_named(network_name) for o in n.outputs]

    def create_params(self):
        return SimpleNamespace()

    def activate(self, network_group_params=None):
        if self.vdevice.scheduled:
            return contextlib.nullcontext()  # deprecated with the scheduler: an empty context manager
        self.activated = True
        return contextlib.nullcontext(self)


class InferVStreams:
    """Runs the networks whose input vstreams are in ``input_vstreams_params`` ("Only members of
    this dict will take part in the inference")."""

    def __init__(self, configured_net_group, input_vstreams_params, output_vstreams_params, tf_nms_format=False):
        self.group, self.in_params, self.out_params = configured_net_group, input_vstreams_params, output_vstreams_params

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def infer(self, input_data):
        group = self.group
        if not group.vdevice.scheduled and not group.activated:
            raise HailoRTException("HAILO_NETWORK_GROUP_NOT_ACTIVATED: network group is not activated")
        unknown = set(input_data) - set(self.in_params)
        if unknown:
            raise HailoRTException(f"HAILO_NOT_FOUND: no input vstream {sorted(unknown)[0]} in this pipeline")
        running = [n for n in group.networks if any(i.name in input_data for i in n.inputs)]
        results = {}
        for net in running:
            missing = [i.name for i in net.inputs if i.name not in input_data]
            if missing:  # HailoRT would wait for the frame until the vstream times out
                raise HailoRTException(f"HAILO_TIMEOUT: no data for input vstream {missing[0]} of {net.full_name}")
            stuck = os.environ.get("HAILO_DOUBLE_TIMEOUT_STAGE")
            if stuck and stuck in net.onnx_path:
                raise HailoRTException("HAILO_TIMEOUT: Timeout waiting for output")
            results.update(self._run(net, input_data))
        STATS["runs"] += 1
        return results

    @staticmethod
    def _format(params, info):
        """AUTO: the HEF's own format."""
        return info.format.type if params.format_type is FormatType.AUTO else params.format_type

    def _run(self, net, input_data):
        session = net.session()
        frames = len(next(iter(input_data.values())))
        feeds = {}
        for onnx_input, info in zip(session.get_inputs(), net.inputs):
            tiles = np.asarray(input_data[info.name])
            if tuple(tiles.shape[1:]) != info.shape:
                raise HailoRTException(f"HAILO_INVALID_ARGUMENT: {info.name} takes frames of {info.shape}, "
                                       f"got {tuple(tiles.shape[1:])}")
            if self._format(self.in_params[info.name], info) is not FormatType.FLOAT32:
                tiles = (tiles.astype(np.float32) - QP_ZP) * QP_SCALE
            feeds[onnx_input.name] = tiles.astype(np.float32).transpose(0, 3, 1, 2)  # NHWC -> NCHW
        outputs = [np.concatenate(parts) for parts in zip(*(
            session.run(None, {k: v[f:f + 1] for k, v in feeds.items()}) for f in range(frames)))]
        STATS["frames"] += frames
        results = {}
        for info, out in zip(net.outputs, outputs):
            nhwc = out.transpose(0, 2, 3, 1)
            if info.name in self.out_params and self._format(self.out_params[info.name], info) is not FormatType.FLOAT32:
                nhwc = np.clip(np.rint(nhwc.astype(np.float64) / QP_SCALE + QP_ZP), 0, 65535).astype(np.uint16)
            results[info.name] = nhwc
        return results


class VDevice:
    def __init__(self, params=None):
        if not Device.scan():
            raise HailoRTException("HAILO_OUT_OF_PHYSICAL_DEVICES: no Hailo device found")
        self.arch = os.environ.get("HAILO_DOUBLE_ARCH", "hailo8")
        self.scheduled = params is not None and params.scheduling_algorithm is not HailoSchedulingAlgorithm.NONE
        self.core_ops = 0
        STATS["vdevices"] += 1

    @staticmethod
    def create_params():
        return SimpleNamespace(scheduling_algorithm=HailoSchedulingAlgorithm.NONE)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
        return False

    def release(self):
        STATS["released"] += self.core_ops
        self.core_ops = 0

    def configure(self, hef, configure_params_by_name=None):
        if hef.data["hw_arch"] != self.arch:
            raise HailoRTException(f"HAILO_INVALID_HEF: HEF compiled for arch {hef.data['hw_arch']}, device is {self.arch}")
        groups = hef.get_network_group_names()
        if len(groups) > MAX_NETWORK_GROUPS_PER_HEF:
            raise HailoRTException("HAILO_INVALID_HEF: Too many network_groups on a given HEF")
        if len(hef.networks) > MAX_NETWORKS_PER_NETWORK_GROUP:
            raise HailoRTException(f"HAILO_INVALID_HEF: {len(hef.networks)} networks in network group {hef.group}; "
                                   f"at most {MAX_NETWORKS_PER_NETWORK_GROUP}")
        if self.core_ops + len(groups) > MAX_CORE_OPS_PER_DEVICE:
            # vdma_device.cpp's log line, raised as HAILO_INVALID_OPERATION
            raise HailoRTException(
                f"HAILO_INVALID_OPERATION: Can't add {len(groups)} core-ops from HEF. Currently "
                f"{self.core_ops} core-ops are configured; maximum allowed core-ops: {MAX_CORE_OPS_PER_DEVICE}.")
        self.core_ops += len(groups)
        STATS["configured"] += len(groups)
        return [ConfiguredNetwork(hef, self)]
