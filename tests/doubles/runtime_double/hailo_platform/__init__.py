"""TEST DOUBLE of HailoRT's Python binding (``hailo_platform``), as HailoRT's own code behaves.

Not HailoRT: a "HEF" here is the JSON the hailo_sdk_client test double writes (network groups,
each with its context count and its networks' ONNX files); a frame is computed with the
network's ONNX in onnxruntime, in NHWC like a device. What it keeps from HailoRT, each rule with
the file it comes from (hailo-ai/hailort; branch ``hailo8`` = 4.23 for Hailo-8/8L, ``master`` =
5.x for Hailo-10H):

- Which HailoRT: ``HAILO_DOUBLE_ARCH=hailo10h`` makes this the 5.x binding (``__version__``
  5.1.1), anything else the 4.23 one; ``HAILO_DOUBLE_HAILORT`` sets another version of that line.
- Errors as the binding raises them: the Python class and its generic text
  (``pyhailort.py`` ``ExceptionWrapper.create_exception_from_status``); the specific text goes to
  the log (``LOG``, HailoRT's hailort.log, and stderr like HailoRT's console sink). The classes
  live in ``hailo_platform.pyhailort.pyhailort``; only three are re-exported here
  (``hailo_platform/__init__.py``).
- HEFs from a newer DFC: ``HEF(path)`` refuses a HEF whose DFC is newer than the one released
  with this HailoRT (``READS_DFC``), as ``hef/hef.cpp`` ``validate_hef_extensions`` refuses the
  extensions it does not know: status 92 HAILO_HEF_NOT_SUPPORTED, which Python raises as the
  generic ``HailoRTException``. The double's stand-in for HailoRT's extension bitset is the DFC
  version the SDK double writes into its HEF (``dfc_version``, like ``ProtoHEFHeader.sdk_version``).
- Defaults: ``VDevice.create_params()`` (``VDeviceParams.default()``, ``pyhailort.cpp``) schedules
  NONE in the 4.23 binding and ROUND_ROBIN in 5.x (``hailort_defaults.cpp`` ``get_vdevice_params``);
  the ``scheduling_algorithm`` getter returns the enum's integer.
- Architecture at configure (``device_common/device_internal.cpp`` ``is_hef_compatible``): a
  Hailo-8 runs hailo8, hailo8r and hailo8l HEFs (8L with a warning), a Hailo-8L only hailo8l ones.
- Limits: 32 configured core-ops per device on 4.23, 26 on 5.x (``common/include/control_protocol.h``
  ``CONTROL_PROTOCOL__MAX_CONTEXT_SWITCH_APPLICATIONS``; text from ``vdma/vdma_device.cpp``); at
  most 8 network groups per HEF and 8 networks per network group (``hailort.h``). A slot comes
  back only when the VDevice dies: ``vdma_device.hpp`` keeps configured core-ops as weak pointers
  that are only appended to, and the limit counts them all, so neither releasing a network group
  nor shutting down a ConfiguredInferModel frees one.
- Partial pipelines (``net_flow/pipeline/inference_pipeline.cpp``): a pipeline over some
  networks of a multi-context group is refused, and so is inference on some of them; a network
  in a pipeline must get all its inputs and outputs; without the scheduler a multi-context group
  takes frame counts that are multiples of the batch size.
- The scheduler (``vdevice/scheduler/infer_request_accumulator.cpp``): a frame is dispatched only
  when every stream of the core-op has a transfer, so feeding some networks of a scheduled group
  never completes: the read times out after the vstream's ``timeout_ms`` (the double waits that
  long, then raises ``HailoRTTimeout``; HailoRT's default is 10 s).
- Activation: under the scheduler the Python ``activate()`` warns and returns an empty context
  manager (``pyhailort.py``); with the multi-process service it is refused
  (``service/network_group_client.cpp``); without either, one network group at a time
  (``core_op/core_op.cpp``), and writing to an inactive group is refused (``vstream.cpp``).
  ``ConfiguredInferModel.activate()`` under the scheduler is refused (``core_op.cpp``).
- Scheduler settings (``vdevice/vdevice_core_op.cpp``): refused without the scheduler, and per
  network HAILO_NOT_IMPLEMENTED.
- HailoRT 5.x (Hailo-10H): ``VDevice.configure`` is HAILO_NOT_IMPLEMENTED, with default params
  after the log line of ``vdevice/vdevice_hrpc_client.cpp``; only InferModel runs. Both versions:
  ``create_infer_model(hef, name)`` takes a network-group name, not a network name
  (``net_flow/pipeline/infer_model.cpp``).

- Streams (the HEF's records, written by the SDK double as the DFC writes them): input vstreams
  ``<net>/input_layerN``, output vstreams named after their producing layer and listed in the
  group's ``sorted_outputs_order`` (``hef/core_op_metadata.cpp`` "Sort vstream infos by
  sorted_output_names"); ``get_original_names_from_vstream_name`` /
  ``get_vstream_name_from_original_name`` answer from each stream's original names, an absent
  name HAILO_NOT_FOUND and one held twice HAILO_INVALID_HEF (``hef/hef.cpp``); ``shape`` is
  ``(H, W, C)`` for NHWC, ``(H, W)`` for NHW, ``(C,)`` for NC, and frames go in and come out in
  that shape (``bindings/python/src/pyhailort.cpp`` ``VStreamInfo.shape``).

Environment: HAILO_DOUBLE_DEVICES (JSON list of device ids, default one), HAILO_DOUBLE_ARCH (the
device, default hailo8), HAILO_DOUBLE_HAILORT (the HailoRT version), HAILO_DOUBLE_IO ("float32" or
"quantized": native I/O UINT16 with scale 2**-8, zero point 32768), HAILO_DOUBLE_TIMEOUT_STAGE (a network
whose frames never complete), HAILO_DOUBLE_STREAM_ORDER ("reversed_onnx": every input and output list in
the reverse of the ONNX order, for tests that binding never leans on an order).
Lives under tests/; only tests put it on sys.path.
"""

