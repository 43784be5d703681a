"""``--gln-in-stages``: the plan's shape, the moment arithmetic, the masks and every refusal.
(The parity grid runs these plans against the reference on every edge length.)"""

from __future__ import annotations

import numpy as np
import pytest

from convtasnet_hailo.backends.hailo_quant import HailoQuantBackend
from convtasnet_hailo.errors import UserError
from convtasnet_hailo.model.config import ConvTasNetConfig, NormType
from convtasnet_hailo.model.random_init import random_model
from convtasnet_hailo.plan import PlanOptions, PlanPath, build_plan
from convtasnet_hailo.plan.host_steps import GlnFold, Normalize, gln_from_tile_moments
from convtasnet_hailo.plan.ops import TileMean, TileSumSquare
from convtasnet_hailo.plan.stages import Geometry, InputKind
from convtasnet_hailo.runtime.tensors import per_tile_batch, valid_mask
from tests.conftest import TINY


def test_plan_keeps_its_stage_count_and_moves_every_produced_gln_into_the_stages():
    model = random_model(TINY, seed=0)
    host, inside = build_plan(model), build_plan(model, PlanOptions(gln_in_stages=True))
    assert len(inside.stages) == len(host.stages)
    assert not any(isinstance(s, Normalize) for s in inside.steps)
    folds = [s for s in inside.steps if isinstance(s, GlnFold)]
    assert len(folds) == 2 * TINY.n_blocks * TINY.n_repeats + 1  # the bottleneck's gLN too
    for fold in folds:
        producer = next(s for s in inside.stages if fold.input in s.writes)
        assert {fold.tile_mean, fold.tile_sum_sq} <= set(producer.writes)
        assert all(p.per_tile for p in producer.outputs if p.name in (fold.tile_mean, fold.tile_sum_sq))
        readers = [s for s in inside.stages if fold.scale in s.reads]
        assert readers and all(fold.output not in s.reads for s in inside.stages)
        for reader in readers:
            kinds = {p.name: p.kind for p in reader.inputs}
            assert kinds[fold.scale] is kinds[fold.shift] is InputKind.PER_TILE
            halo = next(p for p in reader.inputs if p.name == fold.input).geometry.halo != (0, 0)
            assert (f"{fold.output}.valid" in kinds) == halo


def test_masker_path_keeps_the_gln_of_its_input_on_the_host():
    plan = build_plan(random_model(TINY, seed=0), PlanOptions(gln_in_stages=True), PlanPath.MASKER)
    assert [s.input for s in plan.steps if isinstance(s, Normalize)] == ["encoder"]


@pytest.mark.parametrize("tile_w, length", [(16, 16 * 5), (16, 16 * 4 + 3), (16, 1), (7, 40)])
def test_tile_moments_combine_to_the_utterance_statistics(tile_w, length):
    """Per-tile moments over whole tiles (padding columns included, as a stage computes them),
    the last tile's real frames: the exact float64 mean and variance over (C, length)."""
    rng = np.random.default_rng(length)
    groups, channels = 2, 6
    n_tiles = -(-length // tile_w)
    tiles = rng.normal(3.0, 2.0, (groups, n_tiles, channels, tile_w)).astype(np.float32)
    tiles[:, -1, :, length - (n_tiles - 1) * tile_w :] = 50.0  # what a stage makes past the utterance
    mean = tiles.mean(axis=-1, dtype=np.float64)
    sum_sq = np.square(tiles.astype(np.float64)).sum(axis=-1)
    got_mean, got_var = gln_from_tile_moments(
        mean.astype(np.float32), sum_sq.astype(np.float32), tile_w, tiles[:, -1, :, : length - (n_tiles - 1) * tile_w]
    )
    real = np.concatenate(list(tiles.transpose(1, 0, 2, 3)), axis=-1)[:, :, :length].astype(np.float64)
    np.testing.assert_allclose(got_mean.ravel(), real.mean(axis=(1, 2)), rtol=1e-6)
    np.testing.assert_allclose(got_var.ravel(), real.var(axis=(1, 2)), rtol=1e-6)


def test_valid_mask_marks_the_window_columns_inside_the_utterance():
    geometry = Geometry(span=5, pad_left=2, pad_right=2)
    mask = valid_mask(geometry, tile_w=4, n_tiles=2, length=6, groups=2)
    assert mask.shape == (4, 1, 1, 8)
    np.testing.assert_array_equal(mask[0, 0, 0], [0, 0, 1, 1, 1, 1, 1, 1])  # frames -2..5
    np.testing.assert_array_equal(mask[1, 0, 0], [1, 1, 1, 1, 0, 0, 0, 0])  # frames 2..9, length 6
    np.testing.assert_array_equal(mask[2:], mask[:2])


def test_per_tile_inputs_repeat_each_group_value_over_its_tiles():
    value = np.arange(6, dtype=np.float32).reshape(2, 3, 1)
    batch = per_tile_batch(value, groups=2, n_tiles=3)
    assert batch.shape == (6, 3, 1, 1) and batch.flags.writeable
    np.testing.assert_array_equal(batch[:3, :, 0, 0], np.repeat(value[:1, :, 0], 3, axis=0))
    np.testing.assert_array_equal(batch[3:, :, 0, 0], np.repeat(value[1:, :, 0], 3, axis=0))


@pytest.mark.parametrize(
    "op, reference, onnx_op",
    [
        (TileMean("x", "m"), lambda x: x.mean(-1, keepdims=True), "GlobalAveragePool"),
        (TileSumSquare("x", "q"), lambda x: np.square(x).sum(-1, keepdims=True), "ReduceSumSquare"),
    ],
)
def test_per_tile_reductions_agree_in_torch_and_onnx(op, reference, onnx_op):
    import onnxruntime as ort
    import torch
    from onnx import TensorProto, helper

    x = np.random.default_rng(0).normal(size=(3, 4, 1, 9)).astype(np.float32)
    np.testing.assert_allclose(op.torch_forward(None, torch.from_numpy(x)).numpy(), reference(x), rtol=1e-6)
    nodes, _ = op.onnx_nodes("n", {"x": 4})
    assert nodes[0].op_type == onnx_op
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info(op.output, TensorProto.FLOAT, [3, 4, 1, 1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    got = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, reference(x), rtol=1e-5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"norm_type": NormType.CLN}, "this model uses cLN: drop --gln-in-stages (cLN norms can run on the device"),
        ({"norm_type": NormType.CGLN, "causal": True}, "this model uses cgLN: drop --gln-in-stages"),
    ],
)
def test_models_without_gln_are_refused(kwargs, message):
    model = random_model(ConvTasNetConfig(**{**TINY.to_json(), **kwargs}), seed=0)
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        build_plan(model, PlanOptions(gln_in_stages=True))


