"""The parity grid: every stage of the stitched path against the reference, over model
configurations x paths x tile widths x edge lengths x backends x channel blocks. Tiny models
run by default; the full-size cases are marked slow (they still run in CI)."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from convtasnet_hailo.backends.registry import load_backend
from convtasnet_hailo.model.config import (
    FULL_SIZE_8K,
    ConvTasNetConfig,
    EncoderActivation,
    MaskAct,
    NormType,
)
from convtasnet_hailo.model.random_init import random_model
from convtasnet_hailo.parity.compare import diff_tensor
from convtasnet_hailo.parity.runner import edge_frame_counts, probe_waveform, samples_for_frames
from convtasnet_hailo.plan import PlanOptions, PlanPath, build_plan, is_contract_tensor
from convtasnet_hailo.plan.reference_trace import trace_reference
from convtasnet_hailo.runtime.executor import StitchedExecutor
from tests.conftest import TINY

_TINY = {k: getattr(TINY, k) for k in ("n_filters", "bn_chan", "hid_chan", "skip_chan", "n_blocks", "n_repeats")}

CONFIGS = {
    "2src_8k_gLN_relu": ConvTasNetConfig(**_TINY),
    "1src_16k_gLN_sigmoid": ConvTasNetConfig(
        **_TINY, n_src=1, kernel_size=32, stride=16, sample_rate=16000, mask_act=MaskAct.SIGMOID
    ),
    "3src_8k_cLN_softmax": ConvTasNetConfig(**_TINY, n_src=3, norm_type=NormType.CLN, mask_act=MaskAct.SOFTMAX),
    "2src_causal_cgLN_sigmoid": ConvTasNetConfig(
        **_TINY, causal=True, norm_type=NormType.CGLN, mask_act=MaskAct.SIGMOID
    ),
    "2src_causal_cLN_linear_encrelu": ConvTasNetConfig(
        **_TINY, causal=True, norm_type=NormType.CLN, mask_act=MaskAct.LINEAR, encoder_activation=EncoderActivation.RELU
    ),
    "2src_noskip_k5_L20_S6": ConvTasNetConfig(
        **{**_TINY, "skip_chan": 0}, conv_kernel_size=5, kernel_size=20, stride=6
    ),
}
TILE_WIDTHS = (1, 5, 16, 64)


@functools.cache
def _model(name: str):
    return random_model(CONFIGS[name], seed=7)


@functools.lru_cache(maxsize=64)
def _trace(name: str, wav_t: int):
    model = _model(name)
    return trace_reference(model, probe_waveform(wav_t, model.config.sample_rate, seed=wav_t))


def _lengths(config: ConvTasNetConfig, tile_w: int) -> list[int]:
    """Edge lengths in samples: frame counts around the tile width, plus trailing samples that
    make no frame (the decoder must pad them back)."""
    lengths = [samples_for_frames(config, f) for f in edge_frame_counts(tile_w)]
    return lengths + [
        samples_for_frames(config, tile_w) + 1,
        samples_for_frames(config, 2 * tile_w) + config.stride - 1,
    ]


def make_backend(name: str, plan, tile_w: int, export_root):
    """A backend for ``plan``; onnxruntime gets a fresh export of the plan at ``tile_w``."""
    if name == "torch_proxy":
        return load_backend(name)
    from convtasnet_hailo.export.exporter import export_plan

    directory = export_root / f"{plan.path.value}_b{plan.options.block_chan}_t{tile_w}"
    export_plan(plan, tile_w, directory, {"source": "test"}, report=lambda _: None)
    return load_backend(name, export_dir=directory)


def parity_plan(
    model,
    path: PlanPath,
    block_chan: int | None = None,
    fuse: bool = True,
    device_norms: bool = False,
    gln_in_stages: bool = False,
    halo_edges: bool = False,
    skip_sums_in_stages: bool = False,
):
    """The plan parity runs: fused stages expose their internal tensors, so every name is judged."""
    return build_plan(
        model,
        PlanOptions(
            block_chan=block_chan,
            fuse=fuse,
            device_norms=device_norms,
            gln_in_stages=gln_in_stages,
            halo_edges=halo_edges,
            skip_sums_in_stages=skip_sums_in_stages,
        ),
        path,
        expose_internal=fuse,
    )


def assert_stitched_equals_reference(
    model,
    path: PlanPath,
    tile_w: int,
    trace: dict,
    backend: str = "torch_proxy",
    block_chan: int | None = None,
    export_root=None,
    diagnostics_too: bool = True,
    executor: StitchedExecutor | None = None,
    fuse: bool = True,
) -> int:
    """Runs the stitched path and fails on any contract tensor (and, with ``diagnostics_too``,
    any host-made diagnostic tensor) outside the tolerance. Pass ``executor`` to reuse one."""
    if executor is None:
        plan = parity_plan(model, path, block_chan, fuse)
        executor = StitchedExecutor(plan, make_backend(backend, plan, tile_w, export_root), tile_w)
    failures, compared = [], []

    def observe(name, tensor):
        if name in trace:
            d = diff_tensor(name, tensor, trace[name])
            compared.append(name)
            if not d.all_close and (diagnostics_too or is_contract_tensor(name)):
                failures.append(f"{name}: max_abs {d.max_abs:.3g} (peak {d.peak:.3g})")

    executor.run({n: trace[n].astype(np.float32) for n in path.inputs}, observe)
    wav_t = trace["wav"].shape[-1]
    plan = executor.plan
    assert not failures, (
        f"{executor.backend.name} {path.value} tile_w={tile_w} block_chan={plan.options.block_chan} "
        f"wav_t={wav_t}: " + "; ".join(failures)
    )
    return len(compared)


#: (backend, block_chan, tile_w, plan): "fused" is the default plan (internal tensors exposed for
#: parity), "unfused" the --no-fuse one.
GRID = [("torch_proxy", None, tile_w, "fused") for tile_w in TILE_WIDTHS] + [
    ("torch_proxy", None, 5, "unfused"),
    ("torch_proxy", 5, 16, "fused"),
    ("torch_proxy", 5, 16, "unfused"),
    ("onnxruntime", None, 5, "fused"),
    ("onnxruntime", None, 16, "fused"),
    ("onnxruntime", None, 16, "unfused"),
    ("onnxruntime", 5, 16, "fused"),
]


@pytest.mark.parametrize("backend, block_chan, tile_w, layout", GRID, ids=lambda v: str(v))
@pytest.mark.parametrize("path", list(PlanPath), ids=lambda p: p.value)
@pytest.mark.parametrize("config_name", list(CONFIGS))
def test_tiny_models_every_stage_every_length(config_name, path, backend, block_chan, tile_w, layout, tmp_path):
    model = _model(config_name)
    plan = parity_plan(model, path, block_chan, fuse=layout == "fused")
    executor = StitchedExecutor(plan, make_backend(backend, plan, tile_w, tmp_path), tile_w)
    for wav_t in _lengths(model.config, tile_w):
        compared = assert_stitched_equals_reference(model, path, tile_w, _trace(config_name, wav_t), executor=executor)
        assert compared >= (3 if path is PlanPath.DECODER else 10)


CLN_CONFIGS = [name for name, config in CONFIGS.items() if config.norm_type is NormType.CLN]
#: (backend, block_chan, tile_w) for plans whose cLN norms run on the device (``--device-norms``).
DEVICE_NORM_GRID = [
    ("torch_proxy", None, 1),
    ("torch_proxy", None, 16),
    ("torch_proxy", 5, 16),
    ("onnxruntime", None, 5),
    ("onnxruntime", None, 16),
]


@pytest.mark.parametrize("backend, block_chan, tile_w", DEVICE_NORM_GRID, ids=lambda v: str(v))
@pytest.mark.parametrize("path", list(PlanPath), ids=lambda p: p.value)
@pytest.mark.parametrize("config_name", CLN_CONFIGS)
def test_cln_norms_on_the_device_every_stage_every_length(config_name, path, backend, block_chan, tile_w, tmp_path):
    model = _model(config_name)
    plan = parity_plan(model, path, block_chan, device_norms=True)
    assert not any(type(s).__name__ == "Normalize" for s in plan.steps)
    executor = StitchedExecutor(plan, make_backend(backend, plan, tile_w, tmp_path), tile_w)
    for wav_t in _lengths(model.config, tile_w):
        assert assert_stitched_equals_reference(model, path, tile_w, _trace(config_name, wav_t), executor=executor) >= (
            3 if path is PlanPath.DECODER else 10
        )


def test_device_norms_leave_one_stage_per_tcn_block():
    model = _model("2src_causal_cLN_linear_encrelu")
    host, device = build_plan(model), build_plan(model, PlanOptions(device_norms=True))
    blocks = model.config.n_blocks * model.config.n_repeats
    assert len(host.stages) == 2 * blocks + 3 and len(device.stages) == blocks + 2  # encoder joins block 0


GLN_CONFIGS = [name for name, config in CONFIGS.items() if config.norm_type is NormType.GLN]
#: (backend, tile_w, plan, the other float-only options too) for plans that take gLN inside their stages
#: (``--gln-in-stages``; with ``--halo-edges --skip-sums-in-stages`` where the last field is True).
GLN_IN_STAGES_GRID = [
    ("torch_proxy", 1, "fused", False),
    ("torch_proxy", 5, "fused", True),
    ("torch_proxy", 16, "unfused", False),
    ("torch_proxy", 64, "fused", True),
    ("onnxruntime", 5, "fused", False),
    ("onnxruntime", 16, "fused", True),
    ("onnxruntime", 16, "unfused", True),
]


@pytest.mark.parametrize("backend, tile_w, layout, halo_edges", GLN_IN_STAGES_GRID, ids=lambda v: str(v))
@pytest.mark.parametrize("path", [PlanPath.MASKER, PlanPath.FULL_CHAIN], ids=lambda p: p.value)
@pytest.mark.parametrize("config_name", GLN_CONFIGS)
def test_gln_in_stages_every_stage_every_length(config_name, path, backend, tile_w, layout, halo_edges, tmp_path):
    model = _model(config_name)
    plan = parity_plan(
        model, path, fuse=layout == "fused", gln_in_stages=True, halo_edges=halo_edges, skip_sums_in_stages=halo_edges
    )
    folds = [s for s in plan.steps if type(s).__name__ == "GlnFold"]
    assert len(folds) == 2 * model.config.n_blocks * model.config.n_repeats + (path is PlanPath.FULL_CHAIN)
    executor = StitchedExecutor(plan, make_backend(backend, plan, tile_w, tmp_path), tile_w)
    for wav_t in _lengths(model.config, tile_w):
        assert assert_stitched_equals_reference(model, path, tile_w, _trace(config_name, wav_t), executor=executor) >= 8


#: (backend, tile_w, plan) for plans whose halo stages read tile and edges and whose stages add the skip
#: sums (``--halo-edges --skip-sums-in-stages``), every model.
HALO_EDGES_GRID = [
    ("torch_proxy", 1, "fused"),
    ("torch_proxy", 5, "unfused"),
    ("torch_proxy", 64, "fused"),
    ("onnxruntime", 16, "fused"),
]


@pytest.mark.parametrize("backend, tile_w, layout", HALO_EDGES_GRID, ids=lambda v: str(v))
@pytest.mark.parametrize("path", [PlanPath.MASKER, PlanPath.FULL_CHAIN], ids=lambda p: p.value)
@pytest.mark.parametrize("config_name", list(CONFIGS))
def test_halo_edges_and_skip_sums_every_stage_every_length(config_name, path, backend, tile_w, layout, tmp_path):
    model = _model(config_name)
    plan = parity_plan(model, path, fuse=layout == "fused", halo_edges=True, skip_sums_in_stages=True)
    assert any(p.kind.value.endswith("_edge") for s in plan.stages for p in s.inputs)
    assert not any(type(s).__name__ == "AddTensors" for s in plan.steps)
    executor = StitchedExecutor(plan, make_backend(backend, plan, tile_w, tmp_path), tile_w)
    for wav_t in _lengths(model.config, tile_w):
        assert assert_stitched_equals_reference(model, path, tile_w, _trace(config_name, wav_t), executor=executor) >= 8


@pytest.mark.slow
def test_full_size_8k_ten_seconds_at_three_tile_widths():
    model = random_model(FULL_SIZE_8K, seed=0)
    trace = trace_reference(model, probe_waveform(80_000, 8000, seed=0))
    for tile_w in (64, 128, 256):
        assert assert_stitched_equals_reference(model, PlanPath.FULL_CHAIN, tile_w, trace) > 150


@pytest.mark.slow
def test_full_size_8k_float_plan_ten_seconds_on_onnxruntime(tmp_path):
    """The float plan (gLN, halo edges and skip sums in the stages) at full size over 10 s: its
    float64 sums of per-tile moments against the reference's float32 reduction, at scale."""
    model = random_model(FULL_SIZE_8K, seed=0)
    trace = trace_reference(model, probe_waveform(80_000, 8000, seed=0))
    plan = parity_plan(model, PlanPath.FULL_CHAIN, gln_in_stages=True, halo_edges=True, skip_sums_in_stages=True)
    executor = StitchedExecutor(plan, make_backend("onnxruntime", plan, 256, tmp_path), 256)
    assert assert_stitched_equals_reference(model, PlanPath.FULL_CHAIN, 256, trace, executor=executor) > 100


