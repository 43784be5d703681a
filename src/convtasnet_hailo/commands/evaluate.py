"""`evaluate`: SI-SNR(i), PESQ, STOI and parity over the mixtures a LibriMix metadata CSV lists,
one task per mixture through the executor seam (local, or a Ray cluster), into a new run folder
in ``--out``, or the interrupted one ``--resume`` names.

Every listed file is checked before the first mixture is separated. ``evaluate_run.json`` (what
the run evaluates: written first, the marker of its run folders), then
``evaluate_per_utterance.csv`` (a row appended as each mixture finishes), and at the end
``evaluate_summary.json`` (in ``write``, always from the CSV, so a resumed run and an
uninterrupted one summarize the same numbers). Exit 1 when any mixture breaks the contract or
fails."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from ..audio.librimix import MixtureEntry, read_metadata_noted
from ..errors import UserError
from ..guard import check_run_files
from ..runs.run_folder import LATEST, new_run_dir, resume_folder, write_json
from ..runtime import RunSpec
from ..separation.evaluation import (
    CSV_FILE,
    RUN_FILE,
    check_listed_audio,
    evaluate_entries,
    separator_for,
    start_run,
    summarize,
)
from ..tasks.base import TaskFailure
from ..tasks.options import ExecutorOptions, open_executor

log = logging.getLogger(__name__)

SUMMARY_FILE = "evaluate_summary.json"


@dataclasses.dataclass(frozen=True)
class Request:
    """The first ``limit`` mixtures a LibriMix metadata CSV lists, through ``spec``'s run, into a
    new run folder in ``runs_dir``; ``resume``: None, ``"latest"`` (the newest run in
    ``runs_dir``) or the folder of an interrupted run."""

    spec: RunSpec
    metadata: Path
    limit: int | None = None
    runs_dir: Path = Path("module_runs")
    executor: ExecutorOptions = ExecutorOptions()
    resume: str | None = None


@dataclasses.dataclass(frozen=True)
class Stat:
    mean: float
    median: float


@dataclasses.dataclass(frozen=True)
class EvaluateResult:
    """What the run folder's CSV holds, summarized (``record``: ``evaluate_summary.json``)."""

    run_dir: Path
    n_mixtures: int
    si_snri_db: Stat | None
    pesq: tuple[Stat, Stat] | None  # (output, mixture)
    stoi: tuple[Stat, Stat] | None
    parity_max_abs: float
    parity_all_ok: bool
    failed: tuple[TaskFailure, ...]
    record: dict

    @property
    def exit_status(self) -> int:
        return 0 if self.parity_all_ok and not self.failed else 1

    def to_json(self) -> dict:
        return self.record

    def lines(self) -> list[str]:
        lines = []
        if self.n_mixtures:
            quality = "".join(
                f", {label} mean {pair[0].mean:.2f} (mixture {pair[1].mean:.2f})"
                for label, pair in (("PESQ", self.pesq), ("STOI", self.stoi))
                if pair
            )
            lines.append(
                f"{self.n_mixtures} mixtures: SI-SNRi mean {self.si_snri_db.mean:.2f} dB, median "
                f"{self.si_snri_db.median:.2f} dB{quality}; parity max_abs {self.parity_max_abs:.1e}; "
                f"{self.run_dir}"
            )
        if self.failed:
            lines.append(
                f"{len(self.failed)} mixture(s) failed (listed in {SUMMARY_FILE}; --resume {self.run_dir} retries them)"
            )
        return lines


def _stat(value: dict | None) -> Stat | None:
    return None if value is None else Stat(value["mean"], value["median"])


def _pair(record: dict, key: str) -> tuple[Stat, Stat] | None:
    output, mixture = _stat(record[key]), _stat(record[key + "_mixture"])
    return (output, mixture) if output and mixture else None


def _result(run_dir: Path, rows: list[dict], failures: list[TaskFailure], run_info: dict) -> EvaluateResult:
    record = summarize(rows, run_info) | {
        "failed": [
            {"mixture_ID": f.key, "error": f"{f.error_type}: {f.message}", "attempts": f.attempts} for f in failures
        ]
    }
    return EvaluateResult(
        run_dir,
        record["n_mixtures"],
        _stat(record["si_snri_db"]),
        _pair(record, "pesq"),
        _pair(record, "stoi"),
        record["parity_max_abs"],
        record["parity_all_ok"],
        tuple(failures),
        record,
    )


def _entries(request: Request, resume: Path | None) -> list[MixtureEntry]:
    """The listed mixtures, every file checked, and the run's own files guarded, before any work."""
    if request.executor.name == "local" and request.executor.jobs > 1:
        raise UserError(
            "evaluate --executor local runs one mixture at a time (the stages already use every core); "
            "spread mixtures over processes or machines with --executor ray"
        )
    metadata, spec = request.metadata, request.spec
    entries, notes = read_metadata_noted(metadata)
    entries = entries[: request.limit]
    for note in notes:
        log.info(f"{metadata}: {note}")
    check_listed_audio(metadata, entries, spec.config)
    if resume is not None and not resume.is_dir():
        raise UserError(f"--resume {resume} is not a folder; pass the run folder of an interrupted `evaluate`")
    listed = [(f"a file {metadata.name} lists", p) for e in entries for p in (e.mixture_path, *e.source_paths)]
    check_run_files(
        spec.source.given() + spec.backend.given() + [("the --metadata file", metadata)] + listed,
        [resume / name for name in (RUN_FILE, CSV_FILE, SUMMARY_FILE)] if resume else [],
    )
    return entries


def _resume_dir(request: Request) -> Path | None:
    """``--resume``: None, the newest run in ``runs_dir`` (checked for its marker), or the folder
    given (checked with the inputs, then for its marker, by ``start_run``)."""
    if request.resume == LATEST:
        return resume_folder(request.runs_dir, request.resume, RUN_FILE, "evaluate")
    return None if request.resume is None else Path(request.resume)


def run(request: Request) -> EvaluateResult:
    resume = _resume_dir(request)
    entries = _entries(request, resume)
    run_dir = resume or new_run_dir(request.runs_dir)
    run_info = {"metadata": str(request.metadata), **request.spec.info(), **request.executor.to_json()}
    start_run(run_dir, run_info, resume is not None)
    with open_executor(request.executor) as cases:
        spec = request.spec if cases.ships_files else dataclasses.replace(request.spec, scratch=run_dir / "onnx")
        if not cases.ships_files:
            separator_for(spec)  # here, with its progress said; the cases reuse it
        rows, failures = evaluate_entries(spec, entries, run_dir, cases)
    return _result(run_dir, rows, failures, run_info)


def write(result: EvaluateResult) -> None:
    """``evaluate_summary.json`` in the run folder."""
    write_json(result.run_dir / SUMMARY_FILE, result.to_json())
