"""Receptive-field windows (``--rf-windows``): every sample of the streamed output equals the
offline causal model, at every hop, on torch_proxy and onnxruntime, in one or a few device
calls per hop."""

import dataclasses

import numpy as np
import pytest

from convtasnet_hailo.backends.registry import load_backend
from convtasnet_hailo.errors import UserError
from convtasnet_hailo.model.config import MaskAct, NormType
from convtasnet_hailo.model.random_init import random_model
from convtasnet_hailo.model.source import RANDOM_PRESETS
from convtasnet_hailo.plan import PlanOptions, PlanPath, build_plan, build_window_plan
from convtasnet_hailo.plan.passes.rf_windows import VALID
from convtasnet_hailo.runtime.separator import reference_separation
from convtasnet_hailo.runtime.stream_executor import StreamingExecutor, stream_file
from convtasnet_hailo.runtime.window_executor import WindowStreamingExecutor
from tests.conftest import assert_within_contract, speech_like

TINY = RANDOM_PRESETS["tiny"]
CLN = dataclasses.replace(TINY, causal=True, norm_type=NormType.CLN)
THREE = dataclasses.replace(CLN, n_src=3, mask_act=MaskAct.SIGMOID)
ODD_L = dataclasses.replace(CLN, kernel_size=12, mask_act=MaskAct.LINEAR)  # L not a multiple of S


def _streamed(model, hop_frames, max_width, backend="torch_proxy", tmp_path=None, seconds=0.7):
    plan = build_window_plan(model, hop_frames, max_width)
    opened = (
        load_backend(backend, scratch=tmp_path, model_info={"model_source": "random"})
        if backend == "onnxruntime"
        else load_backend(backend)
    )
    wav = speech_like(seconds, model.config.sample_rate, 3)[: int(seconds * 8000) - 5]  # not whole hops
    executor = WindowStreamingExecutor(plan, opened, hop_frames * model.config.stride)
    return plan, executor, stream_file(executor, wav), reference_separation(model, wav)