@pytest.mark.slow
@pytest.mark.parametrize("path", [PlanPath.DECODER, PlanPath.MASKER], ids=lambda p: p.value)
def test_full_size_8k_paths_at_edge_lengths(path):
    model = random_model(FULL_SIZE_8K, seed=1)
    for frames in (1, 127, 129):
        trace = trace_reference(model, probe_waveform(samples_for_frames(model.config, frames), 8000, seed=frames))
        assert_stitched_equals_reference(model, path, 128, trace)


@pytest.mark.slow
def test_full_size_16k_single_source_checkpoint(tmp_path):
    """Done-when of issue 3: an Asteroid-format 16 kHz single-source checkpoint (L 32, stride 16)
    loads and its stitched output is within 1e-5 of its reference relative to the output peak."""
    import torch

    from convtasnet_hailo.model.checkpoint import load_model
    from tests.model.test_checkpoint import asteroid_package

    config = ConvTasNetConfig(n_src=1, kernel_size=32, stride=16, sample_rate=16000)
    torch.save(asteroid_package(random_model(config, seed=5)), tmp_path / "enh16k.bin")
    model, _ = load_model(str(tmp_path / "enh16k.bin"))
    trace = trace_reference(model, probe_waveform(3 * 16000 + 5, 16000, seed=2))
    outputs = StitchedExecutor(build_plan(model), load_backend("torch_proxy"), 128).run({"wav": trace["wav"]})
    reference = trace["final_output"]
    assert np.abs(outputs["final_output"] - reference).max() <= 1e-5 * np.abs(reference).max()
    assert_stitched_equals_reference(model, PlanPath.FULL_CHAIN, 128, trace)


