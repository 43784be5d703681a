"""The stateful streaming graph's export: its cache layout, its record (written, read back,
refused when tampered with) and the models it refuses."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from convtasnet_hailo.errors import UserError
from convtasnet_hailo.export.stateful import (
    RECORD_NAME,
    StatefulRecord,
    cache_layout,
    export_stateful,
    read_stateful,
    ring_layout,
    stream_delay,
)
from convtasnet_hailo.model.config import NormType
from convtasnet_hailo.model.random_init import random_model
from tests.conftest import TINY, assert_within_contract

CAUSAL = dataclasses.replace(TINY, causal=True, norm_type=NormType.CLN)
CGLN = dataclasses.replace(CAUSAL, norm_type=NormType.CGLN)


def test_cln_layout_has_one_cache_per_piece_of_history():
    hop = 4 * CAUSAL.stride
    layout = {c.name: c for c in cache_layout(CAUSAL, hop)}
    assert list(layout) == ["frame_index", "encoder_overlap", "decoder_tail"]
    assert layout["encoder_overlap"].shape == (1, 1, stream_delay(CAUSAL)) == (1, 1, CAUSAL.kernel_size - CAUSAL.stride)
    assert layout["decoder_tail"].shape == (CAUSAL.n_src, CAUSAL.kernel_size - CAUSAL.stride)
    assert layout["frame_index"].initial == -(stream_delay(CAUSAL) // CAUSAL.stride)
    assert all(c.initial == 0 for name, c in layout.items() if name != "frame_index")


@pytest.mark.parametrize("frames", [1, 3, 4, 8])
def test_each_depthwise_conv_keeps_a_ring_of_the_hops_its_taps_reach(frames):
    """Hops of W frames: tap p of block b reads frame t - (P-1-p)*d, so the ring keeps hops back to
    ceil((P-1)*d / W), a power of two of them, and the graph reads exactly the lags some tap reaches."""
    rings = {r.name: r for r in ring_layout(CAUSAL, frames * CAUSAL.stride)}
    for block in range(CAUSAL.n_tcn_blocks):
        reach = (CAUSAL.conv_kernel_size - 1) * CAUSAL.dilation(block)
        ring = rings[f"block{block}_frames"]
        assert ring.shape == (frames, CAUSAL.hid_chan) and ring.lags[-1] == -(-reach // frames)
        assert ring.length > ring.lags[-1] and ring.length & (ring.length - 1) == 0
        reached = {
            (t - (CAUSAL.conv_kernel_size - 1 - p) * CAUSAL.dilation(block)) // frames
            for t in range(frames)
            for p in range(CAUSAL.conv_kernel_size)
        }
        assert set(ring.lags) == {-h for h in reached if h < 0}


def test_cgln_layout_adds_running_sums_per_norm():
    layout = [c for c in cache_layout(CGLN, CGLN.stride) if "cgln" in c.name]
    assert len(layout) == 1 + 2 * CGLN.n_tcn_blocks  # the bottleneck's and two per block
    assert {(c.shape, c.dtype, c.initial) for c in layout} == {((2, 1), "float64", 0.0)}


def test_a_window_of_whole_strides_needs_no_overlap_cache():
    config = dataclasses.replace(CAUSAL, kernel_size=CAUSAL.stride)
    names = [c.name for c in cache_layout(config, config.stride)]
    assert "encoder_overlap" not in names and "decoder_tail" not in names


def test_export_writes_one_static_onnx_and_its_record_reads_back(tmp_path):
    import onnx

    hop = 2 * CGLN.stride
    record = export_stateful(random_model(CGLN, seed=1), hop, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([record.onnx_file, record.steady_file, RECORD_NAME])
    graph = onnx.load(tmp_path / record.onnx_file)
    onnx.checker.check_model(graph, full_check=True)
    assert [(o.domain, o.version) for o in graph.opset_import] == [("", 13)]
    again = export_stateful(random_model(CGLN, seed=1), hop, tmp_path / "again")
    assert again.sha256 == record.sha256, "the same model exports the same bytes"
    for value in list(graph.graph.input) + list(graph.graph.output):
        assert all(d.HasField("dim_value") for d in value.type.tensor_type.shape.dim), value.name
    names = [c.name for c in record.caches]
    lags = [r.lag_name(j) for r in record.rings for j in r.lags]
    assert lags and [i.name for i in graph.graph.input] == ["samples", "valid_samples", *names, *lags]
    outputs = ["sources", *(n + "_next" for n in names), *(r.name for r in record.rings)]
    assert [o.name for o in graph.graph.output] == outputs
    steady = onnx.load(tmp_path / record.steady_file)
    assert [i.name for i in steady.graph.input] == ["samples", *names, *lags], "no valid_samples: nothing to mask"
    assert [o.name for o in steady.graph.output] == [o.name for o in graph.graph.output]
    assert len(steady.graph.node) < len(graph.graph.node)
    path, again = read_stateful(tmp_path)
    assert again == record and path == tmp_path / record.onnx_file
    assert StatefulRecord.from_json(json.loads(json.dumps(record.to_json()))) == record


def test_a_record_without_a_steady_graph_still_reads(tmp_path):
    """Records written before the steady graph existed name only the graph."""
    record = export_stateful(random_model(CAUSAL, seed=1), CAUSAL.stride, tmp_path)
    _tampered(tmp_path, lambda d: [d.pop("steady_file"), d.pop("steady_sha256"), d.update(format_version=1)])
    assert read_stateful(tmp_path)[1] == dataclasses.replace(record, steady_file=None, steady_sha256=None)


def _tampered(tmp_path, change) -> None:
    data = json.loads((tmp_path / RECORD_NAME).read_text())
    change(data)
    (tmp_path / RECORD_NAME).write_text(json.dumps(data))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d["caches"][1].update(shape=[0]), "not a shape of positive sizes"),
        (lambda d: d["caches"][1].update(shape=[2.5]), r"shape\[0\] is 2.5, not an integer"),
        (lambda d: d["caches"][0].update(initial=float("nan")), "initial is nan, not a number"),
        (lambda d: d["caches"][2].update(name="frame_index"), "names repeat"),
        (lambda d: d["caches"][1].update(dtype="float16"), "not one of float32, float64"),
        (lambda d: d.update(onnx_file="../elsewhere.onnx"), "points outside its folder"),
        (lambda d: d.update(hop=-8), "out of range"),
        (lambda d: d.update(sha256="abc"), "not a sha256"),
        (lambda d: d.update(steady_sha256=None), "steady_sha256 'None' is not a sha256"),
        (lambda d: d["rings"][0].update(length=3), "not a power of two"),
        (lambda d: d["rings"][0].update(lags=[0]), "must rise from 1"),
        (lambda d: d["rings"][0].update(lags=[1, 1 << 20], length=1 << 21), "must rise from 1"),
        (lambda d: d["rings"][1].update(name="block0_frames"), "names repeat"),
    ],
    ids=[
        "empty_shape",
        "float_shape",
        "nan_initial",
        "repeated_name",
        "dtype",
        "path_out",
        "hop",
        "sha256",
        "steady",
        "ring_length",
        "ring_lag0",
        "ring_huge",
        "ring_name",
    ],
)
def test_a_tampered_record_is_refused(tmp_path, change, message):
    export_stateful(random_model(CAUSAL, seed=1), CAUSAL.stride, tmp_path)
    _tampered(tmp_path, change)
    with pytest.raises(UserError, match=message):
        read_stateful(tmp_path)


@pytest.mark.parametrize("steady", [False, True])
def test_an_edited_graph_file_is_refused(tmp_path, steady):
    from convtasnet_hailo.export.stateful import stateful_file

    record = export_stateful(random_model(CAUSAL, seed=1), CAUSAL.stride, tmp_path)
    with open(tmp_path / (record.steady_file if steady else record.onnx_file), "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(UserError, match="sha256 differs"):
        stateful_file(tmp_path, record, steady)


def test_non_causal_models_gln_and_bad_hops_are_refused():
    with pytest.raises(UserError, match=r"not causal \(gLN, causal=False\).*Use a causal model"):
        cache_layout(TINY, TINY.stride)
    with pytest.raises(UserError, match=r"not causal \(gLN\)"):
        cache_layout(dataclasses.replace(CAUSAL, norm_type=NormType.GLN), TINY.stride)
    with pytest.raises(UserError, match="multiple of the encoder stride"):
        cache_layout(CAUSAL, CAUSAL.stride + 1)


def test_the_torch_module_is_the_graph_onnx_runs(tmp_path):
    """The module traced into the ONNX, run in torch for a few hops, gives onnxruntime's numbers;
    each ring's lag j is its output j hops before (a driver written from the record alone)."""
    import onnxruntime as ort
    import torch

    from convtasnet_hailo.export.stateful import initial_caches
    from convtasnet_hailo.export.stateful_graph import stateful_module

    hop = 3 * CGLN.stride
    model = random_model(CGLN, seed=5)
    record = export_stateful(model, hop, tmp_path)
    module = stateful_module(model, hop, record.caches, record.rings, record.delay)
    session = ort.InferenceSession(str(tmp_path / record.onnx_file), providers=["CPUExecutionProvider"])
    caches = initial_caches(record.caches)
    history = {r.name: [] for r in record.rings}
    rng = np.random.default_rng(0)
    for _ in range(6):
        block = rng.standard_normal(hop).astype(np.float32) * 0.3
        ports = [(r, j) for r in record.rings for j in r.lags]
        lags = [history[r.name][-j] if len(history[r.name]) >= j else np.zeros(r.shape, np.float32) for r, j in ports]
        with torch.no_grad():
            ours = module(torch.from_numpy(block), torch.tensor([hop]), *map(torch.from_numpy, [*caches, *lags]))
        theirs = session.run(
            None,
            {
                "samples": block,
                "valid_samples": np.array([hop], np.int64),
                **{c.name: v for c, v in zip(record.caches, caches, strict=True)},
                **{r.lag_name(j): v for (r, j), v in zip(ports, lags, strict=True)},
            },
        )
        names = ("sources", *(c.name for c in record.caches), *(r.name for r in record.rings))
        for name, a, b in zip(names, ours, theirs, strict=True):
            assert_within_contract(b, a.numpy(), name)
        caches = theirs[1 : 1 + len(record.caches)]
        for ring, frames in zip(record.rings, theirs[1 + len(record.caches) :], strict=True):
            history[ring.name].append(frames)