from __future__ import annotations

import enum
import json
import os
import sys
import time
from types import SimpleNamespace

import numpy as np

ARCH = os.environ.get("HAILO_DOUBLE_ARCH", "hailo8")
HAILORT_5 = ARCH == "hailo10h"
__version__ = os.environ.get("HAILO_DOUBLE_HAILORT") or ("5.1.1" if HAILORT_5 else "4.23.0")
#: The DFC released with each HailoRT (Hailo Model Zoo CHANGELOG, "Update to use Dataflow
#: Compiler vX / HailoRT vY", branches v2.18 and master): a HEF of a newer DFC is refused.
READS_DFC = {
    "4.18": (3, 28),
    "4.19": (3, 29),
    "4.20": (3, 30),
    "4.21": (3, 31),
    "4.22": (3, 32),
    "4.23": (3, 33),
    "5.0": (5, 0),
    "5.1": (5, 1),
    "5.2": (5, 2),
}

STATS = {"vdevices": 0, "configured": 0, "released": 0, "runs": 0, "frames": 0, "activations": 0, "infer_models": 0}
LOG: list[str] = []  # hailort.log
#: control_protocol.h CONTROL_PROTOCOL__MAX_CONTEXT_SWITCH_APPLICATIONS: 32 on branch hailo8, 26 on master.
MAX_CORE_OPS_PER_DEVICE = 26 if HAILORT_5 else 32
#: hailort.h HAILO_MAX_NETWORK_GROUPS, HAILO_MAX_NETWORKS_IN_NETWORK_GROUP.
MAX_NETWORK_GROUPS_PER_HEF, MAX_NETWORKS_PER_NETWORK_GROUP = 8, 8
DEFAULT_VSTREAM_TIMEOUT_MS = 10000  # pyhailort.py
#: device_internal.cpp is_hef_compatible: device -> the HEF architectures it runs (hailo8 HEFs are
#: HW_ARCH__HAILO8P, hailo8r HAILO8R; the DFC's target names here).
RUNS_HEF_ARCHS = {"hailo8": ("hailo8", "hailo8r", "hailo8l"), "hailo8l": ("hailo8l",), "hailo10h": ("hailo10h",)}
QP_SCALE, QP_ZP = 2.0**-8, 32768.0


# The binding's classes live in pyhailort.pyhailort; the package re-exports these three.
from hailo_platform.pyhailort import pyhailort as _pyhailort  # noqa: E402
from hailo_platform.pyhailort.pyhailort import (  # noqa: E402
    HailoCommunicationClosedException as HailoCommunicationClosedException,
)
from hailo_platform.pyhailort.pyhailort import (
    HailoRTException as HailoRTException,
)
from hailo_platform.pyhailort.pyhailort import (
    HailoRTStreamAbortedByUser as HailoRTStreamAbortedByUser,
)


def log(line: str) -> None:
    LOG.append(line)
    print(f"[HailoRT] [error] {line}", file=sys.stderr)


def _fail(status: str, line: str | None = None):
    """Logs ``line`` (HailoRT's CHECK text) and raises what the binding raises for ``status``."""
    if line:
        log(f"CHECK failed - {line}")
    raise _pyhailort.exception_from_status(status)


class HailoSchedulingAlgorithm(enum.IntEnum):
    NONE = 0  # hailort.h HAILO_SCHEDULING_ALGORITHM_NONE
    ROUND_ROBIN = 1


