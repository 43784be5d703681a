"""Argument text to checked values (argparse ``type=`` converters): each refuses, in argparse's one
line, what no option of this tool can mean (negatives, NaN, infinities, seeds numpy cannot take,
sizes beyond any real one)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be >= 1")
    return value


def sample_rate(text: str) -> int:
    """A sample rate in Hz, as the API and audio files are held to (audio.arrays' range)."""
    from ..audio.arrays import MAX_RATE, MIN_RATE

    value = positive_int(text)
    if not MIN_RATE <= value <= MAX_RATE:
        raise argparse.ArgumentTypeError(f"{value} Hz is not an audio rate: use {MIN_RATE} to {MAX_RATE} (e.g. 8000)")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be >= 0")
    return value


#: numpy's and torch's seeds both take 0 to 2**32 - 1 everywhere this project seeds.
MAX_SEED = 2**32 - 1


def seed_int(text: str) -> int:
    value = non_negative_int(text)
    if value > MAX_SEED:
        raise argparse.ArgumentTypeError(f"{value} is beyond the largest seed, {MAX_SEED}")
    return value


def finite_float(text: str) -> float:
    """A number; nan and inf are refused (one of them would turn a gate off or a size infinite)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number: pass one such as 40 or 0.5")
    return value


#: The largest value a positive float option takes: every one is a duration, a rate or a size, and
#: none is meaningful beyond this (1e308 seconds of audio overflowed a sample count).
MAX_POSITIVE_FLOAT = 1e6


def positive_float(text: str) -> float:
    value = finite_float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{value:g} must be > 0")
    if value > MAX_POSITIVE_FLOAT:
        raise argparse.ArgumentTypeError(
            f"{value:g} is beyond {MAX_POSITIVE_FLOAT:g}, more than any duration or size this takes"
        )
    return value


def override(text: str) -> str:
    """--device-param NAME=VALUE with a finite VALUE (the cost model reads it as a float)."""
    name, equals, value = text.partition("=")
    if not name or not equals:
        raise argparse.ArgumentTypeError(f"{text!r}: use NAME=VALUE")
    finite_float(value)
    return text


def optional_path(text: str | None) -> Path | None:
    return Path(text) if text else None
