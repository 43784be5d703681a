"""`finetune` on a tiny model: the fake quantization is the emulator's rounding, the run is
bounded and resumable, and what it writes is an ordinary checkpoint `noise` takes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from convtasnet_hailo.assets import DEMO_MIXTURE, DEMO_SOURCES
from convtasnet_hailo.cli import main
from convtasnet_hailo.hailo import quant_scheme as qs
from convtasnet_hailo.quantization.finetune import fake_quant_activation, fake_quant_weight


def test_fake_quantization_rounds_like_the_emulator():
    x = np.random.default_rng(0).normal(0.3, 2.0, 1000)
    grid = qs.activation_grid(-1.5, 4.0, 8)
    expected = qs.dequantize(qs.quantize(x, grid), grid)
    got = fake_quant_activation(torch.from_numpy(x), -1.5, 4.0, 8).numpy()
    assert np.allclose(got, expected, atol=1e-12)
    w = np.random.default_rng(1).standard_normal((6, 3, 1)) * np.array([1, 10, 0.1, 1, 1, 1])[:, None, None]
    w_int, scale = qs.quantize_weights(w, 8)
    assert np.allclose(fake_quant_weight(torch.from_numpy(w), 8).numpy(), w_int * scale, atol=1e-12)


def test_straight_through_gradient_stops_outside_the_range():
    x = torch.tensor([-3.0, 0.1, 0.7, 9.0], dtype=torch.float64, requires_grad=True)
    fake_quant_activation(x, -1.0, 1.0, 8).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 0.0]


def test_finetune_runs_bounded_resumes_and_writes_a_checkpoint_noise_takes(tmp_path, capsys):
    out = tmp_path / "ft"
    common = [
        "finetune",
        "--random-preset",
        "tiny",
        "--data",
        str(DEMO_MIXTURE),
        *map(str, DEMO_SOURCES),
        "--mix-pairs",
        "--segment-seconds",
        "0.5",
        "--batch-size",
        "2",
        "--log-every",
        "2",
        "--out",
        str(out),
    ]
    assert main([*common, "--steps", "4"]) == 0
    printed = capsys.readouterr()  # progress on stderr (the module loggers), the summary on stdout
    assert "finetune: step 4/4" in printed.err and "3 recording(s)" in printed.err
    assert "finetune: 4 step(s) (done); wrote" in printed.out
    report = json.loads((out / "finetune_report.json").read_text())
    assert report["steps"] == 4 and report["stopped_by"] == "steps" and len(report["history"]) == 2
    ranges = json.loads((out / "calibration_ranges.json").read_text())["ranges"]
    assert "encoder" in ranges and all(lo <= hi for lo, hi in ranges.values())
    # an earlier run is not overwritten; --resume goes on from its step
    assert main([*common, "--steps", "6"]) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert main([*common, "--steps", "6", "--resume"]) == 0
    assert "resumed at step 4 of 6" in capsys.readouterr().err
    assert json.loads((out / "finetune_report.json").read_text())["steps"] == 6
    # an ordinary Asteroid checkpoint: same keys as the original, and `noise` takes it
    from convtasnet_hailo.model.checkpoint import load_model
    from convtasnet_hailo.model.random_init import random_model
    from convtasnet_hailo.model.source import TINY

    model, _ = load_model(str(out / "finetuned.pth"))
    assert set(model.state_dict()) == set(random_model(TINY, seed=0).state_dict())
    assert (
        main(
            [
                "noise",
                "--model",
                str(out / "finetuned.pth"),
                "--tile-w",
                "16",
                "--audio",
                str(DEMO_MIXTURE),
                "--calib-count",
                "64",
                "--no-ort-check",
                "--clipping",
                "minmax",
                "--target-db",
                "10",
                "--out",
                str(tmp_path / "noise"),
            ]
        )
        == 0
    )


def test_finetune_resume_needs_a_saved_state(tmp_path, capsys):
    assert (
        main(
            [
                "finetune",
                "--random-preset",
                "tiny",
                "--data",
                str(DEMO_MIXTURE),
                "--steps",
                "1",
                "--out",
                str(tmp_path / "ft"),
                "--resume",
            ]
        )
        == 2
    )
    assert "holds no finetune_state.pt" in capsys.readouterr().err


def test_finetune_resume_takes_only_its_out_folder(tmp_path, capsys):
    common = [
        "finetune",
        "--random-preset",
        "tiny",
        "--data",
        str(DEMO_MIXTURE),
        "--steps",
        "1",
        "--out",
        str(tmp_path / "ft"),
    ]
    assert main([*common, "--resume", str(tmp_path / "other")]) == 2
    err = capsys.readouterr().err
    assert "finetune goes on from its --out folder's state only" in err and len(err.strip().splitlines()) == 1


def test_finetune_resumed_equals_uninterrupted_and_the_state_loads_without_unpickling_code(tmp_path, capsys):
    """4 steps then 2 more from the saved state (read with torch.load(weights_only=True)) give
    the same weights as 6 steps in one go."""
    import torch

    def run(out, steps, *extra):
        assert (
            main(
                [
                    "finetune",
                    "--random-preset",
                    "tiny",
                    "--data",
                    str(DEMO_MIXTURE),
                    *map(str, DEMO_SOURCES),
                    "--mix-pairs",
                    "--segment-seconds",
                    "0.5",
                    "--batch-size",
                    "2",
                    "--log-every",
                    "2",
                    "--steps",
                    str(steps),
                    "--out",
                    str(out),
                    *extra,
                ]
            )
            == 0
        )

    run(tmp_path / "once", 6)
    run(tmp_path / "twice", 4)
    state = torch.load(tmp_path / "twice" / "finetune_state.pt", weights_only=True)
    assert state["step"] == 4 and len(state["history"]) == 2
    run(tmp_path / "twice", 6, "--resume")
    once = torch.load(tmp_path / "once" / "finetune_state.pt", weights_only=True)
    twice = torch.load(tmp_path / "twice" / "finetune_state.pt", weights_only=True)
    assert once["step"] == twice["step"] == 6
    assert all(torch.equal(once["model"][k], twice["model"][k]) for k in once["model"])
    assert once["ranges"] == twice["ranges"]


@pytest.mark.parametrize(
    "device, message",
    [("banana", "is not a torch device"), ("cuda:7", "CUDA device"), ("meta", "runs on cpu or cuda")],
)
def test_a_device_that_is_not_one_or_not_here_is_one_line(device, message, tmp_path, capsys):
    import torch

    if device.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a CUDA device 7")
    argv = ["finetune", "--random-preset", "tiny", "--data", str(tmp_path), "--out", str(tmp_path / "o")]
    assert main([*argv, "--device", device]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "o").exists()
