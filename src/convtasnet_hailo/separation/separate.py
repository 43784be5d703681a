"""Separating recordings whole or in segments, and naming what a batch of them writes (the
`separate` and `enhance` commands run these)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..audio.blocks import ScannedAudio, model_rate_blocks
from ..errors import UserError
from ..resources import refuse_unless_fits
from ..runs.run_folder import check_out_folder
from ..runtime.separator import StitchedSeparator, segment_starts, stitched_blocks
from .segments import SegmentPolicy

#: Inputs longer than this get a progress bar (on a terminal).
PROGRESS_SECONDS = 30.0


def _progress(total: int, label: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=label, unit="step", leave=False, disable=None if enabled else True)


def separated_blocks(
    separator: StitchedSeparator, audio: ScannedAudio, segment: float | None, overlap: float, label: str
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One file's (mixture (k,), estimates (n_src, k)) blocks, in order: whole (``segment`` None,
    one block) or in segments of ``segment`` seconds overlapping by ``overlap``, the input read
    block by block and each block yielded once final (``runtime.separator.stitched_blocks``), so
    that a segmented file is never held whole."""
    rate = audio.rate
    if segment is None:
        wav = np.concatenate(list(model_rate_blocks(audio)))
        with _progress(separator.n_steps, label, audio.seconds > PROGRESS_SECONDS) as bar:
            estimates = separator(wav, on_step=bar.update)
        yield wav, estimates
        return
    seg, ov = round(segment * rate), round(overlap * rate)
    with _progress(len(segment_starts(audio.frames, seg, ov)), label, True) as bar:
        yield from stitched_blocks(separator, model_rate_blocks(audio), audio.frames, seg, ov, on_segment=bar.update)


def output_paths(paths: list[str], out: Path, n_src: int, suffix: str | None = None) -> list[list[Path]]:
    """``out/<stem>_s<i>.wav`` per input (``out/<stem>_<suffix>.wav`` with ``suffix``, for one
    output); refuses, before any work, an ``--out`` that is a file and two inputs that would
    write the same files (what else they would overwrite is ``guard``'s to say)."""

    def name(stem: str, i: int) -> str:
        return f"{stem}_{suffix}.wav" if suffix else f"{stem}_s{i}.wav"

    check_out_folder(out)
    by_stem: dict[str, str] = {}
    for path in paths:
        stem = Path(path).stem
        if stem in by_stem:
            raise UserError(
                f"{by_stem[stem]} and {path} would both write {name(stem, 1)}; rename one, or process "
                "them into different --out folders"
            )
        by_stem[stem] = path
    return [[out / name(Path(path).stem, i) for i in range(1, n_src + 1)] for path in paths]


def refuse_unless_separable(paths, mixtures: list[ScannedAudio], policy: SegmentPolicy, config) -> None:
    """Each file's pass (whole, or its longest segment) must fit in memory."""
    for path, audio in zip(paths, mixtures, strict=False):
        segment = policy.segment_seconds(audio.seconds)
        samples = audio.frames if segment is None else min(audio.frames, round(segment * audio.rate))
        whole = "whole" if segment is None else "in segments"
        refuse_unless_fits(
            config.forward_bytes(samples),
            f"separating {path} ({whole}, {samples / audio.rate:.0f} s at once)",
            "separate it in shorter segments (--segment 30)",
        )