class VDeviceParams:
    """pyhailort.cpp ``VDeviceParams``: ``scheduling_algorithm`` is set with the enum and read back
    as its integer; ``default()`` is NONE in the 4.23 binding, ROUND_ROBIN in 5.x."""

    def __init__(self):
        self._scheduling = int(HailoSchedulingAlgorithm.ROUND_ROBIN if HAILORT_5 else HailoSchedulingAlgorithm.NONE)
        self.multi_process_service, self.group_id, self.device_count = False, "UNIQUE", 1

    @property
    def scheduling_algorithm(self) -> int:
        return self._scheduling

    @scheduling_algorithm.setter
    def scheduling_algorithm(self, value: HailoSchedulingAlgorithm) -> None:
        self._scheduling = int(HailoSchedulingAlgorithm(value))


class HailoStreamInterface(enum.Enum):
    PCIe = "pcie"
    ETH = "eth"
    INTEGRATED = "integrated"


class FormatType(enum.Enum):
    AUTO = "auto"
    FLOAT32 = "float32"
    UINT8 = "uint8"
    UINT16 = "uint16"


class FormatOrder(enum.Enum):
    NHWC = 1
    NHW = 5
    NC = 6


class DeviceArchitectureTypes(enum.IntEnum):
    """pyhailort.py (branch hailo8) ``DeviceArchitectureTypes``: ``str()`` is the member's name."""

    HAILO8_A0 = 0
    HAILO8 = 1
    HAILO8L = 2
    HAILO15H = 3
    HAILO15L = 4
    HAILO15M = 5
    HAILO10H = 6

    def __str__(self):
        return self.name


class _BoardInformation:
    """pyhailort.py ``BoardInformation``: the field ``identify()`` callers read (the chip)."""

    def __init__(self, device_architecture: int):
        self.device_architecture = DeviceArchitectureTypes(device_architecture)


class _Control:
    def identify(self):
        """pyhailort.py ``Control.identify``: the chip of HAILO_DOUBLE_ARCH."""
        return _BoardInformation(DeviceArchitectureTypes[ARCH.upper()])


class Device:
    """pyhailort.py ``Device``: ``scan()``; ``Device(device_id=None)`` (the first scanned device when
    None, "HailoRT device not found in the system" when there is none), ``control``, a context manager."""

    @staticmethod
    def scan():
        return json.loads(os.environ.get("HAILO_DOUBLE_DEVICES", '["0000:01:00.0"]'))

    def __init__(self, device_id=None):
        ids = Device.scan()
        if device_id is None:
            if not ids:
                raise HailoRTException("HailoRT device not found in the system")
            device_id = ids[0]
        if device_id not in ids:
            _fail("HAILO_NOT_FOUND", f"device {device_id} not found")
        self._device_id, self._control_object = device_id, _Control()

    @property
    def control(self):
        return self._control_object

    def release(self):
        self._control_object = None

    def __enter__(self):
        return self

    def __exit__(self, *args):
        self.release()


def _reported_shape(order: str, h: int, w: int, c: int) -> tuple[int, ...]:
    """pyhailort.cpp VStreamInfo.shape: (C,) for NC, (H, W) for NHW, else (H, W, C)."""
    return {"NC": (c,), "NHW": (h, w)}.get(order, (h, w, c))


def _stream_order(streams: list[dict], sorted_names: list[str] | None) -> list[dict]:
    """The order HailoRT lists a network's streams in: inputs as the HEF holds them, outputs by the
    group's sorted_outputs_order (core_op_metadata.cpp); HAILO_DOUBLE_STREAM_ORDER=reversed_onnx
    lists both in the reverse of the ONNX order instead (a test switch)."""
    if os.environ.get("HAILO_DOUBLE_STREAM_ORDER") == "reversed_onnx":
        return sorted(streams, key=lambda r: -r["onnx_index"])
    if sorted_names is None:
        return list(streams)
    return sorted(streams, key=lambda r: sorted_names.index(r["name"]))


