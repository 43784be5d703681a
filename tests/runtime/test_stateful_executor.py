"""The stateful graph streamed on onnxruntime equals the offline causal model on every sample,
and the per-hop plan's stream: cLN and cgLN, one to three sources, each mask activation, hops
of one, two and several strides, a partial last hop and the flush."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from convtasnet_hailo.backends.registry import load_backend
from convtasnet_hailo.errors import UserError
from convtasnet_hailo.export.stateful import RECORD_NAME, export_stateful
from convtasnet_hailo.model.config import EncoderActivation, MaskAct, NormType
from convtasnet_hailo.model.random_init import random_model
from convtasnet_hailo.plan import PlanOptions, PlanPath, build_plan
from convtasnet_hailo.runtime.separator import reference_separation
from convtasnet_hailo.runtime.stateful_executor import StatefulExecutor
from convtasnet_hailo.runtime.stream_executor import StreamingExecutor, stream_file
from tests.conftest import TINY, assert_within_contract, speech_like

CAUSAL = dataclasses.replace(TINY, causal=True, norm_type=NormType.CLN)
CONFIGS = {
    "cln_relu": CAUSAL,
    "cgln_relu": dataclasses.replace(CAUSAL, norm_type=NormType.CGLN),
    "one_source_sigmoid_no_skip": dataclasses.replace(CAUSAL, n_src=1, mask_act=MaskAct.SIGMOID, skip_chan=0),
    "three_sources_softmax_cgln_L20_S6": dataclasses.replace(
        CAUSAL, n_src=3, mask_act=MaskAct.SOFTMAX, norm_type=NormType.CGLN, kernel_size=20, stride=6
    ),
    "three_sources_sigmoid": dataclasses.replace(CAUSAL, n_src=3, mask_act=MaskAct.SIGMOID),
    "linear_mask_relu_encoder_L24": dataclasses.replace(
        CAUSAL, mask_act=MaskAct.LINEAR, kernel_size=24, encoder_activation=EncoderActivation.RELU
    ),
}


def _executor(model, hop, tmp_path) -> StatefulExecutor:
    export_stateful(model, hop, tmp_path / f"stateful{hop}")
    return StatefulExecutor.from_folder(tmp_path / f"stateful{hop}")


def _per_hop(model, hop) -> StreamingExecutor:
    return StreamingExecutor(build_plan(model, PlanOptions(), PlanPath.FULL_CHAIN), load_backend("torch_proxy"), hop)


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("strides", [1, 2, 5])
def test_every_sample_equals_the_offline_model_and_the_per_hop_plan(name, strides, tmp_path):
    config = CONFIGS[name]
    model, hop = random_model(config, seed=4), strides * config.stride
    wav = speech_like(0.15, config.sample_rate, 4)[:1199]  # not whole hops: a partial last hop
    streamed = stream_file(_executor(model, hop, tmp_path), wav)
    offline = reference_separation(model, wav)
    assert streamed.shape == offline.shape == (config.n_src, len(wav))
    assert_within_contract(streamed, offline, f"stateful stream, {name}, hop {hop}")
    if strides > 1:  # the per-hop plan at one stride per hop is slow on torch_proxy; 2 and 5 cover it
        assert_within_contract(streamed, stream_file(_per_hop(model, hop), wav), f"stateful vs per-hop, {name}")


@pytest.mark.parametrize("length", [1600, 1601, 1615])
def test_the_flush_ends_the_stream_exactly(length, tmp_path):
    """Whole hops only (the flush is the overlap-add tail), one sample over, and a hop less one."""
    config = CONFIGS["cgln_relu"]
    model = random_model(config, seed=2)
    executor = _executor(model, 2 * config.stride, tmp_path)
    wav = speech_like(0.25, config.sample_rate, 2)[:length]
    streamed = stream_file(executor, wav)
    assert executor.samples_out == length and executor.calls == -(-length // executor.hop)
    # the steady graph ran every whole hop after the first (the masked graph the first and a partial last)
    assert executor.steady_calls == length // executor.hop - 1
    assert_within_contract(streamed, reference_separation(model, wav), f"{length} samples")


def test_hops_emit_whole_hops_after_the_per_hop_plans_delay(tmp_path):
    model = random_model(CAUSAL, seed=1)
    hop = 4 * CAUSAL.stride
    executor = _executor(model, hop, tmp_path)
    assert executor.delay == _per_hop(model, hop).delay == CAUSAL.kernel_size - CAUSAL.stride
    sizes = [executor.push(np.zeros(hop, np.float32)).shape[-1] for _ in range(4)]
    assert sizes == [hop - executor.delay] + [hop] * 3
    assert executor.push(np.zeros(3 * hop, np.float32)).shape == (CAUSAL.n_src, 3 * hop)


def test_delay_longer_than_a_hop_emits_nothing_at_first(tmp_path):
    config = dataclasses.replace(CAUSAL, kernel_size=3 * CAUSAL.stride)  # delay of two strides
    model = random_model(config, seed=1)
    executor = _executor(model, config.stride, tmp_path)
    sizes = [executor.push(np.zeros(config.stride, np.float32)).shape[-1] for _ in range(4)]
    assert sizes == [0, 0, config.stride, config.stride]
    wav = speech_like(0.1, 8000, 1)[:403]
    assert_within_contract(
        stream_file(_executor(model, config.stride, tmp_path / "b"), wav),
        reference_separation(model, wav),
        "delay of two hops",
    )


def test_wrong_sizes_are_refused(tmp_path):
    executor = _executor(random_model(CAUSAL, seed=1), CAUSAL.stride * 2, tmp_path)
    with pytest.raises(UserError, match="a multiple of the hop"):
        executor.push(np.zeros(CAUSAL.stride, np.float32))
    with pytest.raises(UserError, match="fewer than a hop"):
        executor.finish(np.zeros(executor.hop, np.float32))


def test_one_single_threaded_session(tmp_path):
    executor = _executor(random_model(CAUSAL, seed=1), CAUSAL.stride, tmp_path)
    options = executor.session.get_session_options()
    assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1


def test_a_record_that_does_not_match_its_graph_is_refused(tmp_path):
    """A record edited consistently (it still reads) but no longer the graph's: a cache's shape."""
    import json

    model = random_model(CAUSAL, seed=1)
    folder = tmp_path / "stateful"
    export_stateful(model, CAUSAL.stride, folder)
    data = json.loads((folder / RECORD_NAME).read_text())
    data["caches"][2]["shape"] = [7, CAUSAL.hid_chan]
    (folder / RECORD_NAME).write_text(json.dumps(data))
    with pytest.raises(UserError, match="does not match its record"):
        StatefulExecutor.from_folder(folder)


@pytest.mark.parametrize("hop_ms", [8])
def test_the_shipped_causal_demo_model_streams_exactly(hop_ms, tmp_path):
    """The demo model on one second of the demo mixture; the per-hop plan on onnxruntime beside it."""
    from convtasnet_hailo.assets import DEMO_CAUSAL_MODEL, DEMO_MIXTURE
    from convtasnet_hailo.audio.io import load_audio
    from convtasnet_hailo.export.exporter import export_plan
    from convtasnet_hailo.model.checkpoint import load_model

    model = load_model(str(DEMO_CAUSAL_MODEL))[0]
    config = model.config
    hop = hop_ms * config.sample_rate // 1000
    wav = load_audio(DEMO_MIXTURE, config.sample_rate).wav[: 8000 + hop // 2]
    streamed = stream_file(_executor(model, hop, tmp_path), wav)
    offline = reference_separation(model, wav)
    assert streamed.shape == offline.shape
    assert_within_contract(streamed, offline, f"causal demo model, stateful, hop {hop_ms} ms")
    plan = build_plan(model, PlanOptions(), PlanPath.FULL_CHAIN)
    export_plan(plan, hop // config.stride, tmp_path / "per_hop", {}, report=lambda _: None)
    per_hop = StreamingExecutor(plan, load_backend("onnxruntime", export_dir=tmp_path / "per_hop"), hop)
    assert_within_contract(streamed, stream_file(per_hop, wav), f"causal demo model, stateful vs per-hop, {hop_ms} ms")


def test_without_a_steady_graph_every_hop_runs_the_graph(tmp_path):
    """A record from before the steady graph: the masked graph alone, the same samples."""
    import json

    config = CONFIGS["cln_relu"]
    model, hop = random_model(config, seed=3), 2 * config.stride
    wav = speech_like(0.15, config.sample_rate, 1)[:1000]
    both = stream_file(_executor(model, hop, tmp_path), wav)
    record = tmp_path / f"stateful{hop}" / RECORD_NAME
    data = json.loads(record.read_text())
    del data["steady_file"], data["steady_sha256"]
    record.write_text(json.dumps(data))
    alone = StatefulExecutor.from_folder(tmp_path / f"stateful{hop}")
    assert_within_contract(stream_file(alone, wav), both, "graph alone vs graph and steady graph")
    assert alone.steady_calls == 0 and alone.calls == -(-len(wav) // hop)


def test_an_asteroid_written_16k_checkpoint_streams_exactly_at_8_ms(tmp_path):
    """The Done-when's second model: a causal 16 kHz checkpoint with L=32, S=16 as Asteroid's
    ``serialize()`` writes it, loaded from the file and streamed at 8 ms hops (128 samples)."""
    import torch

    from convtasnet_hailo.model.checkpoint import load_model
    from tests.model.test_checkpoint import asteroid_package

    config = dataclasses.replace(
        CAUSAL, n_src=1, kernel_size=32, stride=16, sample_rate=16000, mask_act=MaskAct.SIGMOID
    )
    torch.save(asteroid_package(random_model(config, seed=8)), tmp_path / "pytorch_model.bin")
    model, _ = load_model(str(tmp_path / "pytorch_model.bin"))
    assert model.config == config
    wav = speech_like(0.2, config.sample_rate, 1)[:3001]
    executor = _executor(model, 128, tmp_path)
    streamed = stream_file(executor, wav)
    assert streamed.shape == (1, len(wav)) and executor.steady_calls == len(wav) // 128 - 1
    assert_within_contract(streamed, reference_separation(model, wav), "16 kHz L=32 S=16 at 8 ms")