@pytest.mark.slow
@pytest.mark.parametrize("block_chan", [None, 64])
def test_full_size_onnxruntime_tile256(block_chan, tmp_path):
    """onnxruntime's kernels round differently from torch's; under the normwise contract the
    float32 reference (what users run) judges every tensor, host-made diagnostics included."""
    model = random_model(FULL_SIZE_8K, seed=0)
    trace = trace_reference(model, probe_waveform(2 * 8000, 8000, seed=3))
    assert (
        assert_stitched_equals_reference(model, PlanPath.FULL_CHAIN, 256, trace, "onnxruntime", block_chan, tmp_path)
        > 150
    )


@pytest.mark.parametrize("config_name", list(CONFIGS))
@pytest.mark.parametrize("path", list(PlanPath), ids=lambda p: p.value)
def test_fused_plan_reports_every_name_the_unfused_plan_does(config_name, path):
    """Fusion hides tensors inside stages; the parity plan exposes them, so every runbook name and
    diagnostic is still judged, and the runtime plan has fewer stage invocations."""
    model = _model(config_name)
    unfused, fused = build_plan(model, PlanOptions(fuse=False), path), parity_plan(model, path)
    assert set(fused.produced_names()) >= {n for n in unfused.produced_names() if n in _trace(config_name, 600)}
    assert len(build_plan(model, path=path).stages) < len(unfused.stages)
