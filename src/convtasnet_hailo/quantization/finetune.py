"""`finetune`: quantization-aware fine-tuning of a checkpoint, distilled from its float self.

The student is a copy of the model whose weights are fake-quantized on every forward (signed
8-bit, one scale per layer: ``quant_scheme.quantize_weights``'s rule) and whose activations are
fake-quantized where the emulated device rounds them (``quant_scheme.activation_grid``'s uint
grid with 0 on it, ranges tracked as a moving min/max): the encoder's output, each norm's output
(a stage input the host quantizes), each PReLU's output, each conv's output unless a PReLU
alone reads it (one DFC layer, ``quant_scheme``), and the mask. Gradients pass straight through
the rounding and stop outside the range (the saturation). The loss is the negative SI-SNR of the
student's sources against the float teacher's (distillation; no labels needed).

Data: audio files, folders or LibriMix metadata (``quantization.datasets``); with ``mix_pairs`` (a
two-source model on single-speaker speech such as the shipped corpus), each example is two
random recordings summed at random levels. Steps and time are bounded; progress is reported;
``finetune_state.pt`` in the output folder resumes an interrupted run. Writes an ordinary
Asteroid checkpoint (``finetuned.pth``) and the fake-quant ranges it ended with
(``calibration_ranges.json``), so `export`, `compile`, `parity` and `noise` take it as any other.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import time
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..files import write_text_atomically, written_atomically
from ..guard import check_run_files
from ..model.source import ModelSource

log = logging.getLogger(__name__)

STATE = "finetune_state.pt"
CHECKPOINT = "finetuned.pth"
RANGES = "calibration_ranges.json"
REPORT = "finetune_report.json"


@dataclasses.dataclass(frozen=True)
class FinetuneSettings:
    """One fine-tuning run: the training audio, the output folder, the bounds (steps, minutes),
    the batches, the optimizer, whether to go on from ``out``'s saved state, the seed, how often
    to log and save, the torch device and the fake-quantization widths."""

    data: tuple[str, ...]
    out: Path
    steps: int = 300
    max_minutes: float = 10.0
    segment_seconds: float = 2.0
    batch_size: int = 4
    learning_rate: float = 1e-4
    mix_pairs: bool = False
    data_files: int | None = None
    resume: bool = False
    seed: int = 0
    log_every: int = 10
    device: str = "cpu"
    weight_bits: int = 8
    activation_bits: int = 8

    def validate(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.log_every < 1:
            raise UserError("--steps, --batch-size and --log-every must be at least 1")
        if not self.max_minutes > 0 or not self.segment_seconds > 0 or not self.learning_rate > 0:
            raise UserError("--max-minutes, --segment-seconds and --lr must be > 0")


# Fake quantization (torch), the emulator's rules.


def fake_quant_activation(x, lo: float, hi: float, bits: int):
    """x on the uint grid covering [lo, hi] widened to include 0 (``quant_scheme.activation_grid``),
    round half to even, saturated; gradient straight through inside the range, 0 outside."""
    import torch

    lo, hi = min(lo, 0.0), max(hi, 0.0)
    q_max = 2**bits - 1
    scale = (hi - lo) / q_max if hi > lo else 1.0
    zero_point = round(-lo / scale)
    clipped = torch.clamp(x, (0 - zero_point) * scale, (q_max - zero_point) * scale)
    q = torch.clamp(torch.round(clipped / scale) + zero_point, 0, q_max)
    return clipped + ((q - zero_point) * scale - clipped).detach()


def fake_quant_weight(w, bits: int):
    """Symmetric signed integers, one scale per layer (``quant_scheme.quantize_weights``)."""
    import torch

    q_max = 2 ** (bits - 1) - 1
    peak = w.detach().abs().max()
    scale = peak / q_max if float(peak) > 0 else torch.ones((), dtype=w.dtype, device=w.device)
    return w + (torch.clamp(torch.round(w / scale), -q_max, q_max) * scale - w).detach()


class _Observer:
    """A moving min/max of one activation (first seen: its own min/max)."""

    def __init__(self, momentum: float = 0.9) -> None:
        self.momentum, self.lo, self.hi = momentum, None, None

    def update(self, x) -> None:
        lo, hi = float(x.detach().min()), float(x.detach().max())
        if self.lo is None:
            self.lo, self.hi = lo, hi
        else:
            m = self.momentum
            self.lo, self.hi = m * self.lo + (1 - m) * lo, m * self.hi + (1 - m) * hi


def _fused_convs(model) -> set[int]:
    """ids of the Conv1d modules a PReLU alone follows in a Sequential (one DFC layer)."""
    from torch import nn

    fused = set()
    for module in model.modules():
        if isinstance(module, nn.Sequential):
            for a, b in zip(list(module)[:-1], list(module)[1:], strict=False):
                if isinstance(b, nn.PReLU):
                    fused.update(id(m) for m in a.modules() if isinstance(m, nn.Conv1d))
    return fused


class FakeQuantStudent:
    """Hooks and weight parametrizations that make ``model`` compute on the device's grids."""

    def __init__(self, model, weight_bits: int = 8, activation_bits: int = 8) -> None:
        from torch import nn
        from torch.nn.utils import parametrize

        from ..model.convtasnet import Encoder, TDConvNet, _AffineNorm

        self.model, self.bits = model, activation_bits
        self.observers: dict[str, _Observer] = {}
        self.frozen = False

        class _Weight(nn.Module):
            def forward(self, w):
                return fake_quant_weight(w, weight_bits)

        for _name, module in model.named_modules():
            if isinstance(module, nn.Conv1d):
                parametrize.register_parametrization(module, "weight", _Weight())
            elif hasattr(module, "_filters") and isinstance(module._filters, nn.Parameter):
                parametrize.register_parametrization(module, "_filters", _Weight())
        fused = _fused_convs(model)
        for name, module in model.named_modules():
            wanted = isinstance(module, (nn.PReLU, _AffineNorm, Encoder, TDConvNet)) or (
                isinstance(module, nn.Conv1d) and id(module) not in fused
            )
            if wanted:
                self.observers[name] = _Observer()
                module.register_forward_hook(self._hook(name))

    def _hook(self, name: str):
        def hook(module, inputs, output):
            observer = self.observers[name]
            if not self.frozen and module.training or observer.lo is None:
                observer.update(output)
            return fake_quant_activation(output, observer.lo, observer.hi, self.bits)

        return hook

    def ranges(self) -> dict[str, list[float]]:
        return {name: [o.lo, o.hi] for name, o in self.observers.items() if o.lo is not None}

    def load_ranges(self, ranges: dict[str, list[float]]) -> None:
        for name, (lo, hi) in ranges.items():
            self.observers[name].lo, self.observers[name].hi = lo, hi

    def float_state_dict(self) -> dict:
        """The trained float weights under their Asteroid keys (parametrizations stripped)."""
        state = {}
        for key, value in self.model.state_dict().items():
            key = key.replace(".parametrizations.weight.original", ".weight")
            key = key.replace(".parametrizations._filters.original", "._filters")
            state[key] = value.detach().clone()
        return state


