"""TEST DOUBLE part: reads a REAL HEF file (the Dataflow Compiler's output) and answers the
``hailo_platform.HEF`` queries the project makes, as HailoRT 4.23 answers them.

Not HailoRT's code: the facts below are read from hailo-ai/hailort (branch ``hailo8``, commit
08f088d, v4.23.0) and each rule cites its file; the protobuf wire format is decoded here by hand
with field numbers taken from HailoRT's public ``hailort/libhailort/hef.proto`` (no copy of it
lives in this repository). ``make test-hailort`` checks every answer against HailoRT's own
library on the same file (tests/backends/test_hailort_library.py).

The container (``libhailort/src/hef/hef_internal.hpp`` ``hef__header_t``, ``libhailort/src/hef/hef.cpp``
``parse_hef_file``): big-endian ``magic`` 0x01484546 (b"\\x01HEF"), ``version``,
``hef_proto_size``, then a version-specific part (v0: reserved u32 + md5[16]; v1: crc u32 +
ccws_size u64 + reserved u32; v2: xxh3 u64 + ccws_size u64 + 2 reserved u64; v3: xxh3 u64 +
ccws_size_with_padding u64 + hef_padding_size u32 + additional_info_size u64 + 2 reserved u64),
then the ``ProtoHEFHef`` message, then the config words. Checked here: magic, header version,
file length, and the v0 md5 / v1 crc32 (zlib's CRC-32 matches HailoRT's); the v2/v3 xxh3 sum is
not checked (no xxhash in the test environment).

Modelled: plain boundary edge layers (``PROTO__EDGE_LAYER_TYPE__INFO``), single- and
multi-context groups, multi-network groups, multi-layout archs (Hailo-8L, Hailo-15M: the first
partial network group). Refused with HAILO_NOT_IMPLEMENTED rather than answered wrongly: mux and
planes edge layers, NMS outputs, fused layers and net-flow ops (post-processing outputs).
"""

from __future__ import annotations

import enum
import hashlib
import struct
import zlib
from dataclasses import dataclass
from types import SimpleNamespace

MAGIC = 0x01484546
#: hef_internal.hpp HEF_HEADER_SIZE_V0..V3: 12 common bytes + the packed version-specific part.
HEADER_SIZES = {0: 12 + 20, 1: 12 + 16, 2: 12 + 32, 3: 12 + 44}


class HefFileError(Exception):
    """The file is not a HEF HailoRT would read; ``status`` is the HailoRT status it returns."""

    def __init__(self, status: str, line: str):
        super().__init__(line)
        self.status, self.line = status, line


# -- the protobuf wire format ------------------------------------------------------------------


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise HefFileError("HAILO_HEF_FILE_CORRUPTED", "Failed parsing HEF file (truncated varint)")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def fields(buf: bytes) -> dict[int, list]:
    """One message's fields: number -> values in file order (varints as int, fixed32/fixed64 as
    4/8 raw bytes, length-delimited as bytes)."""
    out: dict[int, list] = {}
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, pos = buf[pos : pos + size], pos + size
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + size], pos + size
        else:
            raise HefFileError("HAILO_HEF_FILE_CORRUPTED", f"Failed parsing HEF file (wire type {wire})")
        out.setdefault(number, []).append(value)
    return out


def _msg(f: dict, number: int) -> dict:
    return fields(f[number][-1]) if number in f else {}


def _msgs(f: dict, number: int) -> list[dict]:
    return [fields(v) for v in f.get(number, [])]


def _int(f: dict, number: int) -> int:
    return f[number][-1] if number in f else 0


def _str(f: dict, number: int) -> str:
    return f[number][-1].decode() if number in f else ""


def _strs(f: dict, number: int) -> list[str]:
    return [v.decode() for v in f.get(number, [])]


def _float(f: dict, number: int) -> float:
    """A proto ``float`` (fixed32): the float32 value HailoRT keeps, as the Python float pybind11 gives."""
    return struct.unpack("<f", f[number][-1])[0] if number in f else 0.0


# -- the values HailoRT's Python binding shows -------------------------------------------------


class FormatType(enum.IntEnum):  # hailort.h hailo_format_type_t
    AUTO = 0
    UINT8 = 1
    UINT16 = 2
    FLOAT32 = 3


