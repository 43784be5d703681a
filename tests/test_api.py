"""The public Python API: a class per task, equal to the commands and to the model."""

import dataclasses
import os
import re
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile

import convtasnet_hailo
from convtasnet_hailo import OnnxRuntime, Separator, StreamingSeparator, TorchProxy, run_parity
from convtasnet_hailo.errors import UserError
from convtasnet_hailo.model.checkpoint import load_model, save_model
from convtasnet_hailo.model.config import NormType
from convtasnet_hailo.model.random_init import random_model
from convtasnet_hailo.runtime.separator import reference_separation
from tests.conftest import TINY, assert_within_contract, speech_like

ROOT = Path(__file__).resolve().parents[1]


def test_the_api_is_exported_from_the_package_root():
    assert set(convtasnet_hailo.__all__) >= {
        "Separator",
        "StreamingSeparator",
        "TorchProxy",
        "OnnxRuntime",
        "HailoRuntime",
        "HailoEmulator",
        "HailoQuant",
        "load_audio",
        "score",
        "run_parity",
    }
    from convtasnet_hailo import HailoQuant  # noqa: F401


def test_separate_equals_the_model(tiny_checkpoint):
    wav = speech_like(0.7, 8000, 2)
    with Separator.from_checkpoint(tiny_checkpoint, tile_w=16) as separator:
        assert (separator.sample_rate, separator.n_src) == (8000, 2)
        sources = separator.separate(wav)
    assert_within_contract(sources, reference_separation(load_model(str(tiny_checkpoint))[0], wav), "api separate")


def test_a_long_input_is_segmented_as_the_separate_command_does(tmp_path, tiny_checkpoint):
    """The API segments by the same policy as `separate` (here 5 s segments), so its output is
    the command's (both written and read back as FLOAT)."""
    from convtasnet_hailo.cli import main

    wav = speech_like(12.0, 8000, 4)
    soundfile.write(tmp_path / "long.wav", wav, 8000, subtype="FLOAT")
    assert (
        main(
            [
                "separate",
                str(tmp_path / "long.wav"),
                "--model",
                str(tiny_checkpoint),
                "--tile-w",
                "16",
                "--segment",
                "5",
                "--subtype",
                "FLOAT",
                "--out",
                str(tmp_path / "cli"),
            ]
        )
        == 0
    )
    cli = np.stack([soundfile.read(tmp_path / "cli" / f"long_s{i}.wav", dtype="float32")[0] for i in (1, 2)])
    with Separator.from_checkpoint(tiny_checkpoint, tile_w=16, segment="5") as separator:
        api = separator.separate_file(tmp_path / "long.wav")
    assert np.array_equal(api, cli)
    with Separator.from_checkpoint(tiny_checkpoint, tile_w=16, segment="off") as whole:
        assert not np.array_equal(whole.separate(wav), api), "the segments were used"


def test_an_export_runs_through_the_api_without_its_checkpoint(tmp_path, tiny_checkpoint):
    from convtasnet_hailo.cli import main

    assert main(["export", "--model", str(tiny_checkpoint), "--tile-w", "16", "--out", str(tmp_path / "e")]) == 0
    wav = speech_like(0.7, 8000, 2)
    for backend in ("onnxruntime", OnnxRuntime(tmp_path / "e")):
        with Separator.from_export(tmp_path / "e", backend=backend) as separator:
            assert separator.plan.export_dir is not None
            sources = separator.separate(wav)
        assert_within_contract(sources, reference_separation(load_model(str(tiny_checkpoint))[0], wav), "export")


def _causal_checkpoint(tmp_path) -> Path:
    checkpoint = tmp_path / "causal.pth"
    save_model(random_model(dataclasses.replace(TINY, causal=True, norm_type=NormType.CLN), seed=2), checkpoint)
    return checkpoint