@pytest.mark.parametrize("block_chan, device_norms", [(8, False), (None, True)])
def test_combinations_it_does_not_serve_are_refused(block_chan, device_norms):
    with pytest.raises(UserError, match="cannot be combined with --block-chan or --device-norms"):
        build_plan(
            random_model(TINY, seed=0),
            PlanOptions(block_chan=block_chan, device_norms=device_norms, gln_in_stages=True),
        )


def test_hailo_backends_refuse_the_plan():
    plan = build_plan(random_model(TINY, seed=0), PlanOptions(gln_in_stages=True))
    with pytest.raises(
        UserError, match="--backend hailo_quant: this plan was built with --gln-in-stages, for the float backends"
    ):
        HailoQuantBackend(ranges={}).prepare(plan, 16)


def test_a_float_only_export_says_what_it_is_for_and_is_not_checked_as_a_hailo_one(tmp_path, capsys):
    from convtasnet_hailo.cli import main

    flags = ["--gln-in-stages", "--halo-edges", "--skip-sums-in-stages"]
    assert main(["export", "--random-preset", "tiny", *flags, "--out", str(tmp_path / "x")]) == 0
    assert main(["check", str(tmp_path / "x")]) == 0
    out = capsys.readouterr().out
    assert out.count("for the float backends (onnxruntime, torch_proxy): not checked against the Hailo parser") == 2


def test_the_plan_table_says_a_float_plan_is_not_a_device_plan():
    from convtasnet_hailo.plan.packing import pack_stages
    from convtasnet_hailo.plan.report import format_table, summarize_plan

    for options, said in (({}, False), ({"halo_edges": True, "skip_sums_in_stages": True}, True)):
        plan = build_plan(random_model(TINY, seed=0), PlanOptions(**options))
        table = format_table(summarize_plan(plan, 16, pack_stages([s.name for s in plan.stages])))
        assert ("a plan for the float backends" in table) == said


def test_edges_from_neighbours_shift_by_one_tile_and_stay_zero_outside_the_utterance():
    from convtasnet_hailo.runtime.tensors import edges_from_neighbours

    tile_w, n = 4, 2
    frames = np.arange(1, 11, dtype=np.float32)  # length 10: tiles [1..4] [5..8] [9 10 pad pad]
    tiles = np.zeros((3, 1, 1, tile_w), np.float32)
    for t in range(3):
        chunk = frames[t * tile_w : (t + 1) * tile_w]
        tiles[t, 0, 0, : len(chunk)] = chunk
    tiles[2, 0, 0, 2:] = 99.0  # what a stage computed past the utterance
    tails, heads = tiles[..., -n:], tiles[..., :n]
    left = edges_from_neighbours(np.ascontiguousarray(tails), 1, True, 10, tile_w)
    right = edges_from_neighbours(np.ascontiguousarray(heads), 1, False, 10, tile_w)
    np.testing.assert_array_equal(left[:, 0, 0], [[0, 0], [3, 4], [7, 8]])
    np.testing.assert_array_equal(right[:, 0, 0], [[5, 6], [9, 10], [0, 0]])
    right_short = edges_from_neighbours(np.ascontiguousarray(heads), 1, False, 9, tile_w)  # frame 10 is past it
    np.testing.assert_array_equal(right_short[1, 0, 0], [9, 0])
