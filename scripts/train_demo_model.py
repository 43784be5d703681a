#!/usr/bin/env python3
"""Trains the compact two-speaker 8 kHz demo ConvTasNet (CPU is fine), in resumable pieces.

Mixtures are made on the fly from two utterances of different speakers; the loss is negative
SI-SNR with the best permutation (as Asteroid trains ConvTasNet). The best checkpoint by
validation SI-SNRi on held-out speakers is written in Asteroid's format to ``--out``.

Training runs in pieces: ``--state`` (default ``<out>.state.pt``) holds everything a run needs to
go on exactly where it stopped (weights, optimizer and scheduler, step, best score, the numpy,
torch and Python RNG states; the numpy generator is the data position: it draws every mixture).
It is written every ``--save-every`` minutes, after every validation, at the end of
``--minutes`` (this piece's budget) and on SIGTERM/SIGINT. Running the same command again resumes
from it; a resumed run's weights equal an uninterrupted run's. Each validation appends a line to
``--history`` (default ``<out>.history.jsonl``).

Two corpora: the real LibriSpeech speech shipped in `corpus/librispeech_8k/` (``--real``; the
base of the shipped model), and the synthetic TTS corpus (``--corpus``; its pre-training).
``--augment`` adds what recordings have and clean corpora lack: speed/pitch perturbation,
reverberation in simulated rooms (pyroomacoustics, `pip install -e '.[train]'`), spectral
tilt and noise. ``--max-seconds`` trains on lengths drawn per batch between ``--seconds`` and
it (fewer mixtures in a long batch), so gLN's statistics over long inputs are seen in training.
``--valid-metadata`` validates on LibriMix metadata CSVs (`scripts/make_librimix_sets.py`).
``--teacher`` distils: the teacher's estimates are extra targets (weight ``--distill``).

    python scripts/train_demo_model.py --real corpus/librispeech_8k \\
        --init src/convtasnet_hailo/assets/demo/convtasnet_demo_8k.pth \\
        --augment --seconds 2 --max-seconds 10 --librimix-levels --minutes 60 --out runs_train/ft.pth \\
        --valid-metadata data/librimix_demo/wav8k/max/metadata/mixture_dev_mix_clean.csv \\
                         data/librimix_demo/wav8k/min/metadata/mixture_dev_mix_clean.csv
    # the same command again adds another 60 minutes

``--denoise CORPUS`` trains the causal 16 kHz denoiser instead (``DENOISE_CONFIG``, n_src = 1) on the
corpus of `make_denoise_corpus.py`: noisy examples drawn on the fly (`denoise_data.py`: rooms,
tilt, level, SNR -5..15 dB), the loss -(SI-SNR + SNR)/2, validation on the corpus's fixed valid
pairs (held-out speakers and noise recordings). The run of issue 40, in 120-minute pieces:

    nohup nice -n 19 env OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE MKL_NUM_THREADS=1 \
        python scripts/train_demo_model.py --denoise /work/runs_denoiser/corpus \
        --out /work/runs_denoiser/denoiser.pth --threads 1 --batch 8 --seconds 1 --reverb-prob 0.5 \
        --lr 1e-3 --seed 40 --eval-every 200 --save-every 10 --minutes 120 >> /work/runs_denoiser/train.log 2>&1 &
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import datetime
import json
import os
import random
import signal
import sys
import time
from pathlib import Path

import numpy as np
import torch

from convtasnet_hailo.model.checkpoint import load_model, save_model
from convtasnet_hailo.model.config import ConvTasNetConfig, MaskAct, NormType
from convtasnet_hailo.model.convtasnet import ConvTasNet

#: Compact enough for Hailo-8L: 14 blocks, 128 filters, 0.4 M parameters, 0.4 GMAC per second of audio.
DEMO_CONFIG = ConvTasNetConfig(
    n_src=2,
    n_filters=128,
    kernel_size=16,
    stride=8,
    bn_chan=64,
    hid_chan=128,
    skip_chan=64,
    conv_kernel_size=3,
    n_blocks=7,
    n_repeats=2,
    norm_type=NormType.GLN,
    mask_act=MaskAct.RELU,
    sample_rate=8000,
)
#: The causal 16 kHz denoiser (``--denoise``): 8 ms hops plus L - S = 16 samples of latency (9 ms), a 0.51 s
#: receptive field, 0.4 M parameters, 0.38 GMAC per second of audio.
DENOISE_CONFIG = ConvTasNetConfig(
    n_src=1,
    n_filters=128,
    kernel_size=32,
    stride=16,
    bn_chan=64,
    hid_chan=128,
    skip_chan=64,
    conv_kernel_size=3,
    n_blocks=7,
    n_repeats=2,
    norm_type=NormType.CLN,
    mask_act=MaskAct.SIGMOID,
    causal=True,
    sample_rate=16000,
)
RATE = 8000
STATE_FORMAT = 1
#: Options a resumed run must share with the run it continues (the others may change per piece).
RESUME_KEYS = (
    "real",
    "corpus",
    "denoise",
    "causal",
    "augment",
    "reverb_prob",
    "seed",
    "batch",
    "seconds",
    "max_seconds",
    "librimix_levels",
    "teacher",
    "distill",
)


class Corpus:
    """Utterances as one int16 array with offsets, and a speaker id per utterance."""

    def __init__(self, audio: np.ndarray, lengths: np.ndarray, speaker: np.ndarray):
        self.audio = audio
        self.offsets = np.concatenate([[0], np.cumsum(lengths)])
        self.speaker = speaker

    @classmethod
    def from_npz(cls, path: Path) -> Corpus:
        data = np.load(path)
        return cls(data["audio"], data["lengths"], data["speaker"])

    @classmethod
    def from_folder(cls, folder: Path) -> Corpus:
        """Every ``<speaker>-<chapter>-<utterance>.ogg`` (LibriSpeech naming) of an 8 kHz folder."""
        import soundfile as sf

        files = sorted(folder.glob("*.ogg"))
        if not files:
            raise SystemExit(f"no .ogg utterances in {folder}")
        waves = [sf.read(f, dtype="float32")[0] for f in files]
        audio = np.concatenate([np.round(w * 32767).astype(np.int16) for w in waves])
        speakers = np.array([int(f.name.split("-")[0]) for f in files])
        return cls(audio, np.array([len(w) for w in waves]), speakers)

    def __len__(self) -> int:
        return len(self.speaker)

    def utterance(self, index: int) -> np.ndarray:
        return self.audio[self.offsets[index] : self.offsets[index + 1]].astype(np.float32) / 32768


def _crop(wav: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    if len(wav) >= length:
        start = rng.integers(0, len(wav) - length + 1)
        return wav[start : start + length]
    out = np.zeros(length, np.float32)
    start = rng.integers(0, length - len(wav) + 1)
    out[start : start + len(wav)] = wav
    return out


def synthetic_rir(rng: np.random.Generator, rate: int = RATE) -> np.ndarray:
    """A room impulse response: direct path plus exponentially decaying noise, RT60 0.15-0.7 s."""
    rt60 = rng.uniform(0.15, 0.7)
    length = int(rt60 * rate)
    t = np.arange(length) / rate
    tail = rng.standard_normal(length) * np.exp(-6.9 * t / rt60) * rng.uniform(0.2, 0.6)
    tail[: int(0.002 * rate)] = 0
    tail[0] = 1.0
    return (tail / np.sqrt(np.sum(tail**2))).astype(np.float32)


def room_rirs(count: int, seed: int, rate: int = RATE) -> list[np.ndarray]:
    """Room impulse responses of simulated shoebox rooms (image method, pyroomacoustics): rooms of
    3-9 m, RT60 0.15-0.7 s, source and microphone at random places at least 0.5 m from walls."""
    try:
        import pyroomacoustics as pra
    except ImportError:
        raise SystemExit("--augment simulates rooms with pyroomacoustics: pip install -e '.[train]'") from None

    rng = np.random.default_rng(seed)
    rirs = []
    while len(rirs) < count:
        room_dim = rng.uniform([3, 3, 2.4], [9, 7, 3.5])
        rt60 = rng.uniform(0.15, 0.7)
        try:
            absorption, max_order = pra.inverse_sabine(rt60, room_dim)
        except ValueError:  # a room too large for this RT60
            continue
        room = pra.ShoeBox(room_dim, fs=rate, materials=pra.Material(absorption), max_order=min(max_order, 20))
        room.add_source(rng.uniform(0.5, room_dim - 0.5))
        room.add_microphone(rng.uniform(0.5, room_dim - 0.5))
        room.compute_rir()
        rir = np.asarray(room.rir[0][0], dtype=np.float64)
        rir = rir[max(0, int(np.argmax(np.abs(rir))) - 8) :][: int(0.8 * rate)]  # direct path first
        rirs.append((rir / np.sqrt(np.sum(rir**2))).astype(np.float32))
    return rirs


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """Recorded-room conditions a clean corpus lacks (``--augment``): rooms, their share, and so on."""

    rooms: tuple[np.ndarray, ...]
    reverb_prob: float = 0.6


def perturb_speed(source: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Speed and pitch together, by a factor of 0.9-1.1 (resampling, as Kaldi's speed perturbation)."""
    import soxr

    factor = rng.uniform(0.9, 1.1)
    return soxr.resample(source, RATE * factor, RATE).astype(np.float32)