class _Network:
    """One network of a network group: its streams as the HEF records them, and its ONNX (the
    double's stand-in for the compiled network; frames are computed with it)."""

    def __init__(self, group: str, record: dict, sorted_names: list[str]):
        name = record["name"]
        self.name, self.full_name, self.onnx_path = name, f"{group}/{name}", record["onnx"]
        native = (
            FormatType.UINT16 if os.environ.get("HAILO_DOUBLE_IO", "float32") == "quantized" else FormatType.FLOAT32
        )
        self.records = {r["name"]: r for r in record["inputs"] + record["outputs"]}

        def info(r):
            return SimpleNamespace(
                name=r["name"],
                network_name=self.full_name,
                shape=_reported_shape(r["order"], *r["shape"]),
                format=SimpleNamespace(type=native, order=FormatOrder[r["order"]]),
                quant_info=SimpleNamespace(qp_scale=QP_SCALE, qp_zp=QP_ZP),
            )

        self.inputs = [info(r) for r in _stream_order(record["inputs"], None)]
        self.outputs = [info(r) for r in _stream_order(record["outputs"], sorted_names)]
        self._session = None

    @property
    def streams(self) -> int:
        return len(self.inputs) + len(self.outputs)

    def original_names(self, stream: str) -> list[str] | None:
        record = self.records.get(stream)
        return None if record is None else list(record["original_names"])

    def compute(self, frames_by_input: list[np.ndarray]) -> list[np.ndarray]:
        """Frames in each input's reported shape (``self.inputs`` order), float32 -> frames in each
        output's reported shape (``self.outputs`` order), one frame at a time through the ONNX."""
        import onnxruntime as ort

        if self._session is None:
            self._session = ort.InferenceSession(self.onnx_path)
        feeds = {}
        for info, frames in zip(self.inputs, frames_by_input, strict=False):
            h, w, c = self.records[info.name]["shape"]
            nhwc = frames.astype(np.float32).reshape(-1, h, w, c)
            feeds[self.records[info.name]["onnx"]] = nhwc.transpose(0, 3, 1, 2)
        count = len(next(iter(feeds.values())))
        wanted = [o.name for o in self._session.get_outputs()]
        per_frame = [
            dict(zip(wanted, self._session.run(None, {n: x[k : k + 1] for n, x in feeds.items()}), strict=False))
            for k in range(count)
        ]
        STATS["frames"] += count
        outputs = []
        for info in self.outputs:
            nchw = np.concatenate([frame[self.records[info.name]["onnx"]] for frame in per_frame])
            outputs.append(nchw.transpose(0, 2, 3, 1).reshape(count, *info.shape))
        return outputs

    def stuck(self) -> bool:
        stuck = os.environ.get("HAILO_DOUBLE_TIMEOUT_STAGE")
        return bool(stuck) and stuck in self.onnx_path


class _Group:
    """A network group of a HEF: name, context count, networks, sorted output names."""

    def __init__(self, data: dict):
        self.name, self.contexts = data["name"], int(data["contexts"])
        self.records = data["networks"]
        self.network_specs = [(n["name"], n["onnx"]) for n in self.records]
        self.sorted_output_names = list(data["sorted_outputs_order"])

    @property
    def is_multi_context(self) -> bool:
        return self.contexts > 1

    def networks(self) -> list[_Network]:
        return [_Network(self.name, record, self.sorted_output_names) for record in self.records]


def _release(version: str) -> tuple[int, ...]:
    digits = []
    for part in str(version).split("-")[0].split("."):
        if not part.isdigit():
            break
        digits.append(int(part))
    return tuple(digits)


def _check_extensions(dfc_version: str | None) -> None:
    """hef.cpp ``validate_hef_extensions``: a HEF that needs what this HailoRT does not know is
    refused at ``HEF(path)`` with status 92, logged with the extensions' names."""
    reads = READS_DFC.get(".".join(__version__.split(".")[:2]))
    if not dfc_version or reads is None or _release(dfc_version)[:2] <= reads:
        return
    log(
        f"CHECK failed - Failed opening non-compatible HEF with the following unsupported extensions: "
        f"DFC_{'_'.join(map(str, _release(dfc_version)))}_EXTENSIONS"
    )
    _fail("HAILO_HEF_NOT_SUPPORTED")