def test_a_streaming_separator_gives_back_every_sample_of_the_offline_model(tmp_path):
    checkpoint = _causal_checkpoint(tmp_path)
    wav = speech_like(0.6, 8000, 5)
    with StreamingSeparator.from_checkpoint(checkpoint, hop_ms=8, backend="onnxruntime") as streamer:
        whole = len(wav) // streamer.hop * streamer.hop
        pieces = [streamer.push(wav[i : i + streamer.hop]) for i in range(0, whole, streamer.hop)]
        streamed = np.concatenate(pieces + [streamer.finish(wav[whole:])], axis=-1)
        assert streamer.finish().shape == (2, 0), "a second finish() returns nothing more"
        assert streamer.finish(np.zeros(0, np.float32)).shape == (2, 0)
        with pytest.raises(UserError, match="finish after finish"):
            streamer.finish(wav[:3])  # samples after the end would be lost: refused
        with pytest.raises(UserError, match="push after finish"):
            streamer.push(wav[: streamer.hop])
    assert_within_contract(streamed, reference_separation(load_model(str(checkpoint))[0], wav), "api stream")
    with pytest.raises(UserError, match="closed"):
        streamer.push(wav[: streamer.hop])


def test_a_bad_hop_is_refused_and_the_stream_goes_on(tmp_path):
    checkpoint = _causal_checkpoint(tmp_path)
    wav = speech_like(0.3, 8000, 6)
    with StreamingSeparator.from_checkpoint(checkpoint, hop_ms=8) as streamer:
        hop = streamer.hop
        bad = wav[:hop].copy()
        bad[3] = np.nan
        with pytest.raises(UserError, match="samples holds NaN at sample 3"):
            streamer.push(bad)
        with pytest.raises(UserError, match=r"samples has shape \(64, 2\): push one channel"):
            streamer.push(np.stack([wav[:hop], wav[:hop]], axis=1))  # not two hops
        with pytest.raises(UserError, match="samples has 63 values: push a whole number of hops"):
            streamer.push(wav[: hop - 1])
        with pytest.raises(UserError, match=r"samples holds 1e\+30 at sample 0"):
            streamer.push(np.full(hop, 1e30, np.float32))
        whole = len(wav) // hop * hop
        out = np.concatenate(
            [streamer.push(wav[i : i + hop]) for i in range(0, whole, hop)] + [streamer.finish(wav[whole:])], axis=-1
        )
    assert_within_contract(out, reference_separation(load_model(str(checkpoint))[0], wav), "after refusals")


def test_arrays_are_checked_and_named(tiny_checkpoint):
    wav = speech_like(0.5, 8000, 3)
    stereo = np.stack([wav, 0.5 * wav], axis=1)  # (T, C), as soundfile.read returns it
    with Separator.from_checkpoint(tiny_checkpoint, tile_w=16) as separator:
        with pytest.raises(UserError, match=r"wav has shape \(4000, 2\): say which axis holds the channels"):
            separator.separate(stereo)  # never flattened into interleaved mono
        mono = separator.separate(stereo.mean(axis=1))
        assert_within_contract(separator.separate(stereo, channel_axis=1), mono, "(T, C) averaged")
        assert_within_contract(separator.separate(stereo.T, channel_axis=0), mono, "(C, T) averaged")
        with pytest.raises(UserError, match=r"4000 channels along channel_axis=0.*the other channel_axis"):
            separator.separate(stereo, channel_axis=0)
        with pytest.raises(UserError, match="wav holds Inf at sample 7: pass finite samples"):
            separator.separate(np.where(np.arange(len(wav)) == 7, np.inf, wav))
        with pytest.raises(UserError, match=r"wav holds 3e\+300 at sample 5, beyond \+-32768"):
            separator.separate(np.where(np.arange(len(wav)) == 5, 3e300, wav.astype(np.float64)))
        pcm = np.round(wav * 32767).astype(np.int16)
        assert_within_contract(separator.separate(pcm), separator.separate(pcm / 32768.0), "int16 scaled")
        with pytest.raises(UserError, match="wav is int64: pass float samples"):
            separator.separate(pcm.astype(np.int64))
        with pytest.raises(UserError, match=r"rate=0 Hz: pass a rate from 1000"):
            separator.separate(wav, rate=0)
    with pytest.raises(UserError, match="closed"):
        separator.separate(wav)