class FormatOrder(enum.IntEnum):  # hailort.h hailo_format_order_t (the ones a HEF's edge layers use)
    AUTO = 0
    NHWC = 1
    NHCW = 2
    FCR = 3
    F8CR = 4
    NHW = 5
    NC = 6
    BAYER_RGB = 7
    RGB888 = 10
    NCHW = 11
    YUY2 = 12
    NV12 = 13
    NV21 = 14
    HAILO_YYUV = 15
    HAILO_YYVU = 16
    I420 = 18
    HAILO_YYYYUV = 19
    HAILO_NMS_ON_CHIP = 21
    HAILO_NMS_BY_CLASS = 22


class FormatFlags(enum.IntEnum):  # hailort.h hailo_format_flags_t
    NONE = 0
    TRANSPOSED = 2


class StreamDirection(enum.IntEnum):  # hailort.h hailo_stream_direction_t
    H2D = 0
    D2H = 1


#: hailort_defaults.cpp get_device_format_order: the compiler's format number -> device order.
DEVICE_ORDER = {
    0: FormatOrder.NHWC,
    1: FormatOrder.NHCW,
    2: FormatOrder.NC,
    3: FormatOrder.FCR,
    4: FormatOrder.BAYER_RGB,
    5: FormatOrder.NHW,
    6: FormatOrder.HAILO_NMS_ON_CHIP,
    7: FormatOrder.F8CR,
    8: FormatOrder.RGB888,
    11: FormatOrder.YUY2,
    13: FormatOrder.NHWC,
    14: FormatOrder.HAILO_YYUV,
    15: FormatOrder.HAILO_YYVU,
    16: FormatOrder.HAILO_YYYYUV,
}
#: hailort_defaults.cpp DEFAULT_FORMAT_ORDER_MAP: device order -> the host order a vstream shows.
HOST_ORDER = {
    FormatOrder.NHWC: FormatOrder.NHWC,
    FormatOrder.NHCW: FormatOrder.NHWC,
    FormatOrder.FCR: FormatOrder.FCR,
    FormatOrder.F8CR: FormatOrder.F8CR,
    FormatOrder.NHW: FormatOrder.NHW,
    FormatOrder.NC: FormatOrder.NC,
    FormatOrder.BAYER_RGB: FormatOrder.BAYER_RGB,
    FormatOrder.RGB888: FormatOrder.NHWC,
    FormatOrder.YUY2: FormatOrder.YUY2,
    FormatOrder.HAILO_YYUV: FormatOrder.NV12,
    FormatOrder.HAILO_YYVU: FormatOrder.NV21,
    FormatOrder.HAILO_YYYYUV: FormatOrder.I420,
    FormatOrder.HAILO_NMS_ON_CHIP: FormatOrder.HAILO_NMS_BY_CLASS,
}
#: hef.proto ProtoHEFHwArch -> device_internal.cpp hef_arch_to_device_arch, as the double names devices.
HW_ARCH = {
    0: "hailo8",
    1: "hailo8",
    2: "hailo8",
    3: "hailo8l",
    4: "hailo15m",
    5: "hailo10h",
    6: "hailo15l",
    103: "hailo15h",
}
#: hef.cpp is_multi_layout: these archs keep their groups under partial_network_groups.
MULTI_LAYOUT_ARCHS = (3, 4)
# hef.proto ProtoHEFExtensionType numbers used below
MULTI_NETWORK_VARIABLE_BATCH_SIZE, HAILO_NET_FLOW, OUTPUT_SCALE_PER_FEATURE = 8, 13, 25


@dataclass(frozen=True)
class VStreamInfo:
    """``_pyhailort.VStreamInfo`` (pyhailort.cpp): ``shape`` by the host format order."""

    name: str
    network_name: str
    direction: StreamDirection
    format: SimpleNamespace
    quant_info: SimpleNamespace
    hwf: tuple[int, int, int]

    @property
    def shape(self) -> tuple[int, ...]:
        height, width, features = self.hwf
        if self.format.order is FormatOrder.NC:
            return (features,)
        if self.format.order is FormatOrder.NHW:
            return (height, width)
        return (height, width, features)

    def __repr__(self) -> str:
        return f'VStreamInfo("{self.name}")'


@dataclass(frozen=True)
class Layer:
    """One boundary edge layer: its vstream info and the ONNX/HN names it came from."""

    info: VStreamInfo
    original_names: tuple[str, ...]