class HEF:
    """A HEF's queries, all read from ``self.groups``, built once from the file's records: per
    network group ``name``, ``contexts``, ``sorted_outputs_order`` and ``networks``, each network
    with ``name``, ``onnx`` and its ``inputs`` / ``outputs``, one record per stream: ``name``,
    ``original_names``, ``shape`` (H, W, C), ``order`` (NHWC, NHW or NC) and the double's own
    ``onnx`` / ``onnx_index`` (the ONNX tensor it carries). A reader of real HEF files only has to
    produce these records."""

    def __new__(cls, path):
        from ._hef_file import RealHef, is_hef_file

        if is_hef_file(path):  # a real HEF (b"\x01HEF"): read as HailoRT 4.23 reads it, queries only (_hef_file.py)
            return RealHef(path)
        return super().__new__(cls)

    def __init__(self, path):
        with open(path) as handle:
            self.data = json.load(handle)
        self.path = str(path)
        if "network_groups" not in self.data:
            _fail("HAILO_INVALID_HEF", f"{path}: not a HEF of the SDK test double")
        _check_extensions(self.data.get("dfc_version"))
        self.groups = [_Group(g) for g in self.data["network_groups"]]

    def _group(self, name=None) -> _Group:
        if not name:
            return self.groups[0]
        for group in self.groups:
            if group.name == name:
                return group
        _fail("HAILO_NOT_FOUND", f"Failed to find network group with name {name}")

    def get_network_group_names(self):
        return [g.name for g in self.groups]

    def get_network_groups_infos(self):
        return [SimpleNamespace(name=g.name, is_multi_context=g.is_multi_context) for g in self.groups]

    def get_networks_names(self, network_group_name=None):
        group = self._group(network_group_name)
        return [f"{group.name}/{name}" for name, _ in group.network_specs]

    def _infos(self, name, kind):
        """``name``: a network group (all its networks), a network, or None (the first group)."""
        for group in self.groups:
            if name in (None, "", group.name):
                return [i for n in group.networks() for i in getattr(n, kind)]
            found = [n for n in group.networks() if name in (n.full_name, n.name)]
            if found:
                return [i for n in found for i in getattr(n, kind)]
        _fail("HAILO_NOT_FOUND", f"Failed to find network with name {name}")

    def get_input_vstream_infos(self, name=None):
        return self._infos(name, "inputs")

    def get_output_vstream_infos(self, name=None):
        return self._infos(name, "outputs")

    def get_sorted_output_names(self, network_group_name=None):
        group = self._group(network_group_name)
        return [o.name for n in group.networks() for o in n.outputs]

    def get_original_names_from_vstream_name(self, vstream_name, network_group_name=None):
        """hef.cpp Hef::Impl::get_original_names_from_vstream_name: the stream's original names."""
        for network in self._group(network_group_name).networks():
            names = network.original_names(vstream_name)
            if names is not None:
                return names
        _fail("HAILO_NOT_FOUND")

    def get_vstream_name_from_original_name(self, original_name, network_group_name=None):
        """hef.cpp Hef::Impl::get_vstream_name_from_original_name: the one stream holding the name."""
        found = [
            name
            for network in self._group(network_group_name).networks()
            for name, record in network.records.items()
            if original_name in record["original_names"]
        ]
        if len(found) > 1:
            _fail("HAILO_INVALID_HEF", f"Original name {original_name} appears more than once in the HEF.")
        if not found:
            _fail("HAILO_NOT_FOUND")
        return found[0]


class ConfigureParams:
    @staticmethod
    def create_from_hef(hef, interface):
        return {
            name: SimpleNamespace(batch_size=1, stream_interface=interface) for name in hef.get_network_group_names()
        }


def _vstream_params(configured, format_type, timeout_ms, network_name, kind):
    return {
        info.name: SimpleNamespace(
            format_type=format_type or FormatType.AUTO,
            network_name=net.full_name,
            timeout_ms=timeout_ms or DEFAULT_VSTREAM_TIMEOUT_MS,
        )
        for net in configured.networks_named(network_name)
        for info in getattr(net, kind)
    }


class InputVStreamParams:
    @staticmethod
    def make(configured_network, quantized=None, format_type=None, timeout_ms=None, queue_size=None, network_name=None):
        return _vstream_params(configured_network, format_type, timeout_ms, network_name, "inputs")


class OutputVStreamParams:
    @staticmethod
    def make(configured_network, quantized=None, format_type=None, timeout_ms=None, queue_size=None, network_name=None):
        return _vstream_params(configured_network, format_type, timeout_ms, network_name, "outputs")


class _EmptyContextManager:
    """pyhailort.py: what ``activate()`` returns under the scheduler."""

    def __enter__(self):
        return None

    def __exit__(self, *args):
        return False


class _Activated:
    def __init__(self, group):
        self.group = group

    def __enter__(self):
        return self.group

    def __exit__(self, *args):
        self.group.vdevice.active = None
        return False


class ConfiguredNetwork:
    def __init__(self, group: _Group, vdevice, batch_size: int):
        self.name, self.vdevice, self.batch_size = group.name, vdevice, batch_size
        self.is_multi_context = group.is_multi_context
        self.networks = group.networks()

    @property
    def streams(self) -> int:
        return sum(n.streams for n in self.networks)

    def is_scheduled(self) -> bool:
        return self.vdevice.scheduled

    def get_networks_names(self):
        return [n.full_name for n in self.networks]

    def networks_named(self, network_name=None):
        if not network_name or network_name == self.name:
            return list(self.networks)
        found = [n for n in self.networks if network_name in (n.full_name, n.name)]
        if not found:
            _fail("HAILO_NOT_FOUND", f"Failed to find network with name {network_name}")
        return found

    def get_input_vstream_infos(self, network_name=None):
        return [i for n in self.networks_named(network_name) for i in n.inputs]

    def get_output_vstream_infos(self, network_name=None):
        return [o for n in self.networks_named(network_name) for o in n.outputs]

    def create_params(self):
        return SimpleNamespace()

    def activate(self, network_group_params=None):
        if self.vdevice.multi_process_service:  # service/network_group_client.cpp
            log(
                "ConfiguredNetworkGroup::activate function is not supported when using multi-process service or "
                "HailoRT Scheduler."
            )
            _fail("HAILO_INVALID_OPERATION")
        if self.vdevice.scheduled:  # pyhailort.py: deprecated, an empty context manager
            LOG.append(
                "Calls to `activate()` when working with scheduler are deprecated! On future versions this "
                "call will raise an error."
            )
            return _EmptyContextManager()
        if self.vdevice.active is not None:  # core_op.cpp CoreOp::activate
            _fail("HAILO_INVALID_OPERATION", "Cant activate network because a network is already activated")
        self.vdevice.active = self
        STATS["activations"] += 1
        return _Activated(self)

    def _scheduler_setting(self, what: str, network_name: str = ""):
        """vdevice_core_op.cpp: set_scheduler_timeout/threshold/priority."""
        if not self.vdevice.scheduled:
            _fail(
                "HAILO_INVALID_OPERATION",
                f"Cannot set scheduler {what} for core-op {self.name}, as it is "
                "configured on a vdevice which does not have scheduling enabled",
            )
        if network_name and network_name != f"{self.name}/{self.name}":
            _fail(
                "HAILO_NOT_IMPLEMENTED", f"Setting scheduler {what} for a specific network is currently not supported"
            )

    def set_scheduler_timeout(self, timeout_ms, network_name=None):
        self._scheduler_setting("timeout", network_name or "")

    def set_scheduler_threshold(self, threshold):
        self._scheduler_setting("threshold")

    def set_scheduler_priority(self, priority):
        self._scheduler_setting("priority")


