"""The runtime double reads real HEF files (tests/doubles/runtime_double/hailo_platform/_hef_file.py).

The HEFs here are written by hand in HailoRT's container and hef.proto's wire format (field
numbers as _hef_file.py cites them), so this runs without HailoRT; ``make test-hailort`` checks the
same reader against HailoRT's own library on a HEF from the Dataflow Compiler.
"""

from __future__ import annotations

import re
import struct
import zlib

import pytest

from tests.doubles import runtime as runtime_double


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _f(number: int, value) -> bytes:
    """One protobuf field: int -> varint, float -> fixed32, bytes/str -> length-delimited."""
    if isinstance(value, int):  # bool is an int
        return _varint(number << 3) + _varint(int(value))
    if isinstance(value, float):
        return _varint(number << 3 | 5) + struct.pack("<f", value)
    payload = value.encode() if isinstance(value, str) else value
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _edge(name, direction, hwf, fmt=0, network=0, originals=(), kind=0, zp=0.0, scale=1.0):
    base = _f(1, hwf[0]) + _f(3, hwf[1]) + _f(5, hwf[2]) + _f(7, fmt) + _f(12, 2)
    numeric = _f(1, zp) + _f(2, scale) + _f(3, -1.5) + _f(4, 2.5)
    info = _f(1, name) + _f(2, base) + _f(3, numeric) + b"".join(_f(5, o) for o in originals)
    return _f(1, direction) + _f(2, kind) + _f(3 if kind == 0 else 4, info) + _f(5, _f(3, 0)) + _f(6, network)


def _hef(edges_per_context, sorted_outputs, networks=("a", "b"), crc=None) -> bytes:
    contexts = b"".join(_f(3, _f(3, b"".join(_f(2, e) for e in edges))) for edges in edges_per_context)
    group = (_f(1, _f(1, "net")) + contexts + b"".join(_f(4, s) for s in sorted_outputs)
             + b"".join(_f(6, n) for n in networks))
    header = _f(1, 0) + _f(3, "3.29.0") + _f(4, 1)
    proto = _f(1, header) + _f(2, group) + _f(5, _f(1, 26)) + _f(6, _f(1, 8))
    ccws = b"\0" * 16
    rest = proto + ccws
    checksum = zlib.crc32(rest) if crc is None else crc
    return struct.pack(">III", 0x01484546, 1, len(proto)) + struct.pack(">IQI", checksum, len(ccws), 0) + rest


EDGES = [[_edge("net/input_layer1", 0, (1, 64, 16), network=0, originals=("in_a",)),
          _edge("net/conv1", 1, (1, 64, 16), network=0, originals=("out_skip",), zp=3.0, scale=0.25)],
         [_edge("net/input_layer2", 0, (2, 64, 1), fmt=5, network=1, originals=("in_b",)),
          _edge("net/conv3", 1, (1, 1, 7), fmt=2, network=1, originals=("out_b", "out_b_fused"))]]


@pytest.fixture
def hailo(monkeypatch):
    return runtime_double.install(monkeypatch)


def _write(tmp_path, data: bytes):
    path = tmp_path / "real.hef"
    path.write_bytes(data)
    return str(path)


def test_groups_networks_and_contexts(hailo, tmp_path):
    hef = hailo.HEF(_write(tmp_path, _hef(EDGES, ["net/conv3", "net/conv1"])))
    assert hef.get_network_group_names() == ["net"]
    assert [(i.name, i.is_multi_context) for i in hef.get_network_groups_infos()] == [("net", True)]
    assert hef.get_networks_names() == ["net/a", "net/b"]
    assert hef.data["hw_arch"] == "hailo8"


