"""Noisy speech for the causal denoiser: the mixing shared by `make_denoise_corpus.py` (its fixed
valid and test sets) and `train_demo_model.py --denoise` (its training examples, drawn on the fly).

One example (``noisy_example``): a speech crop, in a simulated room for a share of examples (the
input hears the whole impulse response, the target only its first 50 ms: direct path and early
reflections), a random spectral tilt (target and input alike), plus a noise at an SNR drawn from
-5..15 dB (a recording, a babble of 2-4 other speakers, or with ``synthetic`` a white, pink,
brown or mains-hum noise; sometimes a second noise under the first), the pair then scaled to an
input RMS drawn from -40..-15 dBFS (peak at most 0.99). The loss (``denoise_loss``) is the mean
of SI-SNR and plain SNR against the target, so the output keeps the target's level and sign.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

RATE = 16000
EARLY_S = 0.05
SNR_DB = (-5.0, 15.0)
LEVEL_DBFS = (-40.0, -15.0)


class Pool:
    """Recordings as one int16 array with offsets (``speaker`` per item where it is speech)."""

    def __init__(self, audio: np.ndarray, lengths: np.ndarray, names: np.ndarray, speaker: np.ndarray | None = None):
        self.audio = audio
        self.offsets = np.concatenate([[0], np.cumsum(lengths)])
        self.names = names
        self.speaker = speaker

    @classmethod
    def load(cls, path: Path) -> Pool:
        data = np.load(path)
        return cls(data["audio"], data["lengths"], data["names"], data["speaker"] if "speaker" in data else None)

    def __len__(self) -> int:
        return len(self.names)

    def item(self, index: int) -> np.ndarray:
        return self.audio[self.offsets[index] : self.offsets[index + 1]].astype(np.float32) / 32768


@dataclasses.dataclass(frozen=True)
class DenoiseData:
    """What one split's examples are drawn from. ``babble``: speech to babble from (None: no babble);
    ``synthetic``: share of examples whose noise is synthetic (train only); ``rooms``: impulse
    responses (empty: no rooms); ``speed``: share of speech speed-perturbed."""

    speech: Pool
    noise: Pool
    babble: Pool | None
    rooms: tuple[np.ndarray, ...] = ()
    reverb_prob: float = 0.5
    synthetic: float = 0.2
    speed: float = 0.0


def crop(wave: np.ndarray, length: int, rng: np.random.Generator, loop: bool = False) -> np.ndarray:
    """``length`` samples at a random place; a shorter wave sits at a random place in zeros, or with
    ``loop`` repeats from a random phase."""
    if len(wave) < length and loop:
        wave = np.tile(wave, length // len(wave) + 2)[int(rng.integers(len(wave))) :]
    if len(wave) >= length:
        start = int(rng.integers(0, len(wave) - length + 1))
        return wave[start : start + length].astype(np.float32)
    out = np.zeros(length, np.float32)
    start = int(rng.integers(0, length - len(wave) + 1))
    out[start : start + len(wave)] = wave
    return out


def tilt(wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random first-order spectral tilt: emphasis (+) or smoothing (-) of up to 0.6."""
    a = rng.uniform(-0.6, 0.6)
    return (wave - a * np.concatenate([[0.0], wave[:-1]])).astype(np.float32)


