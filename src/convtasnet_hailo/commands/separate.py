"""`separate`: every input through the stitched path into ``<stem>_s<i>.wav`` files and
``separate_run.json`` (`enhance` runs the same loop for one-output models).

Each file is written as it finishes, atomically, and the run JSON lists the finished files after
each one, so an interrupted batch keeps everything it finished; nothing is left for ``write``."""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

from ..audio.blocks import ScannedAudio
from ..audio.level import LevelMatch
from ..guard import check_run_files
from ..runs.run_folder import make_out_folder, write_json
from ..runtime import RunSpec, open_run
from ..runtime.separator import StitchedSeparator
from ..separation.inputs import scan_inputs
from ..separation.segments import SegmentPolicy
from ..separation.separate import output_paths, refuse_unless_separable, separated_blocks
from ..separation.written import write_sources

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Request:
    """``separate`` / ``enhance``: every input through ``spec``'s run into the folder ``out``.
    ``subtype``: the WAVs' sample format; ``raw_output`` (enhance): keep the model's own level and
    sign instead of the input's."""

    spec: RunSpec
    inputs: tuple[str, ...]
    out: Path
    policy: SegmentPolicy = SegmentPolicy()
    subtype: str = "PCM_16"
    raw_output: bool = False


@dataclasses.dataclass(frozen=True)
class FileRecord:
    """One finished input: what was done to it on reading (``notes``), how it was cut, how long it
    took, the gain applied so PCM does not clip, the level match (enhance) and its outputs."""

    input: str
    seconds_of_audio: float
    notes: tuple[str, ...]
    segment_seconds: float | None
    overlap_seconds: float | None
    processing_seconds: float
    gain: float
    level: LevelMatch | None
    outputs: tuple[Path, ...]

    @property
    def real_time_factor(self) -> float:
        return self.processing_seconds / self.seconds_of_audio

    def to_json(self) -> dict:
        return {
            "input": self.input,
            "seconds_of_audio": round(self.seconds_of_audio, 3),
            "notes": list(self.notes),
            "segment_seconds": self.segment_seconds,
            "overlap_seconds": self.overlap_seconds,
            "processing_seconds": round(self.processing_seconds, 3),
            "gain": self.gain,
            **({"level": self.level.to_json()} if self.level is not None else {}),
            "real_time_factor": round(self.real_time_factor, 4),
            "outputs": [str(f) for f in self.outputs],
        }


@dataclasses.dataclass(frozen=True)
class SeparateResult:
    """The finished files of a `separate` (or `enhance`) run, in input order; ``run_info``: what
    the run JSON records about the run (``RunSpec.info``)."""

    command: str
    out: Path
    files: tuple[FileRecord, ...]
    run_info: dict
    sample_rate: int
    subtype: str
    n_inputs: int

    exit_status = 0

    @property
    def run_json(self) -> Path:
        return self.out / f"{self.command}_run.json"

    def to_json(self) -> dict:
        return {
            **self.run_info,
            "sample_rate": self.sample_rate,
            "subtype": self.subtype,
            "n_inputs": self.n_inputs,
            "complete": len(self.files) == self.n_inputs,
            "files": [f.to_json() for f in self.files],
        }

    def lines(self) -> list[str]:
        audio = sum(f.seconds_of_audio for f in self.files)
        seconds = sum(f.processing_seconds for f in self.files)
        rtf = seconds / audio if audio else float("nan")
        return [
            f"{self.command}: {len(self.files)} file(s), {audio:.1f} s of audio in {seconds:.2f} s (RTF "
            f"{rtf:.3f}) -> {self.out} ({self.run_json.name})"
        ]


def separate_one(
    separator: StitchedSeparator,
    request: Request,
    path: str,
    audio: ScannedAudio,
    files: list[Path],
    suffix: str | None,
) -> FileRecord:
    """One checked input separated and written as it is separated (``separation.written``: the
    input read, and each source written, block by block; renamed into place at the end). Outputs
    that would clip in a PCM subtype are scaled down together (a warning, and ``gain`` in the
    record); ``enhance`` (``suffix``) brings the output to the input's speech level and polarity
    (``audio.level``) unless the request keeps the raw output."""
    policy = request.policy
    for note in audio.notes:
        log.info(f"{path}: {note}")
    segment = policy.segment_seconds(audio.seconds)
    started = time.perf_counter()
    blocks = separated_blocks(separator, audio, segment, policy.overlap_seconds, Path(path).name)
    match_level = bool(suffix) and not request.raw_output
    written = write_sources(blocks, files, separator.config.sample_rate, request.subtype, match_level, str(path))
    seconds = time.perf_counter() - started
    if written.gain != 1.0:
        log.warning(
            f"{path}: the separated sources peak at {1 / written.gain * 0.99:.3g}, beyond what {request.subtype} "
            f"holds; scaled by {written.gain:.3g} (all sources alike) instead of clipping. Pass --subtype FLOAT to "
            "keep them"
        )
    return FileRecord(
        str(path),
        audio.seconds,
        tuple(audio.notes),
        segment,
        policy.overlap_seconds if segment else None,
        seconds,
        written.gain,
        written.level if suffix else None,
        tuple(files),
    )


def separate_files(request: Request, command: str, suffix: str | None) -> SeparateResult:
    """Every input checked (read block by block, nothing kept; the pass's memory too), every
    output named and guarded and the --out folder made, all before the run opens (an onnxruntime
    export is work); then each file separated as it is read again, written, and listed in the run
    JSON as it finishes (``complete`` turns true at the end)."""
    spec, out = request.spec, request.out
    targets = output_paths(list(request.inputs), out, spec.config.n_src, suffix)
    mixtures = scan_inputs(request.inputs, spec.config)
    refuse_unless_separable(request.inputs, mixtures, request.policy, spec.config)
    check_run_files(
        spec.source.given() + spec.backend.given() + [("the input", p) for p in request.inputs],
        [t for files in targets for t in files] + [out / f"{command}_run.json"],
    )
    make_out_folder(out)
    if spec.scratch is None:  # onnxruntime's own export goes into the command's output
        spec = dataclasses.replace(spec, scratch=out / "onnx")
    with open_run(spec) as run:
        result = SeparateResult(
            command, out, (), run.spec.info(), spec.config.sample_rate, request.subtype, len(request.inputs)
        )
        write_json(result.run_json, result.to_json())
        for path, audio, files in zip(request.inputs, mixtures, targets, strict=False):
            record = separate_one(run.separator(), request, path, audio, files, suffix)
            result = dataclasses.replace(result, files=(*result.files, record))
            write_json(result.run_json, result.to_json())
            what = "enhanced" if suffix else f"{len(files)} sources"
            log.info(
                f"{path}: {what} in {record.processing_seconds:.2f} s (RTF {record.real_time_factor:.3f}) -> {out}"
            )
    return result


def run(request: Request) -> SeparateResult:
    """One ``<stem>_s<i>.wav`` per source and input, and ``separate_run.json``."""
    return separate_files(request, "separate", None)


def write(result: SeparateResult) -> None:
    """Nothing left to write: each file and the run JSON were written as they finished."""