@pytest.mark.parametrize("config", [CLN, THREE, ODD_L], ids=["cln", "three_sources_sigmoid", "odd_kernel_linear"])
@pytest.mark.parametrize("hop_ms", [4, 8, 16, 32])
def test_every_sample_equals_the_offline_model(config, hop_ms):
    model = random_model(config, seed=1)
    hop_frames = hop_ms * config.sample_rate // 1000 // config.stride
    plan, executor, streamed, offline = _streamed(model, hop_frames, 512)
    assert streamed.shape == offline.shape  # every sample, the last L - S included
    assert_within_contract(streamed, offline, f"rf windows, hop {hop_ms} ms")
    assert len(plan.stages) == 1 and executor.stage_calls <= -(-offline.shape[-1] // executor.hop) + 1


@pytest.mark.parametrize("max_width", [12, 20])
def test_a_narrow_width_splits_into_the_fewest_spans_with_histories(max_width, tmp_path):
    model = random_model(CLN, seed=2)
    plan, executor, streamed, offline = _streamed(model, 2, max_width, "onnxruntime", tmp_path)
    assert_within_contract(streamed, offline, f"spans of {max_width} frames")
    spans = plan.stages
    assert len(spans) > 1 and plan.rf_window == max_width
    # each boundary sends whole TCN blocks' results: the residual stream and the skip sum
    assert all(
        {p.name for p in s.inputs} - {"wav", VALID} <= {"encoder"} | {o.name for t in spans for o in t.outputs}
        for s in spans
    )
    assert any(p.name.endswith("_residual") for p in spans[1].inputs)


def test_what_cannot_sit_in_a_span_is_refused():
    for config, message in (
        (TINY, "needs a causal model with cLN"),
        (dataclasses.replace(CLN, norm_type=NormType.CGLN), "needs a causal model with cLN"),
        (dataclasses.replace(CLN, mask_act=MaskAct.SOFTMAX), "softmax mask"),
    ):
        with pytest.raises(UserError, match=message):
            build_window_plan(random_model(config, seed=0), 4)
    with pytest.raises(UserError, match="one conv needs 8 frames of history"):
        build_window_plan(random_model(CLN, seed=0), 4, 10)
    assert build_plan(
        random_model(CLN, seed=0), PlanOptions(rf_hop_frames=4), PlanPath.FULL_CHAIN
    ).rf_window == 4 + 2 * 2 * (1 + 2 + 4)


def test_the_shipped_causal_demo_model_in_two_calls_per_8_ms_hop():
    from convtasnet_hailo.assets import DEMO_CAUSAL_MODEL, DEMO_MIXTURE
    from convtasnet_hailo.audio.io import load_audio
    from convtasnet_hailo.model.checkpoint import load_model

    model = load_model(str(DEMO_CAUSAL_MODEL))[0]
    plan = build_window_plan(model, 8, 512)
    assert len(plan.stages) <= 2 and plan.rf_window <= 512
    wav = load_audio(str(DEMO_MIXTURE), 8000).wav[:12_003]
    executor = WindowStreamingExecutor(plan, load_backend("torch_proxy"), 64)
    streamed = stream_file(executor, wav)
    assert_within_contract(streamed, reference_separation(model, wav), "causal demo model, 8 ms hops")
    assert executor.stage_calls == len(plan.stages) * (-(-len(wav) // 64))


@pytest.mark.slow
def test_the_full_size_causal_model_in_at_most_six_calls_per_16_ms_hop():
    model = random_model(RANDOM_PRESETS["full-8k-causal"], seed=0)
    plan, executor, streamed, offline = _streamed(model, 16, 512, seconds=1.0)
    assert len(plan.stages) <= 6
    assert_within_contract(streamed, offline, "full-size causal, 16 ms hops")


@pytest.mark.parametrize(
    "config",
    [CLN, dataclasses.replace(CLN, norm_type=NormType.CGLN), THREE, ODD_L],
    ids=["cln", "cgln_host_norms", "three_sources", "odd_kernel"],
)
@pytest.mark.parametrize("hop_ms", [4, 8, 16, 32])
def test_the_per_hop_plan_flushes_to_the_last_sample(config, hop_ms):
    """The per-hop executor's finish: only the frames the offline model makes from the real
    input, then the overlap-add tail: every sample equals the offline output."""
    from convtasnet_hailo.backends.registry import load_backend

    model = random_model(config, seed=4)
    wav = speech_like(0.7, 8000, 5)[:5597]
    executor = StreamingExecutor(
        build_plan(model, PlanOptions(), PlanPath.FULL_CHAIN), load_backend("torch_proxy"), hop_ms * 8
    )
    streamed = stream_file(executor, wav)
    offline = reference_separation(model, wav)
    assert streamed.shape == offline.shape
    assert_within_contract(streamed, offline, f"per-hop plan, hop {hop_ms} ms")


@pytest.mark.parametrize("packing", [(), ("--execution-mode", "activated_packs")], ids=["scheduled", "packs"])
def test_windows_through_hailo_runtime_one_call_per_span_and_hop(tmp_path, monkeypatch, packing):
    """Export the window plan, compile it with the SDK double, stream it through hailo_runtime on
    the HailoRT double (each span a network group under the scheduler, or both spans in one
    single-context pack activated once): one device call per span and hop, every sample equal
    to the offline model."""
    import json

    from convtasnet_hailo.cli import main
    from convtasnet_hailo.model.checkpoint import load_model, save_model
    from tests.doubles import runtime as runtime_double
    from tests.doubles import sdk as sdk_double

    checkpoint = tmp_path / "causal.pth"
    save_model(random_model(CLN, seed=5), checkpoint)
    sdk_double.install(monkeypatch)
    hailo = runtime_double.install(monkeypatch)
    export = tmp_path / "export"
    assert (
        main(
            [
                "export",
                "--model",
                str(checkpoint),
                "--rf-windows",
                "4",
                "--max-width",
                "20",
                "--out",
                str(export),
                *packing,
            ]
        )
        == 0
    )
    assert main(["compile", "--export-dir", str(export), "--calib-count", "4"]) == 0
    hailo = runtime_double.install(monkeypatch)
    wav = speech_like(0.5, 8000, 9)[:3997]
    import soundfile

    soundfile.write(tmp_path / "mix.wav", wav, 8000, subtype="FLOAT")
    out = tmp_path / "stream"
    assert (
        main(
            [
                "stream",
                str(tmp_path / "mix.wav"),
                "--model",
                str(checkpoint),
                "--hop-ms",
                "4",
                "--plan",
                "rf-windows",
                "--max-width",
                "20",
                "--backend",
                "hailo_runtime",
                "--hef-dir",
                str(export / "hailo" / "hailo8"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    record = json.loads((out / "stream_run.json").read_text())
    parity = record["parity_vs_offline"]
    assert parity["samples_compared"] == len(wav)
    streamed = np.stack([soundfile.read(out / f"mix_s{i}.wav", dtype="float32")[0] for i in (1, 2)])
    model = load_model(str(checkpoint))[0]
    offline = reference_separation(model, wav)
    # the JSON's parity is exact; the WAVs are PCM_16, within one 16-bit step
    assert parity["all_close"] and np.abs(streamed - offline).max() <= 2**-15 + 1e-7
    assert record["stream_plan"]["execution_mode"] == ("activated_packs" if packing else "scheduled_groups")
    hops = -(-len(wav) // 32)
    assert record["latency"]["stage_calls_per_hop"] == pytest.approx(2 * hops / (hops - 1 + 1), rel=0.05)
    assert hailo.STATS["activations"] == (1 if packing else 0)
