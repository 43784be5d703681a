"""scripts/train_demo_model.py in pieces: a resumed run ends with the weights of an uninterrupted one."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from convtasnet_hailo.model.convtasnet import ConvTasNet
from convtasnet_hailo.model.source import TINY
from convtasnet_hailo.tolerances import TOL

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "train_demo_model.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("train_demo_model_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def _corpus(script):
    """Six 'speakers' of harmonic tones with a syllable envelope, 0.3-0.7 s each."""
    rng = np.random.default_rng(0)
    waves = []
    for i in range(6):
        t = np.arange(int(rng.uniform(0.3, 0.7) * 8000)) / 8000
        wave = (
            np.sin(2 * np.pi * (120 + 40 * i) * t * (1 + 0.1 * np.sin(2 * np.pi * 3 * t))) * np.sin(np.pi * 4 * t) ** 2
        )
        waves.append((0.5 * wave).astype(np.float32))
    audio = np.concatenate([np.round(w * 32767).astype(np.int16) for w in waves])
    return script.Corpus(audio, np.array([len(w) for w in waves]), np.arange(6))


def _piece(script, tmp: Path, max_steps: int, torch_threads=1):
    torch.set_num_threads(torch_threads)
    torch.manual_seed(1)
    model = ConvTasNet(TINY).train()  # a resumed piece overwrites these weights from the state
    corpus = _corpus(script)
    validation = script.validation_set(corpus, 2, 0.4, seed=3)
    options = script.TrainOptions(
        out=tmp / "best.pth",
        state=tmp / "best.state.pt",
        history=tmp / "history.jsonl",
        minutes=10,
        max_steps=max_steps,
        batch=2,
        seconds=0.2,
        max_seconds=0.5,
        lr=1e-3,
        seed=5,
        eval_every=2,
        librimix_levels=True,
        resume_keys={"seed": 5},
    )
    augmentation = script.Augmentation(rooms=(), reverb_prob=0.5)  # synthetic rooms: no pyroomacoustics needed
    result = script.train(options, model, corpus, validation, augmentation, report=lambda _: None)
    return model, result


def _validations(path: Path) -> list[dict]:
    keep = ("step", "train_loss", "val_si_snri", "lr", "saved")
    return [{k: v for k, v in json.loads(line).items() if k in keep} for line in path.read_text().splitlines()]


def _assert_same_weights(a: ConvTasNet, b: ConvTasNet) -> None:
    """Equal within float32 rounding, judged normwise (the contract of docs/exactness.md); in practice bit-equal."""
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=False):
        peak = float(x.abs().max())
        assert float((x - y).abs().max()) <= TOL * max(1.0, peak), name


def test_resumed_run_equals_uninterrupted(script, tmp_path):
    straight, result = _piece(script, tmp_path / "straight", max_steps=6)
    assert result["step"] == 6
    _piece(script, tmp_path / "pieces", max_steps=3)  # the first piece stops at step 3 and saves its state
    resumed, result = _piece(script, tmp_path / "pieces", max_steps=6)
    assert result["step"] == 6 and result["piece"] == 2
    _assert_same_weights(straight, resumed)
    assert _validations(tmp_path / "pieces" / "history.jsonl") == _validations(tmp_path / "straight" / "history.jsonl")
    best = torch.load(tmp_path / "pieces" / "best.pth", weights_only=True)["state_dict"]
    expected = torch.load(tmp_path / "straight" / "best.pth", weights_only=True)["state_dict"]
    assert all(torch.equal(best[k], expected[k]) for k in expected)


def test_resume_after_a_crash_drops_the_lost_steps_history(script, tmp_path):
    """A crash after the state at step 4: history lines written later are dropped and redone."""
    straight, _ = _piece(script, tmp_path / "straight", max_steps=6)
    run = tmp_path / "crashed"
    _piece(script, run, max_steps=4)
    shutil.copy(run / "best.state.pt", tmp_path / "state_at_4.pt")
    _piece(script, run, max_steps=6)  # ran on to step 6 (history up to 6) ...
    shutil.copy(tmp_path / "state_at_4.pt", run / "best.state.pt")  # ... but its later states were lost
    resumed, result = _piece(script, run, max_steps=6)
    assert result["step"] == 6
    _assert_same_weights(straight, resumed)
    assert _validations(run / "history.jsonl") == _validations(tmp_path / "straight" / "history.jsonl")


def test_state_is_read_without_running_code(script, tmp_path):
    _piece(script, tmp_path, max_steps=1)
    state = script.read_state(tmp_path / "best.state.pt")  # torch.load(weights_only=True) inside
    assert state["step"] == 1 and state["format"] == script.STATE_FORMAT
    torch.save({"format": 99}, tmp_path / "other.pt")
    with pytest.raises(SystemExit, match="not a training state"):
        script.read_state(tmp_path / "other.pt")


def test_resume_refuses_other_options(script, tmp_path):
    _piece(script, tmp_path, max_steps=1)
    options = script.TrainOptions(
        out=tmp_path / "best.pth",
        state=tmp_path / "best.state.pt",
        history=tmp_path / "history.jsonl",
        max_steps=2,
        resume_keys={"seed": 6},
    )
    with pytest.raises(SystemExit, match="another --seed"):
        script.train(options, ConvTasNet(TINY), _corpus(script), [], report=lambda _: None)


def test_variable_lengths_keep_the_audio_per_batch(script):
    rng = np.random.default_rng(0)
    plans = [script.segment_plan(rng, 8, 2.0, 10.0) for _ in range(200)]
    assert all(2 * 8000 <= length <= 10 * 8000 for _, length in plans)
    assert all(count * length <= 8 * 2 * 8000 * 1.35 for count, length in plans)
    assert min(count for count, _ in plans) == 2 and max(count for count, _ in plans) == 8
    assert script.segment_plan(rng, 8, 2.0, None) == (8, 16000)


def test_distillation_targets(script):
    """The teacher's estimates are extra targets: weight 0 ignores them, a teacher that equals the
    sources (in either order: PIT) changes nothing, another teacher pulls the loss toward its own."""
    torch.manual_seed(0)
    estimates, sources, other = torch.randn(3, 2, 2, 400).unbind(0)
    plain = script.distillation_loss(estimates, sources, None, 0.5)
    assert torch.equal(script.distillation_loss(estimates, sources, other, 0.0), plain)
    assert torch.allclose(script.distillation_loss(estimates, sources, sources.flip(1), 0.5), plain)
    to_other = script.distillation_loss(estimates, other, None, 0.5)
    assert torch.allclose(script.distillation_loss(estimates, sources, other, 0.25), 0.75 * plain + 0.25 * to_other)


def test_causal_student_distils_from_a_teacher(script, tmp_path):
    import dataclasses

    from convtasnet_hailo.model.config import NormType

    torch.set_num_threads(1)
    torch.manual_seed(2)
    teacher = ConvTasNet(TINY).eval()
    student = ConvTasNet(dataclasses.replace(TINY, causal=True, norm_type=NormType.CLN)).train()
    corpus = _corpus(script)
    options = script.TrainOptions(
        out=tmp_path / "s.pth",
        state=tmp_path / "s.state.pt",
        history=tmp_path / "h.jsonl",
        max_steps=2,
        batch=2,
        seconds=0.2,
        eval_every=2,
        distill=0.5,
    )
    result = script.train(
        options, student, corpus, script.validation_set(corpus, 1, 0.3, seed=0), teacher=teacher, report=lambda _: None
    )
    assert result["step"] == 2 and (tmp_path / "s.pth").is_file()