@dataclass(frozen=True)
class Group:
    name: str
    contexts: int
    networks: tuple[str, ...]
    inputs: tuple[Layer, ...]
    outputs: tuple[Layer, ...]
    sorted_output_names: tuple[str, ...]


# -- the container ----------------------------------------------------------------------------


def is_hef_file(path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == struct.pack(">I", MAGIC)
    except OSError:
        return False


def read_container(data: bytes) -> bytes:
    """The ``ProtoHEFHef`` bytes of a HEF file, after hef.cpp's header checks."""
    if len(data) < 12:
        raise HefFileError("HAILO_HEF_FILE_CORRUPTED", "HEF file length does not match")
    magic, version, proto_size = struct.unpack(">III", data[:12])
    if magic != MAGIC:
        raise HefFileError(
            "HAILO_HEF_NOT_SUPPORTED", f"HEF magic does not match. Should be {MAGIC:x} but detected magic - {magic:x}"
        )
    if version not in HEADER_SIZES:
        raise HefFileError("HAILO_HEF_NOT_SUPPORTED", f"Unsupported hef version {version}")
    start = HEADER_SIZES[version]
    rest = data[start:]
    if version == 0:
        expected, digest = proto_size, data[16:32]
        checked = hashlib.md5(rest).digest() == digest
    elif version == 1:
        crc, ccws = struct.unpack(">IQ", data[12:24])
        expected, checked = proto_size + ccws, zlib.crc32(rest) == crc
    elif version == 2:
        expected, checked = proto_size + struct.unpack(">Q", data[20:28])[0], True
    else:
        ccws, _, additional = struct.unpack(">QIQ", data[20:40])
        expected, checked = proto_size + ccws + additional, True
    if len(rest) != expected:
        raise HefFileError("HAILO_HEF_FILE_CORRUPTED", "HEF file length does not match")
    if not checked:
        what = "crc" if version else "md5"
        raise HefFileError("HAILO_HEF_FILE_CORRUPTED", f"HEF {what} does not match")
    return rest[:proto_size]


# -- the message ------------------------------------------------------------------------------
# Field numbers: hef.proto ProtoHEFHef{header=1, network_groups=2, included_features=4,
# extensions=5, optional_extensions=6}; ProtoHEFHeader{hw_arch=1, sdk_version=3, version=4};
# ProtoHEFNetworkGroup{network_group_metadata=1, contexts=3, sorted_outputs_order=4,
# fused_layers_metadata=5, networks_names=6, partial_network_groups=7, ops=8};
# ProtoHEFPartialNetworkGroup{network_group=1}; ProtoHEFNetworkGroupMetadata{network_group_name=1,
# transposed_net=3}; ProtoHEFContext{metadata=3}; ProtoHEFContextMetadata{edge_layers=2,
# sorted_outputs_order=5}; ProtoHEFFusedLayersMetadata{network_has_fused_layers=1,
# updated_sorted_output_names=2}; ProtoHEFEdgeLayer{direction=1, edge_layer_type=2, layer_info=3,
# context_switch_info=5, network_index=6}; ProtoHEFContextSwitchInformation{edge_connection_type=3};
# ProtoHEFEdgeLayerInfo{name=1, edge_layer_base=2, numeric_info=3, original_names=5, transposed=6};
# ProtoHEFEdgeLayerBase{height=1, width=3, features=5, format=7, data_bytes=12};
# ProtoHEFEdgeLayerNumericInfo{qp_zp=1, qp_scale=2, limvals_min=3, limvals_max=4 (float),
# qp_zps=5, qp_scales=6 (repeated double)}; ProtoHEFExtension{type_index=1}.


@dataclass(frozen=True)
class Features:
    """hef.cpp get_supported_features, the three this reader needs."""

    multi_network: bool
    net_flow: bool
    scale_by_feature: bool


def _features(hef: dict) -> Features:
    header = _msg(hef, 1)
    if _int(header, 4) == 0:  # check_hef_extension: version-0 HEFs use included_features, none of these three
        return Features(False, False, False)
    required = {_int(e, 1) for e in _msgs(hef, 5)}
    optional = {_int(e, 1) for e in _msgs(hef, 6)}
    return Features(
        MULTI_NETWORK_VARIABLE_BATCH_SIZE in optional, HAILO_NET_FLOW in required, OUTPUT_SCALE_PER_FEATURE in required
    )


def _not_modelled(what: str):
    raise HefFileError("HAILO_NOT_IMPLEMENTED", f"test double: {what} is not modelled; read this HEF with HailoRT")


def _doubles(f: dict, number: int) -> list[float]:
    out: list[float] = []
    for value in f.get(number, []):
        out.extend(struct.unpack(f"<{len(value) // 8}d", value))
    return out


def _quant(numeric: dict, direction: StreamDirection, features: int, scale_by_feature: bool) -> SimpleNamespace:
    """hef.cpp HefUtils::fill_layer_info: the layer's quant_info."""
    if scale_by_feature:
        zps, scales = _doubles(numeric, 5), _doubles(numeric, 6)
        if direction is StreamDirection.D2H:
            if len(zps) != features or len(scales) != features:
                raise HefFileError("HAILO_INVALID_HEF", "Invalid quantization infos vector in HEF!")
            return SimpleNamespace(qp_zp=0.0, qp_scale=0.0, limvals_min=0.0, limvals_max=0.0)  # INVALID_QP
        if len(set(zps)) > 1 or len(set(scales)) > 1:
            raise HefFileError(
                "HAILO_INVALID_HEF", "Different quantization infos are not allowed for input streams (H2D)!"
            )
    return SimpleNamespace(
        qp_zp=_float(numeric, 1),
        qp_scale=_float(numeric, 2),
        limvals_min=_float(numeric, 3),
        limvals_max=_float(numeric, 4),
    )


def _partial_network(core_op: dict, index: int, features: Features) -> str:
    """hef.cpp get_partial_network_name_by_index (the edge layer's network_index counts only with
    multi-network support)."""
    if not features.multi_network:
        return core_op["name"]
    if index >= len(core_op["networks_names"]):
        raise HefFileError(
            "HAILO_INVALID_ARGUMENT",
            f"Requested name for network_index={index}, however there are "
            f"only {len(core_op['networks_names'])} networks in the network "
            "group",
        )
    return core_op["networks_names"][index]


def _layer(edge: dict, core_op: dict, features: Features) -> Layer:
    """One boundary INFO edge layer -> its vstream info (hef.cpp fill_layer_info,
    fill_layer_info_with_base_info; layer_info.hpp get_vstream_info_from_layer_info_impl)."""
    info, direction = _msg(edge, 3), StreamDirection(_int(edge, 1))
    base = _msg(info, 2)
    device_order = DEVICE_ORDER.get(_int(base, 7))
    if device_order is None:
        raise HefFileError("HAILO_INVALID_HEF", f"Invalid format order {_int(base, 7)}")
    if device_order is FormatOrder.HAILO_NMS_ON_CHIP:
        _not_modelled("an NMS output")
    data_bytes = _int(base, 12)
    if data_bytes not in (1, 2):  # hailort_common.hpp get_format_type
        raise HefFileError("HAILO_INVALID_ARGUMENT", f"data_bytes {data_bytes}")
    height, width, depth = _int(base, 1), _int(base, 3), _int(base, 5)
    flags = FormatFlags.NONE
    if (_int(core_op["metadata"], 3) or _int(info, 6)) and device_order is not FormatOrder.NC:
        height, width, flags = width, height, FormatFlags.TRANSPOSED
    partial = _partial_network(core_op, _int(edge, 6), features)
    fmt = SimpleNamespace(type=FormatType(data_bytes), order=HOST_ORDER[device_order], flags=flags)
    quant = _quant(_msg(info, 3), direction, depth, features.scale_by_feature)
    vstream = VStreamInfo(_str(info, 1), f"{core_op['name']}/{partial}", direction, fmt, quant, (height, width, depth))
    return Layer(vstream, tuple(_strs(info, 5)))


def _core_op(group: dict, arch: int) -> dict:
    """The core-op HailoRT reads a group through: the group itself, or on multi-layout archs its
    first partial network group (hef.cpp is_multi_layout, get_network_group_name)."""
    source = _msg(_msgs(group, 7)[0], 1) if arch in MULTI_LAYOUT_ARCHS and 7 in group else group
    metadata = _msg(source, 1)
    return {
        "source": source,
        "metadata": metadata,
        "name": _str(metadata, 1),
        "contexts": [_msg(c, 3) for c in _msgs(source, 3)],
        "networks_names": _strs(source, 6),
    }


def _sorted_outputs(group: dict, core_op: dict, features: Features) -> list[str]:
    """hef.cpp fill_networks_metadata: where a group's sorted output names live."""
    fused = _msg(core_op["source"], 5)
    partials = _msgs(group, 7)
    if _int(fused, 1):
        return _strs(fused, 2)
    if not features.net_flow and partials and _strs(_msg(partials[0], 1), 4):
        return _strs(_msg(partials[0], 1), 4)
    if _strs(group, 4):
        return _strs(group, 4)
    last = core_op["contexts"][-1] if core_op["contexts"] else {}
    if not _strs(last, 5):
        raise HefFileError("HAILO_INVALID_HEF", "Sorted output names is not set up in the HEF.")
    return _strs(last, 5)


def _group(group: dict, arch: int, features: Features) -> Group:
    core_op = _core_op(group, arch)
    if group.get(8) or _int(_msg(core_op["source"], 5), 1):
        _not_modelled("a network group with net-flow ops or fused layers")
    names = _strs(group, 6) or (_strs(_msg(_msgs(group, 7)[0], 1), 6) if _msgs(group, 7) else [])
    networks = [f"{core_op['name']}/{n}" for n in names] if features.multi_network else []
    inputs, outputs = [], []
    for context in core_op["contexts"]:  # core_op_metadata.cpp: boundary layers, context by context
        for edge in _msgs(context, 2):
            if _int(_msg(edge, 5), 3) != 0:  # PROTO__EDGE_CONNECTION_TYPE__BOUNDARY
                continue
            if _int(edge, 2) != 0:
                _not_modelled("a mux or planes edge layer")
            layer = _layer(edge, core_op, features)
            (inputs if layer.info.direction is StreamDirection.H2D else outputs).append(layer)
    order = _sorted_outputs(group, core_op, features)
    missing = [o.info.name for o in outputs if o.info.name not in order]
    if missing:
        raise HefFileError("HAILO_INTERNAL_FAILURE", f"VStream {missing[0]} not found in sorted output names")
    # core_op_metadata.cpp: "Sort vstream infos by sorted_output_names"
    outputs.sort(key=lambda o: order.index(o.info.name))
    return Group(
        core_op["name"],
        len(core_op["contexts"]),
        tuple(networks or [f"{core_op['name']}/{core_op['name']}"]),
        tuple(inputs),
        tuple(outputs),
        tuple(order),
    )


@dataclass(frozen=True)
class HefContents:
    hw_arch: str
    sdk_version: str
    extensions: tuple[int, ...]
    groups: tuple[Group, ...]


def read_hef(path) -> HefContents:
    """A real HEF file -> what HailoRT's HEF queries answer from it."""
    with open(path, "rb") as handle:
        hef = fields(read_container(handle.read()))
    header, features = _msg(hef, 1), _features(hef)
    arch = _int(header, 1)
    if arch not in HW_ARCH:
        _not_modelled(f"hw_arch {arch}")
    groups = tuple(_group(g, arch, features) for g in _msgs(hef, 2))
    return HefContents(HW_ARCH[arch], _str(header, 3), tuple(sorted(_int(e, 1) for e in _msgs(hef, 5))), groups)


# -- the double's HEF for a real file ------------------------------------------------------------

#: hailort.h HAILO_STATUS__X numbers of the statuses this reader raises beyond the package's table.
STATUS_CODES = {
    "HAILO_NOT_IMPLEMENTED": 7,
    "HAILO_INTERNAL_FAILURE": 8,
    "HAILO_OPEN_FILE_FAILURE": 13,
    "HAILO_HEF_FILE_CORRUPTED": 91,
    "HAILO_HEF_NOT_SUPPORTED": 92,
}


class HailoRTStatusException(Exception):
    """``_pyhailort.HailoRTStatusException`` (bindings/python/src/utils.hpp VALIDATE_EXPECTED): what
    the HEF methods that pyhailort.py does not wrap in ExceptionWrapper raise; its text is the
    status number."""


class RealHef:
    """``hailo_platform.HEF(path)`` for a real HEF file in the runtime double: the queries
    pyhailort.py's HEF class offers, answered from the file as HailoRT 4.23 answers them. The
    double cannot run such a HEF (it has no network to compute): configuring it is refused."""

    def __init__(self, path):
        try:
            self.contents = read_hef(path)
        except HefFileError as exc:
            self._fail(exc.status, exc.line)
        except OSError:
            self._fail("HAILO_OPEN_FILE_FAILURE", f"Failed to open HEF file {path}")
        self.path = str(path)
        self.data = {"hw_arch": self.contents.hw_arch, "sdk_version": self.contents.sdk_version}

    @staticmethod
    def _fail(status: str, line: str | None = None):
        """The package's error path (the binding's classes and texts, pyhailort.py
        ``create_exception_from_status``), with the status numbers of hailort.h for the statuses
        only this reader raises."""
        from . import _fail, log
        from .pyhailort.pyhailort import CODES, RAISED, HailoRTException

        if status in RAISED or status in CODES:
            _fail(status, line)
        if line:
            log(f"CHECK failed - {line}")
        raise HailoRTException(f"libhailort failed with error: {STATUS_CODES.get(status, 0)} ({status})")

    @property
    def groups(self):
        self._fail(
            "HAILO_NOT_IMPLEMENTED",
            f"test double: {self.path} is a real HEF; the double reads it but cannot configure or run it",
        )

    def _named_group(self, name=None) -> Group:
        """hef.cpp get_core_op_by_net_group_name ("" or None: the first group)."""
        groups = self.contents.groups
        found = groups[:1] if not name else [g for g in groups if g.name == name]
        if not found:
            self._fail("HAILO_NOT_FOUND", f"HEF does not contain network_group with name {name}")
        return found[0]

    def _group_and_network(self, name) -> tuple[Group, str] | None:
        """hef.cpp get_network_group_and_network_name."""
        if not name:
            group = self.contents.groups[0]
            return group, f"{group.name}/{group.name}"
        for group in self.contents.groups:
            if name == group.name or name == f"{group.name}/{group.name}":
                return group, f"{group.name}/{group.name}"
            if name in group.networks:
                return group, name
        return None

    def get_network_group_names(self):
        return [g.name for g in self.contents.groups]

    def get_network_groups_infos(self):
        # hef.cpp get_network_groups_infos walks a std::map: by name, not file order
        return [
            SimpleNamespace(name=g.name, is_multi_context=g.contexts > 1)
            for g in sorted(self.contents.groups, key=lambda g: g.name)
        ]

    def get_networks_names(self, network_group_name=None):
        found = self._group_and_network(network_group_name)
        if found is None:
            self._fail(
                "HAILO_NOT_FOUND", f"Failed to find network or network_group with the name '{network_group_name}'"
            )
        return list(found[0].networks)

    def _infos(self, name, kind: str) -> list[VStreamInfo]:
        """core_op_metadata.cpp get_input/output_layer_infos: the network's layers, or all of the
        group's for the group (default network) name. Not wrapped in pyhailort.py's
        ExceptionWrapper: a failure is the raw status exception."""
        found = self._group_and_network(name)
        if found is None:
            raise HailoRTStatusException("61")  # HAILO_NOT_FOUND
        group, network = found
        every = network == f"{group.name}/{group.name}"
        infos = [layer.info for layer in getattr(group, kind) if every or layer.info.network_name == network]
        if not infos:
            raise HailoRTStatusException("61")
        return infos

    def get_input_vstream_infos(self, name=None):
        return self._infos(name, "inputs")

    def get_output_vstream_infos(self, name=None):
        return self._infos(name, "outputs")

    def get_all_vstream_infos(self, name=None):
        return self._infos(name, "inputs") + self._infos(name, "outputs")

    def get_sorted_output_names(self, network_group_name=None):
        return list(self._named_group(network_group_name).sorted_output_names)

    def get_vstream_name_from_original_name(self, original_name, network_group_name=None):
        """hef.cpp get_vstream_name_from_original_name."""
        group = self._named_group(network_group_name)
        found = [layer.info.name for layer in group.inputs + group.outputs if original_name in layer.original_names]
        if len(found) > 1:
            self._fail("HAILO_INVALID_HEF", f"Original name {original_name} appears more than once in the HEF.")
        if not found:
            self._fail("HAILO_NOT_FOUND")
        return found[0]

    def get_original_names_from_vstream_name(self, vstream_name, network_group_name=None):
        """hef.cpp get_original_names_from_vstream_name."""
        group = self._named_group(network_group_name)
        for layer in group.inputs + group.outputs:
            if layer.info.name == vstream_name:
                return list(layer.original_names)
        self._fail("HAILO_NOT_FOUND")
