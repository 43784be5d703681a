#!/usr/bin/env python3
"""Trains the compact two-speaker 8 kHz demo ConvTasNet (CPU is fine).

Mixtures are made on the fly from two utterances of different speakers; the loss is negative
SI-SNR with the best permutation (as Asteroid trains ConvTasNet). The best checkpoint by
validation SI-SNRi on held-out speakers is written in Asteroid's format.

Two corpora: the real LibriSpeech speech shipped in `corpus/librispeech_8k/` (``--real``; the
base of the shipped model), and the synthetic TTS corpus (``--corpus``; its pre-training).
``--augment`` adds what recordings have and clean corpora lack: speed/pitch perturbation,
reverberation in simulated rooms (pyroomacoustics, `pip install -e '.[train]'`), spectral
tilt and noise.

    python scripts/train_demo_model.py --real corpus/librispeech_8k --init assets/demo/convtasnet_demo_8k.pth \
        --augment --minutes 80 --out /tmp/real.pth
    python scripts/make_tts_corpus.py --out data/tts_corpus
    python scripts/train_demo_model.py --corpus data/tts_corpus --out /tmp/tts.pth --minutes 60
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from convtasnet_hailo.model.checkpoint import save_model
from convtasnet_hailo.model.config import ConvTasNetConfig, MaskAct, NormType
from convtasnet_hailo.model.convtasnet import ConvTasNet

#: Compact enough for Hailo-8L: 14 blocks, 128 filters, 0.4 M parameters, 0.4 GMAC per second of audio.
DEMO_CONFIG = ConvTasNetConfig(n_src=2, n_filters=128, kernel_size=16, stride=8, bn_chan=64, hid_chan=128,
                               skip_chan=64, conv_kernel_size=3, n_blocks=7, n_repeats=2,
                               norm_type=NormType.GLN, mask_act=MaskAct.RELU, sample_rate=8000)
RATE = 8000


class Corpus:
    """Utterances as one int16 array with offsets, and a speaker id per utterance."""

    def __init__(self, audio: np.ndarray, lengths: np.ndarray, speaker: np.ndarray):
        self.audio = audio
        self.offsets = np.concatenate([[0], np.cumsum(lengths)])
        self.speaker = speaker

    @classmethod
    def from_npz(cls, path: Path) -> "Corpus":
        data = np.load(path)
        return cls(data["audio"], data["lengths"], data["speaker"])

    @classmethod
    def from_folder(cls, folder: Path) -> "Corpus":
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
        return self.audio[self.offsets[index]: self.offsets[index + 1]].astype(np.float32) / 32768


def _crop(wav: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    if len(wav) >= length:
        start = rng.integers(0, len(wav) - length + 1)
        return wav[start: start + length]
    out = np.zeros(length, np.float32)
    start = rng.integers(0, length - len(wav) + 1)
    out[start: start + len(wav)] = wav
    return out


def synthetic_rir(rng: np.random.Generator) -> np.ndarray:
    """A room impulse response: direct path plus exponentially decaying noise, RT60 0.15-0.7 s."""
    rt60 = rng.uniform(0.15, 0.7)
    length = int(rt60 * RATE)
    t = np.arange(length) / RATE
    tail = rng.standard_normal(length) * np.exp(-6.9 * t / rt60) * rng.uniform(0.2, 0.6)
    tail[: int(0.002 * RATE)] = 0
    tail[0] = 1.0
    return (tail / np.sqrt(np.sum(tail ** 2))).astype(np.float32)


def room_rirs(count: int, seed: int) -> list[np.ndarray]:
    """Room impulse responses of simulated shoebox rooms (image method, pyroomacoustics): rooms of
    3-9 m, RT60 0.15-0.7 s, source and microphone at random places at least 0.5 m from walls."""
    import pyroomacoustics as pra

    rng = np.random.default_rng(seed)
    rirs = []
    while len(rirs) < count:
        room_dim = rng.uniform([3, 3, 2.4], [9, 7, 3.5])
        rt60 = rng.uniform(0.15, 0.7)
        try:
            absorption, max_order = pra.inverse_sabine(rt60, room_dim)
        except ValueError:  # a room too large for this RT60
            continue
        room = pra.ShoeBox(room_dim, fs=RATE, materials=pra.Material(absorption), max_order=min(max_order, 20))
        room.add_source(rng.uniform(0.5, room_dim - 0.5))
        room.add_microphone(rng.uniform(0.5, room_dim - 0.5))
        room.compute_rir()
        rir = np.asarray(room.rir[0][0], dtype=np.float64)
        rir = rir[max(0, int(np.argmax(np.abs(rir))) - 8):][: int(0.8 * RATE)]  # direct path first
        rirs.append((rir / np.sqrt(np.sum(rir ** 2))).astype(np.float32))
    return rirs


#: Filled by main() when --augment is given with pyroomacoustics installed.
ROOMS: list[np.ndarray] = []


def perturb_speed(source: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Speed and pitch together, by a factor of 0.9-1.1 (resampling, as Kaldi's speed perturbation)."""
    import soxr

    factor = rng.uniform(0.9, 1.1)
    return soxr.resample(source, RATE * factor, RATE).astype(np.float32)