# Data.


@dataclasses.dataclass
class _Batches:
    """Random training segments (batch, T) from the recordings (seeded)."""

    wavs: list[np.ndarray]
    segment: int
    batch_size: int
    mix_pairs: bool
    rng: np.random.Generator

    def _crop(self, wav: np.ndarray) -> np.ndarray:
        if len(wav) <= self.segment:
            return np.pad(wav, (0, self.segment - len(wav)))
        start = int(self.rng.integers(0, len(wav) - self.segment))
        return wav[start : start + self.segment]

    def next(self) -> np.ndarray:
        rows = []
        for _ in range(self.batch_size):
            first = self._crop(self.wavs[int(self.rng.integers(len(self.wavs)))])
            if self.mix_pairs:
                second = self._crop(self.wavs[int(self.rng.integers(len(self.wavs)))])
                gain = 10 ** (self.rng.uniform(-5, 5) / 20)  # natural level differences, +-5 dB
                first = first + gain * second
            rows.append(first)
        return np.stack(rows).astype(np.float32)


def _neg_si_snr(estimate, reference):
    """Mean negative SI-SNR (dB) over (batch, n_src, T) pairs, zero-mean."""
    import torch

    estimate = estimate - estimate.mean(dim=-1, keepdim=True)
    reference = reference - reference.mean(dim=-1, keepdim=True)
    dot = (estimate * reference).sum(-1, keepdim=True)
    projection = dot * reference / (reference.pow(2).sum(-1, keepdim=True) + 1e-8)
    noise = estimate - projection
    ratio = projection.pow(2).sum(-1) / (noise.pow(2).sum(-1) + 1e-8)
    return -(10 * torch.log10(ratio + 1e-8)).mean()


