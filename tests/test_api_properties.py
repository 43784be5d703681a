"""A property of the Python API (issue 39): whatever it is handed (random shapes, dtypes, NaN,
Inf and huge values placed at random, rates, and streams driven in random call orders), every
result is either the reference model's output for the input as soundfile would read it (within
the float contract) or a one-line UserError, and it refuses exactly what the test's own rules
call wrong. A seeded random driver (hypothesis is not a dependency): a failure names its seed.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from convtasnet_hailo import Separator, StreamingSeparator
from convtasnet_hailo.audio.io import resample
from convtasnet_hailo.errors import UserError
from convtasnet_hailo.model.checkpoint import load_model, save_model
from convtasnet_hailo.model.config import NormType
from convtasnet_hailo.model.random_init import random_model
from convtasnet_hailo.runtime.separator import reference_separation
from tests.conftest import TINY, assert_within_contract, speech_like

RATE = 8000
KERNEL = TINY.kernel_size
#: The divisor soundfile uses for each signed PCM dtype (what the test expects the API to apply).
PCM = {np.int8: 2.0**7, np.int16: 2.0**15, np.int32: 2.0**31}
REFUSED_DTYPES = (np.int64, np.uint8, np.uint16, np.bool_, np.complex64)
FLOATS = (np.float16, np.float32, np.float64)


@dataclasses.dataclass
class Draw:
    """One input: the array handed to the API, its parameters, and what the API must make of it
    (``expected`` mono float64 at ``rate``, or None where it must refuse)."""

    wav: object
    rate: object
    channel_axis: object
    expected: np.ndarray | None
    why: str


def _samples(rng: np.random.Generator, length: int, channels: int) -> np.ndarray:
    """(T, C) float64 speech-like samples in [-0.6, 0.6]."""
    base = speech_like(max(length, 1) / RATE, RATE, int(rng.integers(1000)))[:length].astype(np.float64)
    return np.stack([base * (1.0 - 0.3 * c) for c in range(channels)], axis=1)


def _poison(rng: np.random.Generator, frames: np.ndarray) -> str:
    """NaN, Inf or a huge value at a random place (in place), or nothing; says which."""
    kind = rng.choice(["none"] * 9 + ["nan", "inf", "huge"])
    if kind != "none" and frames.size:
        value = {"nan": np.nan, "inf": -np.inf, "huge": 1e6}[kind]
        frames[rng.integers(len(frames)), rng.integers(frames.shape[1])] = value
    return kind


def _typed(rng: np.random.Generator, frames: np.ndarray) -> tuple[np.ndarray, float | None, str]:
    """``frames`` in a random dtype: (array, its divisor, why refused or "")."""
    choice = rng.integers(12)
    if choice < 5:
        dtype = FLOATS[choice % 3]
        with np.errstate(over="ignore"):  # float16 makes Inf of a huge value: refused as Inf
            return frames.astype(dtype), 1.0, ""
    if choice < 10:
        dtype = list(PCM)[(choice - 5) % 3]
        scale = PCM[dtype]
        pcm = np.clip(np.nan_to_num(frames), -1.0, 1.0)  # an integer holds no NaN
        return np.round(pcm * (scale - 1)).astype(dtype), scale, ""
    dtype = REFUSED_DTYPES[rng.integers(len(REFUSED_DTYPES))]
    return np.clip(np.nan_to_num(frames), -1, 1).astype(dtype), None, f"dtype {np.dtype(dtype)}"


def draw(rng: np.random.Generator) -> Draw:
    short = [0, 1, KERNEL - 1, KERNEL, KERNEL + 1]
    length = int(rng.choice(short)) if rng.random() < 0.2 else int(rng.integers(KERNEL, 3000))
    channels = int(rng.choice([1, 1, 2, 2, 3]))
    layouts = ["mono", "tc", "tc", "ct", "ct", "tc-no-axis", "ct-wrong-axis", "3d"]
    layout = rng.choice(layouts) if channels > 1 else "mono"
    frames = _samples(rng, length, channels)
    poison = _poison(rng, frames)
    array, divisor, refused = _typed(rng, frames)
    wav, axis = {
        "mono": (array[:, 0], None),
        "tc": (array, 1),
        "ct": (array.T, 0),
        "tc-no-axis": (array, None),
        "ct-wrong-axis": (array.T, 1),
        "3d": (array[None], 1),
    }[str(layout)]
    rate = rng.choice([None, None, None, RATE, RATE, 16000, 0, 8000.5])
    scaled = (array.real if array.dtype.kind == "c" else array).astype(np.float64) / (divisor or 1.0)
    if layout == "mono":
        scaled = scaled[:, :1]  # what is handed over: the first channel
    mono = scaled.mean(axis=1)
    why = refused or (
        "layout" if layout in ("tc-no-axis", "ct-wrong-axis", "3d") or (layout != "mono" and channels > 2) else ""
    )
    if not why and divisor == 1.0 and poison != "none" and length and not np.isfinite(scaled).all():
        why = poison
    if not why and divisor == 1.0 and np.abs(scaled).max(initial=0.0) > 2.0**15:
        why = "beyond +-32768"
    if not why and rate in (0, 8000.5):
        why = f"rate {rate}"
    if not why and rate == 16000:
        mono = resample(mono.astype(np.float32), 16000, RATE).astype(np.float64)
    if not why and len(mono) < KERNEL:
        why = "shorter than a window"
    return Draw(wav, None if rate is None else rate, axis, None if why else mono, why)


def _one_line(exc: UserError) -> None:
    assert str(exc) and "\n" not in str(exc), repr(str(exc))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("property")
    offline, causal = folder / "tiny.pth", folder / "causal.pth"
    save_model(random_model(TINY, seed=11), offline)
    save_model(random_model(dataclasses.replace(TINY, causal=True, norm_type=NormType.CLN), seed=2), causal)
    return (offline, load_model(str(offline))[0]), (causal, load_model(str(causal))[0])


def test_separate_returns_the_reference_or_refuses_in_one_line(models):
    (checkpoint, model), _ = models
    rng = np.random.default_rng(39)
    seen = {"accepted": 0, "refused": 0}
    with Separator.from_checkpoint(checkpoint, tile_w=16) as separator:
        for index in range(120):
            case = draw(rng)
            try:
                out = separator.separate(case.wav, case.rate, channel_axis=case.channel_axis)
            except UserError as exc:
                _one_line(exc)
                assert case.expected is None, f"draw {index}: refused a good input: {exc}"
                seen["refused"] += 1
                continue
            assert case.expected is not None, f"draw {index}: accepted what must be refused ({case.why})"
            assert_within_contract(out, reference_separation(model, case.expected.astype(np.float32)), f"draw {index}")
            seen["accepted"] += 1
    assert min(seen.values()) >= 20, seen  # both sides of the property were exercised


def _stream_bad_hop(rng: np.random.Generator, hop: int) -> np.ndarray:
    bad = speech_like(hop / RATE, RATE, int(rng.integers(1000)))[:hop].copy()
    kind = rng.integers(4)
    if kind == 0:
        bad[rng.integers(hop)] = np.nan
        return bad
    if kind == 1:
        return np.stack([bad, bad], axis=1)
    if kind == 2:
        return bad[: int(rng.integers(1, hop))]
    bad[rng.integers(hop)] = 1e9
    return bad


def _drive(streamer: StreamingSeparator, rng: np.random.Generator) -> tuple[list, list]:
    """Random pushes (good, bad, empty), then finish: (accepted input pieces, output pieces)."""
    hop, taken, out = streamer.hop, [], []
    for _ in range(int(rng.integers(2, 10))):
        move = rng.integers(5)
        if move == 0:
            with pytest.raises(UserError) as refused:
                streamer.push(_stream_bad_hop(rng, hop))
            _one_line(refused.value)
            continue
        block = speech_like(3 * hop / RATE, RATE, int(rng.integers(1000)))[: hop * int(rng.integers(0, 4))]
        if move == 1:
            block = np.round(block * 32767).astype(np.int16)
        out.append(streamer.push(block))
        taken.append(block / 32768.0 if block.dtype == np.int16 else block)
    last = speech_like(1.0, RATE, 7)[: int(rng.integers(0, hop))]
    out.append(streamer.finish(last))
    taken.append(last)
    return taken, out


def test_streams_in_random_orders_return_the_reference_or_refuse_in_one_line(models):
    _, (checkpoint, model) = models
    rng = np.random.default_rng(3939)
    for index in range(6):
        streamer = StreamingSeparator.from_checkpoint(checkpoint, hop_ms=8)
        _check_stream(streamer, model, rng, index)


def _check_stream(streamer: StreamingSeparator, model, rng: np.random.Generator, index: int) -> None:
    """One stream: its output equals the reference on the accepted samples; after finish (and
    perhaps close), finish() gives (n_src, 0) or a one-line refusal, push a one-line refusal."""
    taken, out = _drive(streamer, rng)
    wav = np.concatenate(taken).astype(np.float32)
    if len(wav) >= KERNEL:
        assert_within_contract(np.concatenate(out, axis=-1), reference_separation(model, wav), f"stream {index}")
    after = [streamer.finish, lambda: streamer.push(np.zeros(streamer.hop, np.float32))]
    if rng.integers(2):
        streamer.close()
    for call in after[int(rng.integers(2)) :]:
        try:
            result = call()
        except UserError as exc:
            _one_line(exc)
            continue
        assert call is after[0] and result.shape == (streamer.n_src, 0), "only a second finish() returns"
    streamer.close()