#: Share of sources reverberated under --augment (--reverb-prob).
REVERB_PROB = [0.6]


def augment(source: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Recorded-room conditions a clean corpus lacks: reverberation and a random spectral tilt."""
    if rng.random() < REVERB_PROB[0]:
        rir = ROOMS[rng.integers(len(ROOMS))] if ROOMS else synthetic_rir(rng)
        source = np.convolve(source, rir)[: len(source)]
    tilt = rng.uniform(-0.6, 0.6)  # first-order emphasis (+) or smoothing (-)
    source = source - tilt * np.concatenate([[0.0], source[:-1]])
    return source.astype(np.float32)


def make_mixture(corpus: Corpus, length: int, rng: np.random.Generator,
                 augmented: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(sources (2, length), mixture (length,)): two speakers, relative gain within +-5 dB;
    with ``augmented``, reverberant and tilted sources plus a little noise in the mixture."""
    first = rng.integers(len(corpus))
    second = rng.integers(len(corpus))
    while corpus.speaker[second] == corpus.speaker[first]:
        second = rng.integers(len(corpus))
    waves = [corpus.utterance(i) for i in (first, second)]
    if augmented:
        waves = [perturb_speed(w, rng) if rng.random() < 0.5 else w for w in waves]
    sources = np.stack([_crop(w, length, rng) for w in waves])
    if augmented:
        sources = np.stack([augment(s, rng) for s in sources])
    sources /= np.sqrt((sources ** 2).mean(axis=1, keepdims=True)) + 1e-8
    sources[1] *= 10 ** (rng.uniform(-5, 5) / 20)
    mixture = sources.sum(axis=0)
    if augmented:
        mixture = mixture + rng.standard_normal(length) * np.sqrt((mixture ** 2).mean()) * 10 ** (-rng.uniform(25, 40) / 20)
    scale = rng.uniform(0.3, 0.9) / (np.abs(mixture).max() + 1e-8)
    return (sources * scale).astype(np.float32), (mixture * scale).astype(np.float32)


def si_snr(estimate: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Zero-mean SI-SNR in dB over the last axis (Asteroid's definition)."""
    estimate = estimate - estimate.mean(-1, keepdim=True)
    target = target - target.mean(-1, keepdim=True)
    projection = (estimate * target).sum(-1, keepdim=True) * target / ((target ** 2).sum(-1, keepdim=True) + eps)
    noise = estimate - projection
    return 10 * torch.log10((projection ** 2).sum(-1) / ((noise ** 2).sum(-1) + eps) + eps)


def pit_si_snr(estimates: torch.Tensor, sources: torch.Tensor) -> torch.Tensor:
    """Mean SI-SNR per mixture under the better of the two permutations. Shape (B, 2, T) -> (B,)."""
    straight = si_snr(estimates, sources).mean(-1)
    swapped = si_snr(estimates.flip(1), sources).mean(-1)
    return torch.maximum(straight, swapped)


def validation_set(corpus: Corpus, count: int, seconds: float, seed: int):
    rng = np.random.default_rng(seed)
    pairs = [make_mixture(corpus, int(seconds * RATE), rng) for _ in range(count)]
    return torch.from_numpy(np.stack([p[0] for p in pairs])), torch.from_numpy(np.stack([p[1] for p in pairs]))


@torch.no_grad()
def si_snri(model: ConvTasNet, sources: torch.Tensor, mixtures: torch.Tensor) -> float:
    model.eval()
    estimates = torch.cat([model(mixtures[i: i + 16]) for i in range(0, len(mixtures), 16)])
    baseline = si_snr(mixtures[:, None].expand_as(sources), sources).mean(-1)
    model.train()
    return float((pit_si_snr(estimates, sources) - baseline).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    corpus = parser.add_mutually_exclusive_group(required=True)
    corpus.add_argument("--real", type=Path, help="corpus/librispeech_8k (train/ and valid/ folders of .ogg)")
    corpus.add_argument("--corpus", type=Path, help="synthetic corpus from make_tts_corpus.py (train.npz, test.npz)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=2.0, help="training segment length")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reverb-prob", type=float, default=0.6, help="share of sources reverberated (--augment)")
    parser.add_argument("--eval-every", type=int, default=250, help="steps between validations (and checkpoints)")
    parser.add_argument("--init", type=Path, help="continue from this checkpoint (same config)")
    parser.add_argument("--causal", action="store_true",
                        help="the causal (cLN) variant for streaming; --init may be a non-causal checkpoint of the "
                             "same sizes (same weights, other padding and norm statistics)")
    parser.add_argument("--augment", action="store_true", help="reverberation, tilt and noise (real-room conditions)")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    if args.real:
        train, valid = Corpus.from_folder(args.real / "train"), Corpus.from_folder(args.real / "valid")
    else:
        train, valid = Corpus.from_npz(args.corpus / "train.npz"), Corpus.from_npz(args.corpus / "test.npz")
    if args.augment:
        ROOMS.extend(room_rirs(256, seed=args.seed))
        REVERB_PROB[0] = args.reverb_prob
    val_sources, val_mix = validation_set(valid, 64, 4.0, seed=123)
    config = dataclasses.replace(DEMO_CONFIG, causal=True, norm_type=NormType.CLN) if args.causal else DEMO_CONFIG
    model = ConvTasNet(config).train()
    if args.init:
        from convtasnet_hailo.model.checkpoint import load_model

        state = load_model(str(args.init))[0].state_dict()
        if args.causal:  # a causal depthwise conv is Sequential(conv, chomp): the same weights one level down
            state = {k.replace("shared_block.3.weight", "shared_block.3.0.weight")
                      .replace("shared_block.3.bias", "shared_block.3.0.bias"): v for k, v in state.items()}
        model.load_state_dict(state)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.5, patience=3)
    rng = np.random.default_rng(args.seed)
    length = int(args.seconds * RATE)
    started, step, best, history = time.time(), 0, -np.inf, []
    while time.time() - started < args.minutes * 60:
        batch = [make_mixture(train, length, rng, args.augment) for _ in range(args.batch)]
        sources = torch.from_numpy(np.stack([b[0] for b in batch]))
        mixtures = torch.from_numpy(np.stack([b[1] for b in batch]))
        loss = -pit_si_snr(model(mixtures), sources).mean()
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        step += 1
        if step % args.eval_every == 0:
            score = si_snri(model, val_sources, val_mix)
            scheduler.step(score)
            history.append({"step": step, "minutes": round((time.time() - started) / 60, 1),
                            "train_si_snr": round(-loss.item(), 2), "val_si_snri": round(score, 2),
                            "lr": optimizer.param_groups[0]["lr"]})
            print(json.dumps(history[-1]), flush=True)
            if score > best:
                best = score
                save_model(model.eval(), args.out)
                model.train()
    args.out.with_suffix(".training.json").write_text(json.dumps(
        {"config": config.to_json(), "corpus": str(args.real or args.corpus), "init": str(args.init),
         "augment": args.augment, "reverb_prob": args.reverb_prob if args.augment else None, "lr": args.lr, "seed": args.seed,
         "best_val_si_snri_db": round(best, 2), "steps": step, "minutes": args.minutes, "batch": args.batch, "segment_seconds": args.seconds, "history": history},
        indent=1))
    print(f"best validation SI-SNRi {best:.2f} dB after {step} steps; wrote {args.out}")


if __name__ == "__main__":
    main()