def _format(params, info):
    """AUTO: the HEF's own format."""
    return info.format.type if params.format_type is FormatType.AUTO else params.format_type


def _to_float(frames, params, info):
    frames = np.asarray(frames)
    return (frames.astype(np.float32) - QP_ZP) * QP_SCALE if _format(params, info) is not FormatType.FLOAT32 else frames


def _from_float(frames, params, info):
    if _format(params, info) is FormatType.FLOAT32:
        return frames
    return np.clip(np.rint(frames.astype(np.float64) / QP_SCALE + QP_ZP), 0, 65535).astype(np.uint16)


class InferVStreams:
    """A vstream pipeline over the networks whose vstreams are in the params ("Only members of
    this dict will take part in the inference"). Checked when entered, as HailoRT checks it when
    creating the pipeline (``inference_pipeline.cpp`` ``InferVStreams::create``)."""

    def __init__(self, configured_net_group, input_vstreams_params, output_vstreams_params, tf_nms_format=False):
        self.group, self.in_params, self.out_params = (
            configured_net_group,
            input_vstreams_params,
            output_vstreams_params,
        )

    def __enter__(self):
        self.networks = []
        for net in self.group.networks:
            ins = sum(i.name in self.in_params for i in net.inputs)
            outs = sum(o.name in self.out_params for o in net.outputs)
            if ins or outs:
                if ins != len(net.inputs):
                    _fail("HAILO_INVALID_ARGUMENT", f"Found only partial inputs for network {net.full_name}")
                if outs != len(net.outputs):
                    _fail("HAILO_INVALID_ARGUMENT", f"Found only partial outputs for network {net.full_name}")
                self.networks.append(net)
            elif self.group.is_multi_context:
                _fail(
                    "HAILO_INVALID_ARGUMENT",
                    "For multi-context network groups, the pipeline must be created for all available networks",
                )
        return self

    def __exit__(self, *exc):
        return False

    def infer(self, input_data):
        group = self.group
        known = {i.name: net for net in self.networks for i in net.inputs}
        unknown = sorted(set(input_data) - set(known))
        if unknown:
            _fail("HAILO_NOT_FOUND", f"Did not find vstream {unknown[0]}")
        fed = [net for net in self.networks if any(i.name in input_data for i in net.inputs)]
        for net in fed:
            missing = [i.name for i in net.inputs if i.name not in input_data]
            if missing:
                _fail("HAILO_INVALID_ARGUMENT", f"Not all inputs have been provided for network {net.full_name}")
        # Python's infer reads every output vstream of the pipeline: each pipeline network counts
        if group.is_multi_context and len(fed) != len(self.networks):
            _fail(
                "HAILO_INVALID_ARGUMENT",
                "For multi-context network groups, inference is only supported on all available networks",
            )
        frames = len(next(iter(input_data.values())))
        if group.is_multi_context and not group.vdevice.scheduled and frames % group.batch_size:
            _fail(
                "HAILO_INVALID_ARGUMENT",
                "On the case of multi-context without the model scheduler, frames count "
                f"must be a multiplier of the batch size! ({frames} % {group.batch_size} "
                "!= 0)",
            )
        if not group.vdevice.scheduled and group.vdevice.active is not group:  # vstream.cpp InputVStreamImpl::write
            first = next(iter(input_data))
            _fail(
                "HAILO_NETWORK_GROUP_NOT_ACTIVATED",
                f"Trying to write to vstream {first} before its network group is activated",
            )
        timeout_ms = min(p.timeout_ms for p in self.out_params.values())
        partial = sum(n.streams for n in fed) < group.streams
        if (group.vdevice.scheduled and partial) or any(net.stuck() for net in fed):
            # infer_request_accumulator.cpp: the frame waits for transfers on every stream of
            # the core-op, which never come; the read times out.
            time.sleep(timeout_ms / 1000)
            _fail("HAILO_TIMEOUT")
        STATS["runs"] += 1
        results = {}
        for net in fed:
            frames_in = [_to_float(input_data[i.name], self.in_params[i.name], i) for i in net.inputs]
            for info, shape_frames in zip(net.inputs, frames_in, strict=False):
                if tuple(shape_frames.shape[1:]) != info.shape:
                    _fail(
                        "HAILO_INVALID_ARGUMENT",
                        f"{info.name} takes frames of {info.shape}, got {tuple(shape_frames.shape[1:])}",
                    )
            for info, out in zip(net.outputs, net.compute(frames_in), strict=False):
                results[info.name] = _from_float(out, self.out_params[info.name], info)
        return results