def test_parameters_are_named_as_the_api_names_them(tiny_checkpoint, tmp_path):
    """Not as the CLI's options: the API's caller passed parameters."""
    for kwargs, message in (
        ({"segment": "bogus"}, "segment='bogus': use auto, off"),
        ({"segment": 3.0}, "segment=3 s must be longer than twice overlap_seconds"),
        ({"overlap_seconds": float("nan")}, "overlap_seconds=nan: pass a finite number"),
        ({"tile_w": 0}, "tile_w=0: pass a whole number"),
    ):
        with pytest.raises(UserError, match=re.escape(message)) as refused:
            Separator.from_checkpoint(tiny_checkpoint, **kwargs)
        assert "--" not in str(refused.value)
    checkpoint = _causal_checkpoint(tmp_path)
    for kwargs, message in (
        ({"hop_ms": float("nan")}, "hop_ms=nan: pass a hop length"),
        ({"hop_ms": 0.1}, "hop_ms=0.1 is 0.8 samples"),
        ({"plan": "bogus"}, "plan='bogus': choose auto"),
    ):
        with pytest.raises(UserError, match=re.escape(message)) as refused:
            StreamingSeparator.from_checkpoint(checkpoint, **kwargs)
        assert "--" not in str(refused.value)


def test_write_sources_stays_in_its_folder_and_never_over_an_input(tmp_path, tiny_checkpoint):
    soundfile.write(tmp_path / "mix_s1.wav", speech_like(0.5, 8000, 3), 8000)
    (tmp_path / "linked").mkdir()
    os.link(tmp_path / "mix_s1.wav", tmp_path / "linked" / "hard_s1.wav")
    os.symlink(tmp_path / "mix_s1.wav", tmp_path / "linked" / "soft_s1.wav")
    before = (tmp_path / "mix_s1.wav").read_bytes()
    with Separator.from_checkpoint(tiny_checkpoint, tile_w=16) as separator:
        sources = separator.separate_file(tmp_path / "mix_s1.wav")
        for stem in ("../x", "a\\b", "..", "a\nb"):
            with pytest.raises(UserError, match="stem="):
                separator.write_sources(sources, tmp_path / "out", stem)
        for out_dir, stem in ((tmp_path, "mix"), (tmp_path / "linked", "hard"), (tmp_path / "linked", "soft")):
            with pytest.raises(UserError, match="an input this separator read"):
                separator.write_sources(sources, out_dir, stem)
        with pytest.raises(UserError, match=r"sources has shape \(4000, 2\): pass \(2, T\)"):
            separator.write_sources(sources.T, tmp_path / "out", "t")
        with pytest.raises(UserError, match="subtype='PCM_8'"):
            separator.write_sources(sources, tmp_path / "out", "x", subtype="PCM_8")
        assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir()), "nothing written"
        assert [p.name for p in separator.write_sources(sources, tmp_path / "out", "mix")] == [
            "mix_s1.wav",
            "mix_s2.wav",
        ]
    assert (tmp_path / "mix_s1.wav").read_bytes() == before


