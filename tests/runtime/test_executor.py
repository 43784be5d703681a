import numpy as np
import pytest

from convtasnet_hailo.backends.registry import load_backend
from convtasnet_hailo.errors import UserError
from convtasnet_hailo.model.random_init import random_model
from convtasnet_hailo.plan import PlanOptions, PlanPath, build_plan
from convtasnet_hailo.plan.host_steps import OverlapAdd
from convtasnet_hailo.plan.stages import Geometry
from convtasnet_hailo.runtime.executor import StitchedExecutor
from convtasnet_hailo.runtime.tensors import check_tile_width, gather_tiles, scatter_tiles
from tests.conftest import TINY, assert_within_contract


def test_gather_gives_each_tile_its_halo_and_zero_padding():
    x = np.arange(1, 11, dtype=np.float32).reshape(1, 1, 10)  # frames 1..10
    tiles = gather_tiles(x, Geometry(span=5, pad_left=2, pad_right=2), tile_w=4, n_tiles=3)
    assert tiles.shape == (3, 1, 1, 8)
    np.testing.assert_array_equal(tiles[0, 0, 0], [0, 0, 1, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(tiles[1, 0, 0], [3, 4, 5, 6, 7, 8, 9, 10])
    np.testing.assert_array_equal(tiles[2, 0, 0], [7, 8, 9, 10, 0, 0, 0, 0])


def test_gather_strided_windows_for_the_encoder():
    x = np.arange(20, dtype=np.float32).reshape(1, 1, 20)
    tiles = gather_tiles(x, Geometry(stride=4, span=8), tile_w=2, n_tiles=2)
    np.testing.assert_array_equal(tiles[1, 0, 0], np.arange(8, 20))


def test_scatter_inverts_tiling_and_trims():
    x = np.random.default_rng(0).standard_normal((2, 3, 10)).astype(np.float32)
    tiles = gather_tiles(x, Geometry(), tile_w=4, n_tiles=3)
    np.testing.assert_array_equal(scatter_tiles(tiles, groups=2, length=10), x)


def test_overlap_add_equals_transposed_conv_with_uneven_hop():
    import torch

    frames = np.random.default_rng(1).standard_normal((2, 10, 7)).astype(np.float32)  # L=10, S=4
    out = OverlapAdd("f", "w", stride=4).apply({"f": frames})["w"]
    eye = torch.eye(10).reshape(10, 1, 10)
    expected = torch.nn.functional.conv_transpose1d(torch.from_numpy(frames), eye, stride=4).numpy()
    assert_within_contract(out, expected, "overlap-add")


@pytest.mark.parametrize("tile_w", [0, -3, 1 << 20, 2.5, True])
def test_tile_widths_the_plan_cannot_serve_are_rejected(tile_w):
    with pytest.raises(UserError, match="tile width"):
        check_tile_width(tile_w)


def test_input_shorter_than_one_encoder_window_is_a_user_error():
    executor = StitchedExecutor(build_plan(random_model(TINY), PlanOptions(fuse=False)), load_backend("torch_proxy"), 8)
    with pytest.raises(UserError, match="input too short"):
        executor.run({"wav": np.zeros((1, 1, TINY.kernel_size - 1), np.float32)})


def test_missing_plan_input_is_named():
    executor = StitchedExecutor(
        build_plan(random_model(TINY), PlanOptions(fuse=False), PlanPath.DECODER), load_backend("torch_proxy"), 8
    )
    with pytest.raises(UserError, match="mask_output"):
        executor.run({"encoder": np.zeros((1, 16, 5), np.float32)})


def test_stage_tiles_go_to_the_backend_as_one_batch():
    calls = []

    class CountingBackend:
        name = "counting"

        def __init__(self):
            self.inner = load_backend("torch_proxy")

        def prepare(self, plan, tile_w):
            pass

        def run_stage(self, stage, inputs):
            calls.append((stage.name, {k: v.shape[0] for k, v in inputs.items()}))
            return self.inner.run_stage(stage, inputs)

    plan = build_plan(random_model(TINY), PlanOptions(fuse=False), PlanPath.FULL_CHAIN)
    StitchedExecutor(plan, CountingBackend(), tile_w=10).run(
        {"wav": np.zeros((1, 1, (45 - 1) * TINY.stride + TINY.kernel_size), np.float32)}
    )
    assert len(calls) == len(plan.stages)  # one backend call per stage
    batches = dict(calls)
    assert batches["tcn0_in"] == {"bottleneck": 5}  # 45 frames / 10 = 5 tiles
    assert batches["source_projector"] == {"mask_output": 10, "encoder": 10}  # 2 sources x 5 tiles


def _tiled(x: np.ndarray, tile_w: int):
    """x (G, C, T) as the executor keeps a stage output: tiles with garbage past T zeroed."""
    from convtasnet_hailo.runtime.tensors import TiledTensor

    n_tiles = -(-x.shape[-1] // tile_w)
    tiles = gather_tiles(x, Geometry(), tile_w, n_tiles).copy()
    tiles.reshape(x.shape[0], n_tiles, x.shape[1], tile_w)[:, -1, :, x.shape[-1] % tile_w or tile_w :] = 7.0
    return TiledTensor.from_backend(tiles, x.shape[0], x.shape[-1])


def _affine(source, x: np.ndarray):
    from convtasnet_hailo.runtime.tensors import PerChannelAffine

    rng = np.random.default_rng(5)
    scale = rng.standard_normal((x.shape[0], x.shape[1], 1)).astype(np.float32)
    shift = rng.standard_normal((x.shape[0], x.shape[1], 1)).astype(np.float32)
    return PerChannelAffine(source, scale, shift), (x * scale + shift).astype(np.float32)


# Halos inside one neighbouring tile, wider than a tile, one-sided (causal), and none.
GEOMETRIES = [
    Geometry(),
    Geometry(span=3, pad_left=1, pad_right=1),
    Geometry(span=9, pad_left=4, pad_right=4),
    Geometry(span=21, pad_left=10, pad_right=10),
    Geometry(span=5, pad_left=4),
]


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=lambda g: f"span{g.span}_left{g.pad_left}")
@pytest.mark.parametrize("length", [4, 13, 16])
def test_tiles_cut_from_every_stored_form_equal_those_cut_from_the_whole_tensor(geometry, length):
    tile_w = 4
    x = np.random.default_rng(length).standard_normal((2, 3, length)).astype(np.float32)
    n_tiles = -(-length // tile_w)
    expected = gather_tiles(x, geometry, tile_w, n_tiles)
    tiled = _tiled(x, tile_w)
    np.testing.assert_array_equal(tiled.materialize(), x)
    np.testing.assert_array_equal(gather_tiles(tiled, geometry, tile_w, n_tiles), expected)
    for source in (x, tiled):
        affine, applied = _affine(source, x)
        np.testing.assert_allclose(affine.materialize(), applied, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(
            gather_tiles(affine, geometry, tile_w, n_tiles),
            gather_tiles(applied, geometry, tile_w, n_tiles)[:, :, :, :],
            rtol=1e-6,
            atol=1e-6,
        )


def test_a_pointwise_stage_gets_a_stage_output_back_without_a_copy():
    x = np.random.default_rng(2).standard_normal((1, 3, 10)).astype(np.float32)
    tiled = _tiled(x, 4)
    assert gather_tiles(tiled, Geometry(), 4, 3) is tiled.tiles


def test_statistics_over_tiles_equal_those_over_the_whole_tensor():
    import torch

    from convtasnet_hailo.runtime.host_forms import _tiled_statistics

    x = (np.random.default_rng(3).standard_normal((2, 16, 1003)) * 3 + 1.5).astype(np.float32)
    mean, var = _tiled_statistics(_tiled(x, 64))
    xt = torch.from_numpy(x)
    np.testing.assert_allclose(mean, xt.mean(dim=(1, 2), keepdim=True).numpy(), rtol=1e-6)
    np.testing.assert_allclose(var, torch.var(xt, dim=(1, 2), keepdim=True, unbiased=False).numpy(), rtol=1e-6)


def test_observer_and_caller_see_whole_tensors_equal_with_and_without_observer():
    plan = build_plan(random_model(TINY), path=PlanPath.FULL_CHAIN)
    executor = StitchedExecutor(plan, load_backend("torch_proxy"), 8)
    wav = np.random.default_rng(4).standard_normal((1, 1, 333)).astype(np.float32)
    seen = {}
    watched = executor.run({"wav": wav}, observer=lambda name, t: seen.setdefault(name, t))
    plain = executor.run({"wav": wav})
    assert all(type(t) is np.ndarray for t in seen.values()) and all(type(t) is np.ndarray for t in plain.values())
    for name in plain:
        np.testing.assert_array_equal(watched[name], plain[name])


def test_channel_blocks_split_and_assembled_on_tiles_equal_the_whole_tensor_steps():
    """SplitChannels on a tiled tensor (or its pending gLN affine) gives the same block tiles as on
    the whole tensor; AssembleBlocks on tiles adds in float64 in the same order: bit-identical."""
    from convtasnet_hailo.plan.host_steps import AssembleBlocks, SplitChannels
    from convtasnet_hailo.runtime.host_forms import run_tiled

    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 10, 13)).astype(np.float32)
    split = SplitChannels("x", ("x0", "x1", "x2"), (4, 4, 2))
    for source in (_tiled(x, 4), _affine(_tiled(x, 4), x)[0]):
        whole_parts = split.apply({"x": source.materialize()})
        tiled_parts = run_tiled(split, {"x": source})
        for name, part in whole_parts.items():
            np.testing.assert_array_equal(
                gather_tiles(tiled_parts[name], Geometry(), 4, 4), gather_tiles(part, Geometry(), 4, 4)
            )
    partials = {
        f"p{k}{j}": rng.standard_normal((2, 3 + k, 13)).astype(np.float32) * 10**j for k in range(2) for j in range(3)
    }
    assemble = AssembleBlocks(tuple(tuple(f"p{k}{j}" for j in range(3)) for k in range(2)), "y")
    expected = assemble.apply(partials)["y"]
    tiled = run_tiled(assemble, {name: _tiled(p, 4) for name, p in partials.items()})
    assert tiled is not None and not isinstance(tiled["y"], np.ndarray)  # stays tiled
    np.testing.assert_array_equal(tiled["y"].materialize(), expected)
