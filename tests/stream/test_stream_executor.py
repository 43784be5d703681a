"""The streaming executor equals the offline causal model, hop by hop, on every backend path."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from convtasnet_hailo.backends.registry import load_backend
from convtasnet_hailo.errors import UserError
from convtasnet_hailo.model.config import MaskAct, NormType
from convtasnet_hailo.model.random_init import random_model
from convtasnet_hailo.plan import PlanOptions, PlanPath, build_plan
from convtasnet_hailo.runtime.separator import reference_separation as offline_reference
from convtasnet_hailo.runtime.stream_executor import StreamingExecutor, stream_whole
from tests.conftest import TINY, assert_within_contract, speech_like

CAUSAL = dataclasses.replace(TINY, causal=True, norm_type=NormType.CLN)


def _stream(config, hop, seconds=0.6, backend="torch_proxy", tmp_path=None, seed=3, **plan):
    model = random_model(config, seed=seed)
    full = build_plan(model, PlanOptions(**plan), PlanPath.FULL_CHAIN)
    options = {}
    if backend == "onnxruntime":
        from convtasnet_hailo.export.exporter import export_plan

        export_plan(full, hop // config.stride, tmp_path / "export", {}, report=lambda _: None)
        options = {"export_dir": tmp_path / "export"}
    wav = speech_like(seconds, config.sample_rate, seed)
    executor = StreamingExecutor(full, load_backend(backend, **options), hop)
    streamed = stream_whole(executor, wav)
    offline = offline_reference(model, np.concatenate([wav, np.zeros(len(streamed[0]) + hop, np.float32)]))
    return executor, streamed, offline, wav


@pytest.mark.parametrize(
    "config",
    [
        CAUSAL,
        dataclasses.replace(CAUSAL, norm_type=NormType.CGLN),
        dataclasses.replace(CAUSAL, n_src=1, mask_act=MaskAct.SIGMOID, skip_chan=0),
        dataclasses.replace(CAUSAL, n_src=3, mask_act=MaskAct.SOFTMAX, kernel_size=20, stride=6),
    ],
    ids=["cln", "cgln", "one_source_no_skip", "three_sources_L20_S6"],
)
@pytest.mark.parametrize("tiles_per_hop", [1, 2, 5])
def test_streamed_output_equals_the_offline_model(config, tiles_per_hop):
    hop = tiles_per_hop * config.stride
    executor, streamed, offline, wav = _stream(config, hop)
    emitted = streamed.shape[-1]
    assert emitted == executor.samples_in - executor.delay  # every frame the audio allows, nothing held back
    assert_within_contract(streamed, offline[:, :emitted], "streamed output")


def test_every_hop_emits_a_whole_hop_after_a_fixed_delay():
    executor, _, _, _ = _stream(CAUSAL, 4 * CAUSAL.stride, seconds=0.1)
    sizes = [executor.push(np.zeros(executor.hop, np.float32)).shape[-1] for _ in range(5)]
    assert sizes == [executor.hop] * 5
    assert executor.delay == CAUSAL.kernel_size - CAUSAL.stride


def test_memory_stays_bounded_while_streaming():
    executor, _, _, _ = _stream(CAUSAL, 2 * CAUSAL.stride, seconds=0.2)
    kept = {name: f.data.shape[-1] for name, f in executor.frames.items()}
    for _ in range(200):
        executor.push(np.zeros(executor.hop, np.float32))
    assert {name: f.data.shape[-1] for name, f in executor.frames.items()} == kept


def test_onnxruntime_streams_the_exported_stages(tmp_path):
    hop = 4 * CAUSAL.stride
    executor, streamed, offline, _ = _stream(CAUSAL, hop, backend="onnxruntime", tmp_path=tmp_path)
    assert_within_contract(streamed, offline[:, : streamed.shape[-1]], "streamed output (onnxruntime)")


def test_device_norms_plan_streams(tmp_path):
    executor, streamed, offline, _ = _stream(CAUSAL, 2 * CAUSAL.stride, device_norms=True)
    assert_within_contract(streamed, offline[:, : streamed.shape[-1]], "streamed output (device norms)")


def test_non_causal_models_and_bad_hops_are_refused():
    plan = build_plan(random_model(TINY, seed=0), PlanOptions(), PlanPath.FULL_CHAIN)
    with pytest.raises(UserError, match="not causal"):
        StreamingExecutor(plan, load_backend("torch_proxy"), TINY.stride)
    causal = build_plan(random_model(CAUSAL, seed=0), PlanOptions(), PlanPath.FULL_CHAIN)
    with pytest.raises(UserError, match="multiple of the encoder stride"):
        StreamingExecutor(causal, load_backend("torch_proxy"), CAUSAL.stride + 1)


@pytest.mark.slow
@pytest.mark.parametrize("hop_ms", [8, 16, 32])
@pytest.mark.parametrize("backend", ["torch_proxy", "onnxruntime"])
def test_full_size_causal_model_streams_exactly(hop_ms, backend, tmp_path):
    from convtasnet_hailo.model.source import RANDOM_PRESETS

    config = RANDOM_PRESETS["full-8k-causal"]
    hop = hop_ms * config.sample_rate // 1000
    executor, streamed, offline, _ = _stream(config, hop, seconds=0.4, backend=backend, tmp_path=tmp_path)
    assert streamed.shape[-1] == executor.samples_in - executor.delay
    assert_within_contract(streamed, offline[:, : streamed.shape[-1]], f"full-size streamed output, hop {hop_ms} ms")


@pytest.mark.parametrize("hop_ms", [8, 16, 32])
@pytest.mark.parametrize("backend", ["torch_proxy", "onnxruntime"])
def test_the_shipped_causal_demo_model_streams_exactly(hop_ms, backend, tmp_path):
    from convtasnet_hailo.assets import DEMO_CAUSAL_MODEL, DEMO_MIXTURE
    from convtasnet_hailo.audio.io import load_audio
    from convtasnet_hailo.model.checkpoint import load_model

    model = load_model(str(DEMO_CAUSAL_MODEL))[0]
    config = model.config
    assert config.causal and config.norm_type is NormType.CLN
    hop = hop_ms * config.sample_rate // 1000
    plan = build_plan(model, PlanOptions(), PlanPath.FULL_CHAIN)
    options = {}
    if backend == "onnxruntime":
        from convtasnet_hailo.export.exporter import export_plan

        export_plan(plan, hop // config.stride, tmp_path / "export", {}, report=lambda _: None)
        options = {"export_dir": tmp_path / "export"}
    wav = load_audio(DEMO_MIXTURE, config.sample_rate).wav[:8000]
    executor = StreamingExecutor(plan, load_backend(backend, **options), hop)
    streamed = stream_whole(executor, wav)
    offline = offline_reference(model, np.concatenate([wav, np.zeros(2 * hop, np.float32)]))
    assert streamed.shape[-1] == executor.samples_in - executor.delay
    assert_within_contract(streamed, offline[:, : streamed.shape[-1]], f"causal demo model, hop {hop_ms} ms")