class _InferStream:
    """InferModel.InferStream: one input or output edge of an InferModel."""

    def __init__(self, info):
        self._info, self.format_type = info, info.format.type

    @property
    def name(self):
        return self._info.name

    @property
    def shape(self):
        return list(self._info.shape)

    @property
    def format(self):
        return SimpleNamespace(type=self.format_type)

    def set_format_type(self, type):
        self.format_type = type


class InferModel:
    def __init__(self, vdevice, group: _Group):
        self.vdevice, self.group = vdevice, group
        self.networks = group.networks()
        self.inputs = [_InferStream(i) for n in self.networks for i in n.inputs]
        self.outputs = [_InferStream(o) for n in self.networks for o in n.outputs]
        self.batch_size = 0  # HAILO_DEFAULT_BATCH_SIZE

    @property
    def input_names(self):
        return [s.name for s in self.inputs]

    @property
    def output_names(self):
        return [s.name for s in self.outputs]

    def _edge(self, edges, name, kind):
        if not name and len(edges) == 1:
            return edges[0]
        for edge in edges:
            if edge.name == name:
                return edge
        _fail("HAILO_NOT_FOUND", f"Failed to find {kind} with name {name!r}")

    def input(self, name=""):
        return self._edge(self.inputs, name, "input")

    def output(self, name=""):
        return self._edge(self.outputs, name, "output")

    def set_batch_size(self, batch_size):
        self.batch_size = batch_size

    def configure(self):
        self.vdevice.add_core_ops(1)
        return ConfiguredInferModel(self)


class _Bindings:
    def __init__(self, model: InferModel):
        self._buffers = {}
        self._streams = {s.name: s for s in model.inputs + model.outputs}

    def _stream(self, name):
        if name not in self._streams:
            _fail("HAILO_NOT_FOUND", f"Failed to find stream with name {name!r}")
        return _BoundStream(self._buffers, name)

    def input(self, name=""):
        return self._stream(name)

    def output(self, name=""):
        return self._stream(name)


class _BoundStream:
    def __init__(self, buffers, name):
        self._buffers, self._name = buffers, name

    def set_buffer(self, buffer):
        if not buffer.flags.c_contiguous:
            raise HailoRTException("Buffer must be C_CONTIGUOUS")
        self._buffers[self._name] = buffer

    def get_buffer(self, tf_format=False):
        return self._buffers[self._name]


class ConfiguredInferModel:
    def __init__(self, model: InferModel):
        self.model, self.released = model, False

    def __enter__(self):
        return self

    def __exit__(self, *args):
        self.shutdown()
        return False

    def shutdown(self):
        # vdma_device.cpp: the core-op's slot stays taken until the VDevice dies
        self.released = True

    def activate(self):
        if self.model.vdevice.scheduled:  # core_op.cpp CoreOp::activate
            _fail(
                "HAILO_INVALID_OPERATION",
                "Manually activate a core-op is not allowed when the core-op scheduler is active!",
            )
        STATS["activations"] += 1

    def create_bindings(self, input_buffers=None, output_buffers=None):
        bindings = _Bindings(self.model)
        for name, buffer in {**(input_buffers or {}), **(output_buffers or {})}.items():
            bindings.input(name).set_buffer(buffer)
        return bindings

    def run(self, bindings, timeout):
        if self.released:
            _fail("HAILO_INVALID_OPERATION", "the configured infer model was shut down")
        model = self.model
        for binding in bindings:
            for stream in model.inputs + model.outputs:
                buffer = binding._buffers.get(stream.name)
                dtype = np.float32 if stream.format_type is FormatType.FLOAT32 else np.uint16
                if buffer is None:
                    _fail("HAILO_INVALID_OPERATION", f"Buffer for {stream.name} was not set")
                if tuple(buffer.shape) != tuple(stream.shape) or buffer.dtype != dtype:
                    _fail(
                        "HAILO_INVALID_ARGUMENT",
                        f"buffer for {stream.name} is {buffer.shape} {buffer.dtype}, the "
                        f"stream takes {tuple(stream.shape)} {np.dtype(dtype)}",
                    )
        if any(net.stuck() for net in model.networks):
            time.sleep(timeout / 1000)
            _fail("HAILO_TIMEOUT")
        STATS["runs"] += 1
        streams = {s.name: s for s in model.inputs + model.outputs}
        native = lambda s: SimpleNamespace(format_type=s.format_type)  # noqa: E731
        for net in model.networks:
            frames = [
                np.stack([_to_float(b._buffers[i.name], native(streams[i.name]), i) for b in bindings])
                for i in net.inputs
            ]
            for info, out in zip(net.outputs, net.compute(frames), strict=False):
                for k, binding in enumerate(bindings):
                    binding._buffers[info.name][...] = _from_float(out[k], native(streams[info.name]), info)