def augment(source: np.ndarray, rng: np.random.Generator, augmentation: Augmentation) -> np.ndarray:
    """Reverberation (a share of sources) and a random spectral tilt."""
    if rng.random() < augmentation.reverb_prob:
        rooms = augmentation.rooms
        rir = rooms[rng.integers(len(rooms))] if rooms else synthetic_rir(rng)
        source = np.convolve(source, rir)[: len(source)]
    tilt = rng.uniform(-0.6, 0.6)  # first-order emphasis (+) or smoothing (-)
    source = source - tilt * np.concatenate([[0.0], source[:-1]])
    return source.astype(np.float32)


def make_mixture(
    corpus: Corpus,
    length: int,
    rng: np.random.Generator,
    augmentation: Augmentation | None = None,
    librimix_levels: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """(sources (2, length), mixture (length,)) from two speakers. Levels: the second source within
    +-5 dB of the first, or with ``librimix_levels`` each utterance at a level drawn in [-33, -25] dB
    (LibriMix's loudness range, here as RMS over the whole utterance before cropping). A source
    shorter than ``length`` sits at a random place in zeros. With ``augmentation``: speed, rooms,
    tilt, and a little noise in the mixture."""
    first = rng.integers(len(corpus))
    second = rng.integers(len(corpus))
    while corpus.speaker[second] == corpus.speaker[first]:
        second = rng.integers(len(corpus))
    waves = [corpus.utterance(i) for i in (first, second)]
    if augmentation:
        waves = [perturb_speed(w, rng) if rng.random() < 0.5 else w for w in waves]
    if librimix_levels:
        levels = rng.uniform(-33, -25, size=2)
        waves = [
            w * (10 ** (level / 20) / (np.sqrt(np.mean(w**2)) + 1e-8)) for w, level in zip(waves, levels, strict=True)
        ]
    sources = np.stack([_crop(w, length, rng) for w in waves])
    if augmentation:
        sources = np.stack([augment(s, rng, augmentation) for s in sources])
    if not librimix_levels:
        sources /= np.sqrt((sources**2).mean(axis=1, keepdims=True)) + 1e-8
        sources[1] *= 10 ** (rng.uniform(-5, 5) / 20)
    mixture = sources.sum(axis=0)
    if augmentation:
        mixture = mixture + rng.standard_normal(length) * np.sqrt((mixture**2).mean()) * 10 ** (
            -rng.uniform(25, 40) / 20
        )
    scale = rng.uniform(0.3, 0.9) / (np.abs(mixture).max() + 1e-8)
    return (sources * scale).astype(np.float32), (mixture * scale).astype(np.float32)


def si_snr(estimate: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Zero-mean SI-SNR in dB over the last axis (Asteroid's definition)."""
    estimate = estimate - estimate.mean(-1, keepdim=True)
    target = target - target.mean(-1, keepdim=True)
    projection = (estimate * target).sum(-1, keepdim=True) * target / ((target**2).sum(-1, keepdim=True) + eps)
    noise = estimate - projection
    return 10 * torch.log10((projection**2).sum(-1) / ((noise**2).sum(-1) + eps) + eps)


def pit_si_snr(estimates: torch.Tensor, sources: torch.Tensor) -> torch.Tensor:
    """Mean SI-SNR per mixture under the better of the two permutations. Shape (B, 2, T) -> (B,)."""
    straight = si_snr(estimates, sources).mean(-1)
    swapped = si_snr(estimates.flip(1), sources).mean(-1)
    return torch.maximum(straight, swapped)


def validation_set(corpus: Corpus, count: int, seconds: float, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``count`` mixtures of ``seconds`` (+-5 dB, no augmentation): [(sources (2, T), mixture (T,))]."""
    rng = np.random.default_rng(seed)
    pairs = [make_mixture(corpus, int(seconds * RATE), rng) for _ in range(count)]
    return [(torch.from_numpy(s), torch.from_numpy(m)) for s, m in pairs]


def librimix_validation(csv_paths: list[Path]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Every mixture of LibriMix metadata CSVs (any length): [(sources (2, T), mixture (T,))]."""
    import soundfile as sf

    from convtasnet_hailo.audio.librimix import read_metadata

    items = []
    for path in csv_paths:
        for entry in read_metadata(path):
            mixture = sf.read(entry.mixture_path, dtype="float32")[0]
            sources = np.stack([sf.read(p, dtype="float32")[0] for p in entry.source_paths])
            items.append((torch.from_numpy(sources), torch.from_numpy(mixture)))
    return items


@torch.no_grad()
def si_snri(model: ConvTasNet, items: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """Mean SI-SNRi (best permutation) over the mixtures, one at a time (lengths differ)."""
    model.eval()
    scores = []
    for sources, mixture in items:
        estimate = model(mixture[None])
        baseline = si_snr(mixture[None, None].expand_as(sources[None]), sources[None]).mean(-1)
        scores.append(float(pit_si_snr(estimate, sources[None]) - baseline))
    model.train()
    return float(np.mean(scores))


def segment_plan(
    rng: np.random.Generator, batch: int, seconds: float, max_seconds: float | None, rate: int = RATE
) -> tuple[int, int]:
    """(mixtures, samples) of the next batch: fixed ``seconds``, or a length drawn in
    [seconds, max_seconds] with about as much audio per batch as ``batch`` x ``seconds``."""
    if not max_seconds or max_seconds <= seconds:
        return batch, int(seconds * rate)
    length = float(rng.uniform(seconds, max_seconds))
    return max(1, int(round(batch * seconds / length))), int(length * rate)


def distillation_loss(
    estimates: torch.Tensor, sources: torch.Tensor, teacher: torch.Tensor | None, weight: float
) -> torch.Tensor:
    """Negative PIT SI-SNR against the sources, mixed with the same against the teacher's estimates."""
    loss = -pit_si_snr(estimates, sources).mean()
    if teacher is None or weight <= 0:
        return loss
    return (1 - weight) * loss - weight * pit_si_snr(estimates, teacher).mean()


# --- the state file -----------------------------------------------------------------------------


def _numpy_state(rng: np.random.Generator) -> str:
    return json.dumps(rng.bit_generator.state)


def _set_numpy_state(rng: np.random.Generator, text: str) -> None:
    rng.bit_generator.state = json.loads(text)


def save_state(path: Path, state: dict) -> None:
    """Writes the training state atomically (a crash mid-write keeps the previous one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save(state, partial)
    os.replace(partial, path)


def read_state(path: Path) -> dict:
    """The training state, read with torch's safe unpickler (tensors and plain containers only: no
    code in the file runs)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise SystemExit(f"{path} is not a training state of this script (format {STATE_FORMAT})")
    return state


def _truncate_history(path: Path, step: int) -> None:
    """Drops history lines of steps after ``step`` (written after the state this run resumes from)."""
    if not path.is_file():
        return
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    kept = [line for line in lines if json.loads(line).get("step", 0) <= step]
    if len(kept) != len(lines):
        path.write_text("".join(line + "\n" for line in kept))


@dataclasses.dataclass(frozen=True)
class TrainOptions:
    """Everything one piece of training needs (main() fills it from the command line)."""

    out: Path
    state: Path
    history: Path
    minutes: float = 60.0
    max_steps: int | None = None
    batch: int = 8
    seconds: float = 2.0
    max_seconds: float | None = None
    lr: float = 1e-3
    set_lr: float | None = None
    seed: int = 0
    eval_every: int = 250
    save_every_minutes: float = 10.0
    librimix_levels: bool = False
    distill: float = 0.0
    rate: int = RATE
    resume_keys: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class SeparationTask:
    """Two-speaker separation: mixtures drawn from a corpus, negative PIT SI-SNR (with a teacher's
    targets mixed in), validation SI-SNRi with the best permutation."""

    corpus: Corpus
    validation: list
    augmentation: Augmentation | None = None
    librimix_levels: bool = False
    teacher: ConvTasNet | None = None
    distill: float = 0.0

    def batch(self, rng: np.random.Generator, count: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(sources (B, 2, T), mixtures (B, T))."""
        batch = [make_mixture(self.corpus, length, rng, self.augmentation, self.librimix_levels) for _ in range(count)]
        return torch.from_numpy(np.stack([b[0] for b in batch])), torch.from_numpy(np.stack([b[1] for b in batch]))

    def loss(self, model: ConvTasNet, targets: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        teacher = None
        if self.teacher is not None:
            with torch.no_grad():
                teacher = self.teacher(inputs)
        return distillation_loss(model(inputs), targets, teacher, self.distill)

    def validate(self, model: ConvTasNet) -> dict:
        return {"val_si_snri": si_snri(model, self.validation)}


class _Stop:
    """Set by SIGTERM/SIGINT: the loop finishes its step, saves the state and returns."""

    requested = False

    @classmethod
    def install(cls) -> None:
        def handler(signum, _frame):
            cls.requested = True
            print(f"signal {signum}: saving the state after this step", flush=True)

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, handler)


def train(
    options: TrainOptions,
    model: ConvTasNet,
    train_corpus: Corpus | None,
    validation: list[tuple[torch.Tensor, torch.Tensor]] | None,
    augmentation: Augmentation | None = None,
    teacher: ConvTasNet | None = None,
    report=print,
    initial_best: float = -np.inf,
    task=None,
) -> dict:
    """One piece of training: resumes from ``options.state`` when it exists, stops after
    ``options.minutes`` or at ``options.max_steps`` (total) or on a signal, and saves the state.
    ``initial_best``: the score ``options.out`` must beat to be written (a new run's). ``task``:
    what is trained (``batch``, ``loss``, ``validate``, as ``SeparationTask``); by default the
    separation of ``train_corpus``. Returns the final state's summary (step, best, elapsed)."""
    task = task or SeparationTask(
        train_corpus, validation, augmentation, options.librimix_levels, teacher, options.distill
    )
    random.seed(options.seed)
    torch.manual_seed(options.seed)
    rng = np.random.default_rng(options.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=options.lr)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.5, patience=3)
    step, best, elapsed_before, piece = 0, initial_best, 0.0, 1
    losses: list[float] = []  # training losses since the last validation
    if options.state.is_file():
        state = read_state(options.state)
        changed = [k for k, v in options.resume_keys.items() if json.loads(state["resume_keys"]).get(k) != v]
        if changed:
            raise SystemExit(
                f"{options.state} is a run with another --{changed[0].replace('_', '-')} "
                f"({json.loads(state['resume_keys']).get(changed[0])!r}); pass the same options, or "
                "another --state to start a new run"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, best, elapsed_before = int(state["step"]), float(state["best"]), float(state["elapsed_s"])
        losses = [float(x) for x in state["losses"]]
        piece = int(state["piece"]) + 1
        _set_numpy_state(rng, state["numpy_rng"])
        random.setstate(tuple(tuple(x) if isinstance(x, list) else x for x in json.loads(state["python_rng"])))
        torch.set_rng_state(state["torch_rng"])
        _truncate_history(options.history, step)
        report(f"resumed {options.state}: step {step}, best {best:.2f} dB, {elapsed_before / 60:.1f} min trained")
        if options.set_lr is not None:  # a manual step down, recorded in the history like a validation
            for group in optimizer.param_groups:
                group["lr"] = options.set_lr
            with open(options.history, "a") as handle:
                handle.write(json.dumps({"step": step, "event": "set_lr", "lr": options.set_lr}) + "\n")
            report(f"learning rate set to {options.set_lr:g} at step {step}")
    model.train()

    def snapshot() -> dict:
        return {
            "format": STATE_FORMAT,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "step": step,
            "best": best,
            "piece": piece,
            "losses": list(losses),
            "elapsed_s": elapsed_before + (time.time() - started),
            "numpy_rng": _numpy_state(rng),
            "python_rng": json.dumps(random.getstate()),
            "torch_rng": torch.get_rng_state(),
            "resume_keys": json.dumps(options.resume_keys),
        }

    started = last_save = time.time()
    while time.time() - started < options.minutes * 60 and not _Stop.requested:
        if options.max_steps is not None and step >= options.max_steps:
            break
        count, length = segment_plan(rng, options.batch, options.seconds, options.max_seconds, options.rate)
        targets, inputs = task.batch(rng, count, length)
        loss = task.loss(model, targets, inputs)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        step += 1
        losses.append(loss.item())
        if step % options.eval_every == 0:
            scores = task.validate(model)
            model.train()
            score = scores["val_si_snri"]
            scheduler.step(score)
            entry = {
                "step": step,
                "piece": piece,
                "minutes": round((elapsed_before + time.time() - started) / 60, 1),
                "train_loss": round(float(np.mean(losses)), 3),
                **{k: round(v, 3) for k, v in scores.items()},
                "lr": optimizer.param_groups[0]["lr"],
                "time": datetime.datetime.now().isoformat(timespec="seconds"),
            }
            losses = []
            if score > best:
                best = score
                save_model(model.eval(), options.out)
                model.train()
                entry["saved"] = True
            with open(options.history, "a") as handle:
                handle.write(json.dumps(entry) + "\n")
            report(json.dumps(entry))
            save_state(options.state, snapshot())
            last_save = time.time()
        elif time.time() - last_save > options.save_every_minutes * 60:
            save_state(options.state, snapshot())
            last_save = time.time()
    final = snapshot()
    save_state(options.state, final)
    return {"step": step, "best": best, "elapsed_s": final["elapsed_s"], "piece": piece}


def bound_allocator_growth() -> None:
    """Variable-length batches fragment glibc's heap: measured here, RSS 4.9 GB after 25 steps of
    2-10 s batches (10 GB after an hour) against 0.45 GB with
    a fixed 128 KiB mmap threshold (M_MMAP_THRESHOLD), above which every buffer is mapped on its
    own and given back to the system when freed. Same speed. Other C libraries: left as they are."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD (malloc.h)
    except (OSError, AttributeError):  # not glibc
        pass


def read_history(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def separation_setup(args) -> tuple[ConvTasNetConfig, SeparationTask, object]:
    """The two-speaker demo's (config, task, validation described) from the command line."""
    if args.real:
        train_corpus, valid = Corpus.from_folder(args.real / "train"), Corpus.from_folder(args.real / "valid")
    else:
        train_corpus, valid = Corpus.from_npz(args.corpus / "train.npz"), Corpus.from_npz(args.corpus / "test.npz")
    augmentation = Augmentation(tuple(room_rirs(256, seed=args.seed)), args.reverb_prob) if args.augment else None
    validation = (
        librimix_validation(args.valid_metadata) if args.valid_metadata else validation_set(valid, 64, 4.0, seed=123)
    )
    config = dataclasses.replace(DEMO_CONFIG, causal=True, norm_type=NormType.CLN) if args.causal else DEMO_CONFIG
    teacher = load_model(str(args.teacher))[0].eval() if args.teacher else None
    task = SeparationTask(
        train_corpus, validation, augmentation, args.librimix_levels, teacher, args.distill if teacher else 0.0
    )
    return config, task, [str(p) for p in args.valid_metadata or []] or "64 x 4 s, seed 123"


def denoise_setup(args) -> tuple[ConvTasNetConfig, object, str]:
    """The causal denoiser's (config, task, validation described): train examples drawn on the fly
    from the corpus's train split in 256 simulated rooms, validated on its fixed valid pairs."""
    from denoise_data import DenoiseTask, load_split, read_fixed_set

    if args.teacher or args.causal or args.librimix_levels or args.valid_metadata:
        raise SystemExit(
            "--denoise trains the causal denoiser alone: drop --teacher, --causal, --librimix-levels "
            "and --valid-metadata"
        )
    rooms = tuple(room_rirs(256, seed=args.seed, rate=DENOISE_CONFIG.sample_rate))
    data = load_split(args.denoise, "train", rooms, reverb_prob=args.reverb_prob, speed=0.3)
    validation = read_fixed_set(args.denoise / "valid")
    if not validation:
        raise SystemExit(f"no validation pairs in {args.denoise / 'valid'}: run make_denoise_corpus.py first")
    return DENOISE_CONFIG, DenoiseTask(data, validation), str(args.denoise / "valid")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    corpus = parser.add_mutually_exclusive_group(required=True)
    corpus.add_argument("--real", type=Path, help="corpus/librispeech_8k (train/ and valid/ folders of .ogg)")
    corpus.add_argument("--corpus", type=Path, help="synthetic corpus from make_tts_corpus.py (train.npz, test.npz)")
    corpus.add_argument(
        "--denoise", type=Path, help="train the causal 16 kHz denoiser on this corpus of make_denoise_corpus.py"
    )
    parser.add_argument("--out", type=Path, required=True, help="the best checkpoint (Asteroid format)")
    parser.add_argument("--state", type=Path, help="training state to resume from and save to (default <out>.state.pt)")
    parser.add_argument("--history", type=Path, help="validation history, JSON lines (default <out>.history.jsonl)")
    parser.add_argument("--minutes", type=float, default=60, help="this piece's training time")
    parser.add_argument("--max-steps", type=int, help="stop at this total step count")
    parser.add_argument("--batch", type=int, default=8, help="mixtures per batch at --seconds")
    parser.add_argument(
        "--seconds", type=float, default=2.0, help="training segment length (the shortest with --max-seconds)"
    )
    parser.add_argument("--max-seconds", type=float, help="draw each batch's length in [--seconds, this]")
    parser.add_argument(
        "--librimix-levels",
        action="store_true",
        help="each utterance's level drawn in [-33, -25] dB (LibriMix's range) instead of +-5 dB",
    )
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--set-lr", type=float, help="on resume, set the learning rate (recorded in the history)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        default=2,
        help="torch threads (a resumed piece with the same count continues bit-exactly)",
    )
    parser.add_argument("--reverb-prob", type=float, default=0.6, help="share of sources reverberated (--augment)")
    parser.add_argument("--eval-every", type=int, default=250, help="steps between validations (and checkpoints)")
    parser.add_argument("--save-every", type=float, default=10.0, help="minutes between state saves")
    parser.add_argument(
        "--valid-metadata",
        type=Path,
        nargs="+",
        help="LibriMix metadata CSVs to validate on (default: 64 mixtures of 4 s of the valid speakers)",
    )
    parser.add_argument("--init", type=Path, help="start a new run from this checkpoint (same sizes)")
    parser.add_argument("--teacher", type=Path, help="distil from this model: its estimates are extra targets")
    parser.add_argument("--distill", type=float, default=0.5, help="weight of the teacher's targets (with --teacher)")
    parser.add_argument(
        "--causal",
        action="store_true",
        help="the causal (cLN) variant for streaming; --init may be a non-causal checkpoint of the "
        "same sizes (same weights, other padding and norm statistics)",
    )
    parser.add_argument("--augment", action="store_true", help="reverberation, tilt and noise (real-room conditions)")
    args = parser.parse_args()
    if args.teacher is not None and not 0 < args.distill <= 1:
        raise SystemExit(f"--distill {args.distill}: pass a weight in (0, 1]")
    torch.set_num_threads(args.threads)
    bound_allocator_growth()
    state = args.state or args.out.with_name(args.out.stem + ".state.pt")
    history = args.history or args.out.with_name(args.out.stem + ".history.jsonl")
    if args.denoise:
        config, task, described = denoise_setup(args)
    else:
        config, task, described = separation_setup(args)
    model = ConvTasNet(config).train()
    if args.init and not state.is_file():
        init = load_model(str(args.init))[0].state_dict()
        if args.causal:  # a causal depthwise conv is Sequential(conv, chomp): the same weights one level down
            init = {
                k.replace("shared_block.3.weight", "shared_block.3.0.weight").replace(
                    "shared_block.3.bias", "shared_block.3.0.bias"
                ): v
                for k, v in init.items()
            }
        model.load_state_dict(init)
    resume_keys = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k in RESUME_KEYS}
    options = TrainOptions(
        out=args.out,
        state=state,
        history=history,
        minutes=args.minutes,
        max_steps=args.max_steps,
        batch=args.batch,
        seconds=args.seconds,
        max_seconds=args.max_seconds,
        lr=args.lr,
        set_lr=args.set_lr,
        seed=args.seed,
        eval_every=args.eval_every,
        save_every_minutes=args.save_every,
        librimix_levels=args.librimix_levels,
        rate=config.sample_rate,
        resume_keys=resume_keys,
    )
    initial_best = -np.inf
    if not state.is_file():
        start = {
            "step": 0,
            "event": "start",
            "init": str(args.init),
            "config": config.to_json(),
            "validation": described,
            "n_validation": len(task.validation),
            **resume_keys,
        }
        if args.init:  # a fine-tune's checkpoint is written only when it beats its starting point
            initial_best = start["val_si_snri_init"] = round(task.validate(model)["val_si_snri"], 3)
            model.train()
        history.parent.mkdir(parents=True, exist_ok=True)
        with open(history, "a") as handle:
            handle.write(json.dumps(start) + "\n")
        print(json.dumps(start), flush=True)
    _Stop.install()
    result = train(options, model, None, None, initial_best=initial_best, task=task)
    args.out.with_name(args.out.stem + ".training.json").write_text(
        json.dumps(
            {
                "config": config.to_json(),
                "init": str(args.init),
                "lr": args.lr,
                **resume_keys,
                "best_val_si_snri_db": round(result["best"], 3),
                "steps": result["step"],
                "minutes": round(result["elapsed_s"] / 60, 1),
                "pieces": result["piece"],
                "history": [h for h in read_history(history) if "val_si_snri" in h],
            },
            indent=1,
        )
    )
    written = args.out if args.out.is_file() else "none yet: nothing beat the starting point"
    print(
        f"best validation SI-SNRi {result['best']:.2f} dB after {result['step']} steps "
        f"({result['elapsed_s'] / 60:.1f} min in {result['piece']} piece(s)); state {state}; best {written}"
    )


if __name__ == "__main__":
    main()
