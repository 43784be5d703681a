"""Step 3, the calibration split: CALIB (files, folders of them or LibriMix metadata CSVs, as
``quantization.datasets.recordings`` reads them) split into calibration audio (the ranges, for
`noise` and compile alike) and held-out judging audio (the precision advice is judged on it and
the quantization loss measured on it), by a seeded draw that the record states. The calibration
mixtures are written at the model's rate into ``BUILD/calib/audio`` so the compile, here or on
the compiler's machine after ``--resume``, reads the very same samples. The draw itself is
``quantization.datasets.split_calibration``, the one `noise` uses."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from ..errors import UserError
from ..quantization.datasets import Recording, recordings

log = logging.getLogger(__name__)

#: Where the calibration mixtures go in the build folder.
AUDIO_DIR = Path("calib") / "audio"


@dataclasses.dataclass(frozen=True)
class CalibSplit:
    """The two sets (recordings as found), the seed and share that drew them, the rates found."""

    calibration: tuple[Recording, ...]
    heldout: tuple[Recording, ...]
    seed: int
    heldout_share: float
    rates: dict[int, int]  # sample rate -> recordings at it

    def to_json(self) -> dict:
        return {
            "seed": self.seed,
            "heldout_share": self.heldout_share,
            "calibration": [str(r.path) for r in self.calibration],
            "heldout": [str(r.path) for r in self.heldout],
            "heldout_with_sources": all(r.sources for r in self.heldout),
            "rates": {str(k): v for k, v in sorted(self.rates.items())},
        }

    def line(self) -> str:
        return (
            f"{len(self.calibration)} recording(s) for calibration, {len(self.heldout)} held out for judging "
            f"(a {self.heldout_share:.0%} share drawn with seed {self.seed})"
        )


def split_calibration(specs: tuple[str, ...], n_src: int, share: float, seed: int) -> CalibSplit:
    """The recordings of ``specs`` split: ``round(share * n)`` (at least one) held out, drawn with
    ``seed`` (``quantization.datasets.split_calibration``); refused (one line) below two recordings."""
    from ..quantization.datasets import split_calibration as draw

    found = recordings(list(specs), n_src, what="--calib")
    calibration, heldout = draw(found, share, seed)
    return CalibSplit(tuple(calibration), tuple(heldout), seed, share, _rates(found))


def _rates(found: list[Recording]) -> dict[int, int]:
    import soundfile as sf

    rates: dict[int, int] = {}
    for recording in found:
        try:
            rate = sf.info(str(recording.path)).samplerate
        except (RuntimeError, sf.LibsndfileError) as exc:
            raise UserError(f"--calib {recording.path}: cannot read it ({exc}); pass audio files") from None
        rates[rate] = rates.get(rate, 0) + 1
    return rates


def warn_rates(split: CalibSplit, model_rate: int) -> str | None:
    """One warning naming both rates when any recording is not at the model's rate (resampled)."""
    other = {rate: n for rate, n in split.rates.items() if rate != model_rate}
    if not other:
        return None
    total = sum(split.rates.values())
    named = ", ".join(f"{n} at {rate} Hz" for rate, n in sorted(other.items()))
    line = (
        f"--calib: {named} of {total} recording(s), the model runs at {model_rate} Hz: resampled to {model_rate} Hz"
        + (
            f"; audio below {model_rate} Hz holds nothing above half its rate, so the ranges miss the model's upper "
            f"band: pass audio recorded at {model_rate} Hz or more"
            if min(other) < model_rate
            else ""
        )
    )
    log.warning(line)
    return line


def write_calibration_audio(split: CalibSplit, rate: int, out: Path) -> list[str]:
    """The calibration mixtures at ``rate`` as float WAV files in ``out``/calib/audio (replaced
    whole); their paths, in order."""
    import shutil

    from ..audio.io import save_audio
    from ..quantization.datasets import load_mixtures

    folder = out / AUDIO_DIR
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    written = []
    for index, wav in enumerate(load_mixtures(list(split.calibration), rate, "--calib")):
        path = folder / f"calib_{index:04d}.wav"
        save_audio(path, wav, rate, subtype="FLOAT")
        written.append(str(path))
    return written