def _load_data(source: ModelSource, request: FinetuneSettings):
    from .datasets import load_set, recordings

    rate = source.model.config.sample_rate
    found = recordings(list(request.data), source.model.config.n_src, request.data_files, request.seed, "--data")
    audio = load_set(found, rate)
    if request.mix_pairs and source.model.config.n_src != 2:
        raise UserError(f"--mix-pairs makes two-speaker mixtures; this model has n_src={source.model.config.n_src}")
    return audio


def torch_device(text: str):
    """``--device`` as a torch device, refused in one line when it is not one or not on this machine."""
    import torch

    try:
        device = torch.device(text)
    except (RuntimeError, ValueError) as exc:
        raise UserError(f"--device {text!r} is not a torch device ({exc}); use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {text}: this machine has no CUDA device torch can use; use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UserError(
            f"--device {text}: this machine has {torch.cuda.device_count()} CUDA device(s); pick one of them"
        )
    if device.type not in ("cpu", "cuda"):
        raise UserError(f"--device {text}: finetune runs on cpu or cuda, not {device.type}")
    return device


class _Training:
    """The student, its teacher, the optimizer and where the run is (step, history, data position),
    saved to and resumed from ``finetune_state.pt``."""

    def __init__(self, source: ModelSource, request: FinetuneSettings) -> None:
        import torch

        torch.manual_seed(request.seed)
        self.torch, self.request = torch, request
        self.device = torch_device(request.device)
        self.teacher = copy.deepcopy(source.model).to(self.device).eval()
        self.model = copy.deepcopy(source.model).to(self.device)
        self.student = FakeQuantStudent(self.model, request.weight_bits, request.activation_bits)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=request.learning_rate)
        self.rng = np.random.default_rng(request.seed)
        self.step, self.history, self.running = 0, [], []
        self.state_path = request.out / STATE

    def resume(self) -> None:
        fix = "delete it to start over, or pass another --out"
        try:
            # weights_only: the state file is input, and unpickling it in full could run code from it
            state = self.torch.load(self.state_path, map_location=self.device, weights_only=True)
        except Exception as exc:  # noqa: BLE001 - torch raises UnpicklingError, RuntimeError, EOFError...
            why = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
            raise UserError(
                f"{self.state_path} is not a finetune state this toolkit wrote ({why}); never unpickled in full: {fix}"
            ) from None
        keys = {"model", "optimizer", "ranges", "rng", "step", "history"}
        if not isinstance(state, dict) or not keys <= set(state) or not isinstance(state["step"], int):
            raise UserError(f"{self.state_path} lacks the finetune state's fields ({', '.join(sorted(keys))}): {fix}")
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.student.load_ranges(state["ranges"])
            self.rng.bit_generator.state = state["rng"]
        except (KeyError, ValueError, TypeError, RuntimeError) as exc:
            raise UserError(f"{self.state_path} does not fit this run ({str(exc)[:160]}): {fix}") from None
        self.step, self.history = state["step"], state["history"]
        log.info(f"finetune: resumed at step {self.step} of {self.request.steps}")

    def save(self) -> None:
        with written_atomically(self.state_path) as temporary:
            self.torch.save(
                {
                    "model": self.model.state_dict(),
                    "optimizer": self.optimizer.state_dict(),
                    "ranges": self.student.ranges(),
                    "rng": self.rng.bit_generator.state,
                    "step": self.step,
                    "history": self.history,
                },
                temporary,
            )

    def train_step(self, batch: np.ndarray) -> None:
        """One optimizer step distilling the float model's output into the fake-quantized student."""
        torch = self.torch
        mix = torch.from_numpy(batch).to(self.device)
        with torch.no_grad():
            target = self.teacher(mix)
        loss = _neg_si_snr(self.model(mix), target)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.step += 1
        self.running.append(-float(loss.detach()))

    def log_progress(self, elapsed: float) -> None:
        self.history.append(
            {"step": self.step, "si_snr_vs_float_db": float(np.mean(self.running)), "seconds": round(elapsed, 1)}
        )
        log.info(
            f"finetune: step {self.step}/{self.request.steps}: student {np.mean(self.running):.2f} dB SI-SNR "
            f"against the float model ({elapsed:.0f} s)"
        )
        self.running = []
        self.save()