def synthetic_noise(length: int, rng: np.random.Generator) -> np.ndarray:
    """White, pink, brown or mains hum (50 or 60 Hz with harmonics and a little hiss)."""
    kind = rng.integers(4)
    white = rng.standard_normal(length)
    if kind == 0:
        return white.astype(np.float32)
    if kind in (1, 2):
        spectrum = np.fft.rfft(white) / np.maximum(np.arange(length // 2 + 1), 1) ** (0.5 if kind == 1 else 1.0)
        return np.fft.irfft(spectrum, length).astype(np.float32)
    t = np.arange(length) / RATE
    base = rng.choice([50.0, 60.0]) * rng.uniform(0.99, 1.01)
    hum = sum(rng.uniform(0.1, 1) / k * np.sin(2 * np.pi * base * k * t + rng.uniform(0, 6.3)) for k in range(1, 9))
    return (hum + 0.01 * white).astype(np.float32)


def _unit(wave: np.ndarray) -> np.ndarray:
    return wave / (np.sqrt(np.mean(wave.astype(np.float64) ** 2)) + 1e-9)


def babble(pool: Pool, length: int, rng: np.random.Generator, avoid: int | None) -> np.ndarray:
    """2-4 utterances of speakers other than ``avoid``, each at unit RMS, summed."""
    talkers = [int(i) for i in rng.permutation(len(pool)) if pool.speaker is None or pool.speaker[i] != avoid]
    count = int(rng.integers(2, 5))
    return sum(_unit(crop(pool.item(i), length, rng)) for i in talkers[:count]).astype(np.float32)


def one_noise(data: DenoiseData, length: int, rng: np.random.Generator, avoid: int | None) -> tuple[np.ndarray, str]:
    """(noise, name): synthetic, babble or a recording, with a random tilt."""
    draw = rng.random()
    if draw < data.synthetic:
        return tilt(synthetic_noise(length, rng), rng), "synthetic"
    if data.babble is not None and draw < data.synthetic + 0.2:
        return tilt(babble(data.babble, length, rng, avoid), rng), "babble"
    index = int(rng.integers(len(data.noise)))
    return tilt(crop(data.noise.item(index), length, rng, loop=True), rng), str(data.noise.names[index])


def room(speech: np.ndarray, data: DenoiseData, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(reverberant speech the microphone hears, target: direct path and the first 50 ms)."""
    if not data.rooms or rng.random() >= data.reverb_prob:
        return speech, speech
    rir = data.rooms[int(rng.integers(len(data.rooms)))]
    early = rir[: int(np.argmax(np.abs(rir))) + int(EARLY_S * RATE)]
    return (
        np.convolve(speech, rir)[: len(speech)].astype(np.float32),
        np.convolve(speech, early)[: len(speech)].astype(np.float32),
    )


def noisy_example(data: DenoiseData, length: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, dict]:
    """(target (length,), noisy (length,), what was drawn) of one example."""
    index = int(rng.integers(len(data.speech)))
    speech = data.speech.item(index)
    if rng.random() < data.speed:
        import soxr

        speech = soxr.resample(speech, RATE * rng.uniform(0.9, 1.1), RATE).astype(np.float32)
    heard, target = room(crop(speech, length, rng), data, rng)
    reverberant = heard is not target
    a = rng.uniform(-0.6, 0.6)  # one tilt for input and target (a microphone's colour)
    heard, target = (w - a * np.concatenate([[0.0], w[:-1]]) for w in (heard, target))
    speaker = int(data.speech.speaker[index]) if data.speech.speaker is not None else None
    noise, name = one_noise(data, length, rng, speaker)
    noise = _unit(noise)
    if rng.random() < 0.3:
        second, other = one_noise(data, length, rng, speaker)
        noise = _unit(noise + _unit(second) * 10 ** (-rng.uniform(0, 6) / 20))
        name = f"{name}+{other}"
    snr = float(rng.uniform(*SNR_DB))
    power = np.sqrt(np.mean(heard.astype(np.float64) ** 2)) + 1e-9
    noisy = heard + noise * power * 10 ** (-snr / 20)
    scale = 10 ** (rng.uniform(*LEVEL_DBFS) / 20) / (np.sqrt(np.mean(noisy**2)) + 1e-9)
    scale = min(scale, 0.99 / (np.abs(noisy).max() + 1e-9))
    info = {"speech": str(data.speech.names[index]), "noise": name, "snr_db": round(snr, 2), "reverberant": reverberant}
    return (target * scale).astype(np.float32), (noisy * scale).astype(np.float32), info


def snr(estimate: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Plain SNR in dB over the last axis: level and sign count."""
    return 10 * torch.log10((target**2).sum(-1) / (((target - estimate) ** 2).sum(-1) + eps) + eps)


def denoise_loss(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """-(SI-SNR + SNR) / 2, mean over the batch. estimate (B, 1, T), target (B, T)."""
    from train_demo_model import si_snr

    return -(si_snr(estimate[:, 0], target) + snr(estimate[:, 0], target)).mean() / 2


def load_split(corpus: Path, split: str, rooms: tuple[np.ndarray, ...] = (), **options) -> DenoiseData:
    """A split of `make_denoise_corpus.py`'s corpus: train babbles its own speakers, valid its babble set."""
    speech = Pool.load(corpus / f"speech_{split}.npz")
    babble_path = corpus / f"speech_{split}_babble.npz"
    babble_pool = speech if split == "train" else (Pool.load(babble_path) if babble_path.is_file() else None)
    return DenoiseData(speech, Pool.load(corpus / f"noise_{split}.npz"), babble_pool, rooms, **options)


def write_fixed_set(
    out: Path,
    split: str,
    count: int,
    seconds: float,
    rng: np.random.Generator,
    babble_set: str | None = None,
    reverb_prob: float = 0.5,
) -> list[dict]:
    """``count`` pairs of a held-out split as ``<out>/<split>/{mix_single,s1}/<id>.wav`` (16 kHz,
    float), ``reverb_prob`` of them in rooms simulated for this split alone. Returns the manifest
    rows."""
    import soundfile as sf
    from train_demo_model import room_rirs

    rooms = tuple(room_rirs(16, seed=1000 + len(split), rate=RATE))
    babble_pool = Pool.load(out / f"speech_{babble_set}.npz") if babble_set else None
    data = DenoiseData(
        Pool.load(out / f"speech_{split}.npz"),
        Pool.load(out / f"noise_{split}.npz"),
        babble_pool,
        rooms,
        reverb_prob=reverb_prob,
        synthetic=0.1 if split == "test" else 0.0,
    )
    rows = []
    for k in range(count):
        target, noisy, info = noisy_example(data, int(seconds * RATE), rng)
        stem = f"{split}_{k:03d}"
        for folder, audio in (("mix_single", noisy), ("s1", target)):
            (out / split / folder).mkdir(parents=True, exist_ok=True)
            sf.write(out / split / folder / f"{stem}.wav", audio, RATE, subtype="FLOAT")
        rows.append({"id": stem, **info})
    (out / split / "pairs.json").write_text(json.dumps(rows, indent=1))
    return rows


def read_fixed_set(folder: Path) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """[(target (T,), noisy (T,))] of a fixed set written by ``write_fixed_set``."""
    import soundfile as sf

    pairs = []
    for path in sorted((folder / "mix_single").glob("*.wav")):
        noisy = sf.read(path, dtype="float32")[0]
        target = sf.read(folder / "s1" / path.name, dtype="float32")[0]
        pairs.append((torch.from_numpy(target), torch.from_numpy(noisy)))
    return pairs


@dataclasses.dataclass(frozen=True)
class DenoiseTask:
    """The denoiser's training task for `train_demo_model.train`: examples drawn from ``data``,
    ``denoise_loss``, and validation on fixed pairs (SI-SNRi, and the output's plain SNR)."""

    data: DenoiseData
    validation: list

    def batch(self, rng: np.random.Generator, count: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(targets (B, T), noisy (B, T))."""
        pairs = [noisy_example(self.data, length, rng)[:2] for _ in range(count)]
        return torch.from_numpy(np.stack([p[0] for p in pairs])), torch.from_numpy(np.stack([p[1] for p in pairs]))

    def loss(self, model, targets: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        return denoise_loss(model(inputs), targets)

    @torch.no_grad()
    def validate(self, model) -> dict:
        """Mean SI-SNRi and mean output SNR (dB) over the fixed pairs, one at a time."""
        from train_demo_model import si_snr

        model.eval()
        gains, snrs = [], []
        for target, noisy in self.validation:
            estimate = model(noisy[None])[:, 0]
            gains.append(float(si_snr(estimate, target[None]) - si_snr(noisy[None], target[None])))
            snrs.append(float(snr(estimate, target[None])))
        return {"val_si_snri": float(np.mean(gains)), "val_snr": float(np.mean(snrs))}
