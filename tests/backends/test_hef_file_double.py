"""The runtime double reads real HEF files (tests/doubles/runtime_double/hailo_platform/_hef_file.py).

The HEFs here are written by hand (tests/backends/hef_samples.py), so this runs without HailoRT;
``make test-hailort`` checks the same reader against HailoRT's own library on those HEFs and on
one from the Dataflow Compiler.
"""

from __future__ import annotations

import re

import pytest

from tests.backends.hef_samples import EDGES, SAMPLES, edge, hef_file
from tests.doubles import runtime as runtime_double


@pytest.fixture
def hailo(monkeypatch):
    return runtime_double.install(monkeypatch)


def _write(tmp_path, data: bytes):
    path = tmp_path / "real.hef"
    path.write_bytes(data)
    return str(path)


def test_groups_networks_and_contexts(hailo, tmp_path):
    hef = hailo.HEF(_write(tmp_path, hef_file(EDGES, ["net/conv3", "net/conv1"])))
    assert hef.get_network_group_names() == ["net"]
    assert [(i.name, i.is_multi_context) for i in hef.get_network_groups_infos()] == [("net", True)]
    assert hef.get_networks_names() == ["net/a", "net/b"]
    assert hef.data["hw_arch"] == "hailo8"


def test_vstream_infos_in_the_sorted_output_order_with_hailort_shapes(hailo, tmp_path):
    hef = hailo.HEF(_write(tmp_path, hef_file(EDGES, ["net/conv3", "net/conv1"])))
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
    hef = hailo.HEF(_write(tmp_path, hef_file(EDGES, ["net/conv3", "net/conv1"])))
    assert hef.get_original_names_from_vstream_name("net/conv3") == ["out_b", "out_b_fused"]
    assert hef.get_vstream_name_from_original_name("out_b_fused") == "net/conv3"
    assert hef.get_vstream_name_from_original_name("in_a", "net") == "net/input_layer1"
    with pytest.raises(hailo.pyhailort.pyhailort.HailoRTNotFoundException):
        hef.get_original_names_from_vstream_name("net/nothing")
    with pytest.raises(hailo.pyhailort.pyhailort.HailoRTNotFoundException):
        hef.get_vstream_name_from_original_name("nothing")


def test_unknown_names_raise_as_the_binding_does(hailo, tmp_path):
    from hailo_platform._hef_file import HailoRTStatusException

    hef = hailo.HEF(_write(tmp_path, hef_file(EDGES, ["net/conv3", "net/conv1"])))
    with pytest.raises(HailoRTStatusException, match="^61$"):  # pyhailort.py leaves these unwrapped
        hef.get_input_vstream_infos("net/c")
    with pytest.raises(hailo.pyhailort.pyhailort.HailoRTNotFoundException):
        hef.get_networks_names("other")


def test_a_duplicated_original_name_is_an_invalid_hef(hailo, tmp_path):
    edges = [
        [edge("net/input_layer1", 0, (1, 8, 1), originals=("x",)), edge("net/conv1", 1, (1, 8, 1), originals=("x",))]
    ]
    hef = hailo.HEF(_write(tmp_path, hef_file(edges, ["net/conv1"], networks=("a",))))
    with pytest.raises(hailo.pyhailort.pyhailort.HailoRTInvalidHEFException):
        hef.get_vstream_name_from_original_name("x")


@pytest.mark.parametrize(
    "damage, status",
    [
        (lambda d: d[:-1], "91 (HAILO_HEF_FILE_CORRUPTED)"),
        (lambda d: d[:12] + b"\0\0\0\1" + d[16:], "91 (HAILO_HEF_FILE_CORRUPTED)"),
        (lambda d: d[:4] + b"\0\0\0\7" + d[8:], "92 (HAILO_HEF_NOT_SUPPORTED)"),
    ],
)
def test_a_damaged_container_is_refused(hailo, tmp_path, damage, status):
    path = _write(tmp_path, damage(hef_file(EDGES, ["net/conv3", "net/conv1"])))
    with pytest.raises(hailo.HailoRTException, match=re.escape(status)):
        hailo.HEF(path)


def test_what_the_double_does_not_model_is_refused_not_guessed(hailo, tmp_path):
    mux = [[edge("net/input_layer1", 0, (1, 8, 1)), edge("net/mux", 1, (1, 8, 1), kind=1)]]
    with pytest.raises(hailo.HailoRTException, match="HAILO_NOT_IMPLEMENTED"):
        hailo.HEF(_write(tmp_path, hef_file(mux, ["net/mux"], networks=("a",))))
    hef = hailo.HEF(_write(tmp_path, hef_file(EDGES, ["net/conv3", "net/conv1"])))
    with pytest.raises(hailo.HailoRTException, match="HAILO_NOT_IMPLEMENTED"):
        hailo.VDevice().configure(hef)
    missing = [[edge("net/input_layer1", 0, (1, 8, 1)), edge("net/conv1", 1, (1, 8, 1))]]
    with pytest.raises(hailo.HailoRTException, match="HAILO_INTERNAL_FAILURE"):  # core_op_metadata.cpp sort
        hailo.HEF(_write(tmp_path, hef_file(missing, ["net/other"], networks=("a",))))


def test_hailo8l_reads_the_first_partial_group(hailo, tmp_path):
    hef = hailo.HEF(_write(tmp_path, SAMPLES["hailo8l_partial_group"]()))
    assert hef.data["hw_arch"] == "hailo8l"
    assert hef.get_network_group_names() == ["net"] and hef.get_networks_names() == ["net/a", "net/b"]
    assert [o.name for o in hef.get_output_vstream_infos()] == ["net/conv3", "net/conv1"]


def test_outputs_quantized_per_feature_show_no_single_quant_info(hailo, tmp_path):
    """hef.cpp fill_layer_info: with OUTPUT_SCALE_PER_FEATURE an output's quant_info is INVALID_QP
    (all zero); an input keeps its qp_zp and qp_scale."""
    hef = hailo.HEF(_write(tmp_path, SAMPLES["scale_per_feature"]()))
    (out,) = hef.get_output_vstream_infos()
    (inp,) = hef.get_input_vstream_infos()
    assert [out.quant_info.qp_zp, out.quant_info.qp_scale] == [0.0, 0.0]
    assert [inp.quant_info.qp_zp, inp.quant_info.qp_scale] == [0.0, 1.0]