def test_threads_share_a_separator_safely(tiny_checkpoint):
    waves = [speech_like(0.4 + 0.1 * k, 8000, k) for k in range(4)]
    with Separator.from_checkpoint(tiny_checkpoint, tile_w=16) as separator:
        alone = [separator.separate(w) for w in waves]
        results: dict[int, np.ndarray] = {}
        threads = [
            threading.Thread(target=lambda k=k: results.__setitem__(k, separator.separate(waves[k])))
            for k in range(4)
            for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert all(np.array_equal(results[k], alone[k]) for k in range(4))


def test_close_waits_for_a_call_in_progress_and_later_calls_are_refused(tiny_checkpoint):
    wav = speech_like(0.5, 8000, 4)
    separator = Separator.from_checkpoint(tiny_checkpoint, tile_w=16)
    alone = separator.separate(wav)
    outcomes: list = []

    def separate_until_closed() -> None:
        for _ in range(50):
            try:
                outcomes.append(separator.separate(wav))
            except UserError as exc:
                outcomes.append(str(exc))
                return

    worker = threading.Thread(target=separate_until_closed)
    worker.start()
    separator.close()
    worker.join(timeout=120)
    assert not worker.is_alive()
    assert outcomes[-1] == "this Separator is closed: open a new one"
    assert all(np.array_equal(o, alone) for o in outcomes[:-1])


def test_backends_are_named_by_their_parameters():
    with pytest.raises(UserError, match=r"HailoRuntime\(hef_dir=...\) is required"):
        Separator.from_checkpoint("x.pth", backend=convtasnet_hailo.HailoRuntime(""))
    with pytest.raises(UserError, match="backend='hailo_runtime': by name, use torch_proxy or onnxruntime"):
        Separator.demo(backend="hailo_runtime")
    assert TorchProxy().options().name == "torch_proxy"


def test_open_pipeline_is_a_deprecated_shim(tiny_checkpoint):
    with pytest.warns(DeprecationWarning):
        with convtasnet_hailo.open_pipeline(str(tiny_checkpoint), tile_w=16) as separator:
            assert isinstance(separator, Separator)


@pytest.mark.slow
def test_the_readme_python_snippet_runs_as_written(tmp_path, monkeypatch):
    import shutil

    from convtasnet_hailo.assets import DEMO_MIXTURE

    code = re.search(r"## Python\n```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    shutil.copy(DEMO_MIXTURE, tmp_path / "mix.wav")
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert (tmp_path / "separated" / "mix_s2.wav").exists()
    streamed = np.concatenate(scope["pieces"], axis=-1)
    assert streamed.shape == (2, len(scope["wav"]))


def test_run_parity(tmp_path):
    assert run_parity(path="masker", tile_widths=(8,), runs_dir=tmp_path) is True


def test_score_flags_a_silent_reference_and_refuses_mismatched_arrays():
    from convtasnet_hailo import score

    speech = speech_like(0.5, 8000, 8)
    references = np.stack([speech, np.zeros_like(speech)])
    result = score(references + 0.01, references, speech)
    assert result.silent_references == ("s2",) and result.excluded_silent_references == 1
    assert np.isfinite(result.mean_si_snri) and np.isnan(result.si_snri[1])
    with pytest.raises(UserError, match=r"estimates has shape \(2, 3999\), references \(2, 4000\)"):
        score(references[:, 1:], references, speech)
    with pytest.raises(UserError, match="estimates holds NaN or Inf at sample 3"):
        score(np.where(np.arange(4000) == 3, np.nan, references), references, speech)


def test_a_stream_closed_while_another_thread_pushes_refuses_cleanly(tmp_path):
    """close() waits for a push in progress; every later push is the one-line 'closed' refusal."""
    streamer = StreamingSeparator.from_checkpoint(_causal_checkpoint(tmp_path), hop_ms=8)
    hop, outcomes = streamer.hop, []

    def push_until_closed() -> None:
        for _ in range(200):
            try:
                outcomes.append(streamer.push(np.full(hop, 0.1, np.float32)).shape)
            except UserError as exc:
                outcomes.append(str(exc))
                return

    worker = threading.Thread(target=push_until_closed)
    worker.start()
    streamer.close()
    worker.join(timeout=120)
    assert not worker.is_alive() and outcomes[-1] == "this StreamingSeparator is closed: open a new one"
    assert all(shape[0] == 2 for shape in outcomes[:-1])