class VDevice:
    def __init__(self, params=None, *, device_ids=None):
        if not Device.scan():
            raise HailoRTException("libhailort failed with error: 74 (HAILO_OUT_OF_PHYSICAL_DEVICES)")
        params = params or VDevice.create_params()
        self.arch = ARCH
        self.scheduled = params.scheduling_algorithm != HailoSchedulingAlgorithm.NONE
        self.multi_process_service = bool(getattr(params, "multi_process_service", False))
        self.core_ops, self.active = 0, None
        STATS["vdevices"] += 1

    @staticmethod
    def create_params():
        return VDeviceParams()  # pyhailort.py: VDeviceParams.default()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
        return False

    def release(self):
        STATS["released"] += self.core_ops
        self.core_ops, self.active = 0, None

    def add_core_ops(self, count: int) -> None:
        """vdma_device.cpp ``create_core_ops_metadata``: every core-op ever configured on this
        device counts, released or not (``m_core_ops`` is only appended to)."""
        if self.core_ops + count > MAX_CORE_OPS_PER_DEVICE:
            _fail(
                "HAILO_INVALID_OPERATION",
                f"Can't add {count} core-ops from HEF. Currently {self.core_ops} core-ops are configured; "
                f"maximum allowed core-ops: {MAX_CORE_OPS_PER_DEVICE}.",
            )
        self.core_ops += count
        STATS["configured"] += count

    def _check_hef(self, hef: HEF) -> None:
        """device_internal.cpp ``check_hef_is_compatible`` (called at configure) with
        ``is_hef_compatible``: the HEF architectures each device runs."""
        hef_arch = hef.data["hw_arch"]
        if hef_arch not in RUNS_HEF_ARCHS.get(self.arch, (self.arch,)):
            log(
                f"HEF format is not compatible with device. Device arch: {self.arch.upper()}, HEF arch: "
                f"{hef_arch.upper()}"
            )
            _fail("HAILO_HEF_NOT_COMPATIBLE_WITH_DEVICE")
        if hef_arch == "hailo8l" and self.arch == "hailo8":
            LOG.append(
                "HEF was compiled for Hailo8L device, while the device itself is Hailo8. This will result in "
                "lower performance."
            )
        if len(hef.groups) > MAX_NETWORK_GROUPS_PER_HEF:
            _fail("HAILO_INVALID_HEF", "Too many network_groups on a given HEF")
        for group in hef.groups:
            if len(group.network_specs) > MAX_NETWORKS_PER_NETWORK_GROUP:
                _fail("HAILO_INVALID_HEF", f"{len(group.network_specs)} networks in network group {group.name}")

    def configure(self, hef, configure_params_by_name=None):
        if HAILORT_5:  # vdevice_hrpc_client.cpp: no configure on Hailo-10H
            if not configure_params_by_name:  # VDevice::create_configure_params -> get_default_streams_interface
                log(
                    "Not supported. Did you try calling `create_configure_params` on H10? If so, use InferModel instead"
                )
            _fail("HAILO_NOT_IMPLEMENTED")
        self._check_hef(hef)
        self.add_core_ops(len(hef.groups))
        params = configure_params_by_name or {}
        return [ConfiguredNetwork(g, self, getattr(params.get(g.name), "batch_size", 1) or 1) for g in hef.groups]

    def create_infer_model(self, hef_source, name=""):
        hef = HEF(hef_source)
        self._check_hef(hef)
        if name and name not in hef.get_network_group_names():  # infer_model.cpp InferModelBase::create
            _fail("HAILO_NOT_IMPLEMENTED", "Passing network name is not supported yet!")
        STATS["infer_models"] += 1
        return InferModel(self, hef._group(name))
