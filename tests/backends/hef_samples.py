"""Hand-written HEF files in HailoRT's container and hef.proto's wire format (field numbers as
tests/doubles/runtime_double/hailo_platform/_hef_file.py cites them), with the fields HailoRT 4.23
needs to open them. Used by test_hef_file_double.py (the double alone) and by the ``hailort`` tier
(test_hailort_library.py), where HailoRT's own library reads each of SAMPLES and the double must
answer the same.
"""

from __future__ import annotations

import struct
import zlib


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def field(number: int, value) -> bytes:
    """One protobuf field: int -> varint, float -> fixed32, bytes/str -> length-delimited."""
    if isinstance(value, int):  # bool is an int
        return varint(number << 3) + varint(int(value))
    if isinstance(value, float):
        return varint(number << 3 | 5) + struct.pack("<f", value)
    payload = value.encode() if isinstance(value, str) else value
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def edge(
    name, direction, hwf, fmt=0, network=0, originals=(), kind=0, zp=0.0, scale=1.0, sys_index=1, per_feature=None
):
    """One boundary edge layer with the fields HailoRT 4.23 needs to open the file (a DFC writes
    more; hef.cpp reads these for HEF queries)."""
    h, w, c = hwf
    base = (
        field(1, h)
        + field(2, h)
        + field(3, w)
        + field(4, w)
        + field(5, c)
        + field(6, c)
        + field(7, fmt)
        + field(8, sys_index)
        + field(9, w * c * 2)
        + field(10, h)
        + field(12, 2)
        + field(13, field(1, 2))
        + field(15, 65536)
    )
    numeric = field(1, zp) + field(2, scale) + field(3, -1.5) + field(4, 2.5)
    if per_feature:
        numeric += field(5, struct.pack(f"<{c}d", *per_feature[0])) + field(6, struct.pack(f"<{c}d", *per_feature[1]))
    info = (
        field(1, name) + field(2, base) + field(3, numeric) + b"".join(field(5, o) for o in originals) + field(4, name)
    )
    switch = field(2, "context_0") + field(3, 0) + field(6, 0xFFFFFFFF)
    return (
        field(1, direction) + field(2, kind) + field(3 if kind == 0 else 4, info) + field(5, switch) + field(6, network)
    )


def hef_file(edges_per_context, sorted_outputs, networks=("a", "b"), crc=None, arch=0, extensions=(26,)) -> bytes:
    """A HEF container (version 1) around one network group "net"; on Hailo-8L (arch 3) the group
    sits in partial_network_groups as the DFC writes it for multi-layout archs."""
    contexts = b"".join(field(3, field(3, b"".join(field(2, e) for e in edges))) for edges in edges_per_context)
    group = (
        field(1, field(1, "net"))
        + contexts
        + b"".join(field(4, s) for s in sorted_outputs)
        + b"".join(field(6, n) for n in networks)
    )
    if arch == 3:
        group = field(7, field(1, group)) + b"".join(field(6, n) for n in networks)
    header = field(1, arch) + field(3, "3.29.0") + field(4, 1)
    proto = (
        field(1, header) + field(2, group) + b"".join(field(5, field(1, e)) for e in extensions) + field(6, field(1, 8))
    )
    ccws = b"\0" * 16
    rest = proto + ccws
    checksum = zlib.crc32(rest) if crc is None else crc
    return struct.pack(">III", 0x01484546, 1, len(proto)) + struct.pack(">IQI", checksum, len(ccws), 0) + rest


EDGES = [
    [
        edge("net/input_layer1", 0, (1, 64, 16), network=0, originals=("in_a",)),
        edge("net/conv1", 1, (1, 64, 16), network=0, originals=("out_skip",), zp=3.0, scale=0.25, sys_index=2),
    ],
    [
        edge("net/input_layer2", 0, (2, 64, 1), fmt=5, network=1, originals=("in_b",)),
        edge("net/conv3", 1, (1, 1, 7), fmt=2, network=1, originals=("out_b", "out_b_fused"), sys_index=2),
    ],
]
#: Hand-written HEFs that HailoRT 4.23 opens: the tier (test_hailort_library.py) compares the double
#: with it on each. Two contexts and two networks, outputs sorted unlike file order, NHW and NC
#: shapes; the same on Hailo-8L; an output quantized per feature (OUTPUT_SCALE_PER_FEATURE = 25).
SAMPLES = {
    "multi_context_two_networks": lambda: hef_file(EDGES, ["net/conv3", "net/conv1"]),
    "hailo8l_partial_group": lambda: hef_file(EDGES, ["net/conv3", "net/conv1"], arch=3),
    "scale_per_feature": lambda: hef_file(
        [
            [
                edge("net/input_layer1", 0, (1, 8, 3), per_feature=([5.0] * 3, [0.5] * 3)),
                edge("net/conv1", 1, (1, 8, 3), sys_index=2, per_feature=([1.0, 2.0, 3.0], [0.1, 0.2, 0.3])),
            ]
        ],
        ["net/conv1"],
        networks=("a",),
        extensions=(26, 25),
    ),
}