def test_vstream_infos_in_the_sorted_output_order_with_hailort_shapes(hailo, tmp_path):
    hef = hailo.HEF(_write(tmp_path, _hef(EDGES, ["net/conv3", "net/conv1"])))
    assert [o.name for o in hef.get_output_vstream_infos("net")] == ["net/conv3", "net/conv1"]
    assert [i.name for i in hef.get_input_vstream_infos()] == ["net/input_layer1", "net/input_layer2"]
    (b_in,) = hef.get_input_vstream_infos("net/b")
    (b_out,) = hef.get_output_vstream_infos("net/b")
    assert (b_in.shape, b_in.format.order.name, b_in.format.type.name) == ((2, 64), "NHW", "UINT16")
    assert (b_out.shape, b_out.format.order.name, b_out.network_name) == ((7,), "NC", "net/b")
    (a_out,) = hef.get_output_vstream_infos("net/a")
    q = a_out.quant_info
    assert (a_out.shape, q.qp_zp, q.qp_scale, q.limvals_min, q.limvals_max) == ((1, 64, 16), 3.0, 0.25, -1.5, 2.5)
    assert hef.get_sorted_output_names("net") == ["net/conv3", "net/conv1"]


def test_original_names_both_ways(hailo, tmp_path):
    hef = hailo.HEF(_write(tmp_path, _hef(EDGES, ["net/conv3", "net/conv1"])))
    assert hef.get_original_names_from_vstream_name("net/conv3") == ["out_b", "out_b_fused"]
    assert hef.get_vstream_name_from_original_name("out_b_fused") == "net/conv3"
    assert hef.get_vstream_name_from_original_name("in_a", "net") == "net/input_layer1"
    with pytest.raises(hailo.HailoRTNotFoundException):
        hef.get_original_names_from_vstream_name("net/nothing")
    with pytest.raises(hailo.HailoRTNotFoundException):
        hef.get_vstream_name_from_original_name("nothing")


def test_unknown_names_raise_as_the_binding_does(hailo, tmp_path):
    from hailo_platform._hef_file import HailoRTStatusException

    hef = hailo.HEF(_write(tmp_path, _hef(EDGES, ["net/conv3", "net/conv1"])))
    with pytest.raises(HailoRTStatusException, match="^61$"):  # pyhailort.py leaves these unwrapped
        hef.get_input_vstream_infos("net/c")
    with pytest.raises(hailo.HailoRTNotFoundException):
        hef.get_networks_names("other")


def test_a_duplicated_original_name_is_an_invalid_hef(hailo, tmp_path):
    edges = [[_edge("net/input_layer1", 0, (1, 8, 1), originals=("x",)), _edge("net/conv1", 1, (1, 8, 1),
                                                                               originals=("x",))]]
    hef = hailo.HEF(_write(tmp_path, _hef(edges, ["net/conv1"], networks=("a",))))
    with pytest.raises(hailo.HailoRTInvalidHEFException):
        hef.get_vstream_name_from_original_name("x")


@pytest.mark.parametrize("damage, status", [(lambda d: d[:-1], "91 (HAILO_HEF_FILE_CORRUPTED)"),
                                            (lambda d: d[:12] + b"\0\0\0\1" + d[16:], "91 (HAILO_HEF_FILE_CORRUPTED)"),
                                            (lambda d: d[:4] + b"\0\0\0\7" + d[8:], "92 (HAILO_HEF_NOT_SUPPORTED)")])
def test_a_damaged_container_is_refused(hailo, tmp_path, damage, status):
    path = _write(tmp_path, damage(_hef(EDGES, ["net/conv3", "net/conv1"])))
    with pytest.raises(hailo.HailoRTException, match=re.escape(status)):
        hailo.HEF(path)


def test_what_the_double_does_not_model_is_refused_not_guessed(hailo, tmp_path):
    mux = [[_edge("net/input_layer1", 0, (1, 8, 1)), _edge("net/mux", 1, (1, 8, 1), kind=1)]]
    with pytest.raises(hailo.HailoRTException, match="HAILO_NOT_IMPLEMENTED"):
        hailo.HEF(_write(tmp_path, _hef(mux, ["net/mux"], networks=("a",))))
    hef = hailo.HEF(_write(tmp_path, _hef(EDGES, ["net/conv3", "net/conv1"])))
    with pytest.raises(hailo.HailoRTException, match="HAILO_NOT_IMPLEMENTED"):
        hailo.VDevice().configure(hef)
    missing = [[_edge("net/input_layer1", 0, (1, 8, 1)), _edge("net/conv1", 1, (1, 8, 1))]]
    with pytest.raises(hailo.HailoRTException, match="HAILO_INTERNAL_FAILURE"):  # core_op_metadata.cpp sort
        hailo.HEF(_write(tmp_path, _hef(missing, ["net/other"], networks=("a",))))