def _check_out(request: FinetuneSettings) -> None:
    state_path = request.out / STATE
    if state_path.exists() and not request.resume:
        raise UserError(f"--out {request.out} holds an earlier run ({STATE}); pass --resume to go on, or another --out")
    if request.resume and not state_path.exists():
        raise UserError(f"--resume: {request.out} holds no {STATE}; start without --resume")


def finetune(source: ModelSource, request: FinetuneSettings) -> dict:
    """Trains, saves state as it goes, writes the checkpoint and ranges; returns the run's record
    (``finetune_report.json``, which the `finetune` command writes)."""
    request.validate()
    audio = _load_data(source, request)
    rate = source.model.config.sample_rate
    _check_out(request)
    check_run_files(
        source.given() + [("the --data input", r.path) for r in audio.recordings],
        [request.out / name for name in (CHECKPOINT, RANGES, REPORT, STATE)],
    )
    request.out.mkdir(parents=True, exist_ok=True)
    training = _Training(source, request)
    if request.resume:
        training.resume()
    batches = _Batches(
        audio.wavs, int(request.segment_seconds * rate), request.batch_size, request.mix_pairs, training.rng
    )
    log.info(
        f"finetune: {len(audio.wavs)} recording(s) ({audio.seconds_total / rate:.0f} s), segments of "
        f"{request.segment_seconds:g} s, batch {request.batch_size}"
        f"{', two-recording mixtures' if request.mix_pairs else ''}; up to {request.steps} steps or "
        f"{request.max_minutes:g} min on {request.device}"
    )
    started, stopped = time.perf_counter(), "steps"
    training.model.train()
    while training.step < request.steps:
        if time.perf_counter() - started > request.max_minutes * 60:
            stopped = "time"
            break
        training.train_step(batches.next())
        if training.step % request.log_every == 0 or training.step == request.steps:
            training.log_progress(time.perf_counter() - started)
    training.save()
    progress = {
        "steps": training.step,
        "stopped_by": stopped,
        "seconds": round(time.perf_counter() - started, 1),
        "history": training.history,
    }
    record = _write_outputs(source, training.student, request, audio, progress)
    log.info(
        f"finetune: {training.step} step(s) ({'stopped by --max-minutes' if stopped == 'time' else 'done'}); "
        f"wrote {request.out / CHECKPOINT} and {request.out / RANGES}"
    )
    return record


def _write_outputs(
    source: ModelSource, student: FakeQuantStudent, request: FinetuneSettings, audio, progress: dict
) -> dict:
    from ..files import sha256_file
    from ..model.checkpoint import save_model
    from ..model.convtasnet import ConvTasNet

    out = request.out
    model = ConvTasNet(source.model.config)
    model.load_state_dict(student.float_state_dict())
    save_model(model, out / CHECKPOINT)
    write_text_atomically(
        out / RANGES, json.dumps({"bits": request.activation_bits, "ranges": student.ranges()}, indent=1)
    )
    record = {
        **source.to_json(),
        "finetuned_checkpoint": str(out / CHECKPOINT),
        "finetuned_sha256": sha256_file(out / CHECKPOINT),
        "calibration_ranges": str(out / RANGES),
        **progress,
        "data": audio.describe(source.model.config.sample_rate),
        "request": {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(request).items()},
        "fake_quant": {
            "weights": f"int{request.weight_bits}, one scale per layer",
            "activations": f"uint{request.activation_bits}, moving min/max",
            "loss": "negative SI-SNR against the float model (distillation)",
        },
    }
    return record
