"""`evaluate`'s work: one task per mixture through the executor seam (local, or a Ray cluster),
rows written to the run folder as they finish, ``--resume`` of an interrupted run (the command
itself is ``commands/evaluate.py``).

Cases -> executor -> ``evaluate_per_utterance.csv`` (appended as each mixture finishes; sorted
into the metadata's order at the end) -> ``evaluate_summary.json`` (always from the CSV, so a
resumed run and an uninterrupted one summarize the same numbers).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import statistics
import tempfile
from pathlib import Path

from ..audio.io import probe_audio
from ..audio.librimix import MixtureEntry
from ..errors import UserError
from ..files import write_text_atomically
from ..guard import regular_file
from ..metrics.quality import quality_scores
from ..metrics.separation import SILENT_REFERENCE_POWER, finite_mean
from ..records import RecordError, read_json
from ..runs.run_folder import write_json
from ..runtime import RunSpec, open_run
from ..tasks.base import CaseExecutor, Task, TaskFailure
from ..tasks.files import unpack
from .forward import forward_one

log = logging.getLogger(__name__)

RUN_FILE = "evaluate_run.json"
CSV_FILE = "evaluate_per_utterance.csv"
EVALUATE_COLUMNS = [
    "mixture_ID",
    "num_samples",
    "si_snr_s1_db",
    "si_snr_s2_db",
    "si_snri_db",
    "mixture_si_snr_db",
    "reference_si_snri_db",
    "pesq",
    "pesq_mixture",
    "stoi",
    "stoi_mixture",
    "parity_max_abs",
    "parity_ok",
    "silent_references",
]
#: Text columns, and the value a row written before the column existed reads as.
TEXT_COLUMNS = {"mixture_ID": None, "silent_references": ""}
#: What a resumed run must share with the run it continues.
RESUME_KEYS = (
    "metadata",
    "backend",
    "tile_w",
    "block_chan",
    "fused",
    "device_norms",
    "model_source",
    "model_sha256",
    "model_config",
)


_OPEN_RUNS: dict = {}  # per process: a Ray worker separates many mixtures with one run


def separator_for(spec: RunSpec):
    """The separator of ``spec``'s run, opened once per process (a temporary export folder when
    the spec names none: a Ray node has none of the driver's folders)."""
    if spec.key not in _OPEN_RUNS:
        _OPEN_RUNS[spec.key] = open_run(spec)
    return _OPEN_RUNS[spec.key].separator()


def mixture_row(separator, mixture_id: str, mix_path: Path, source_paths) -> dict:
    """One mixture separated and scored: the CSV row (floats unrounded)."""
    _, result = forward_one(separator, mix_path, source_paths)
    score, ref_score = result.score("stitched"), result.score("reference")
    quality = quality_scores(
        result.stitched[list(score.permutation)], result.sources, result.mixture, separator.config.sample_rate
    )
    if score.silent_references:
        log.warning(
            f"{mixture_id}: reference {' and '.join(score.silent_references)} is silent (power below "
            f"{10 * math.log10(SILENT_REFERENCE_POWER):.0f} dBFS): not scored, left out of the means"
        )
    return {
        "mixture_ID": mixture_id,
        "num_samples": len(result.mixture),
        "si_snr_s1_db": score.si_snr[0],
        "si_snr_s2_db": score.si_snr[-1],
        "si_snri_db": score.mean_si_snri,
        "mixture_si_snr_db": finite_mean(score.mixture_si_snr),
        "reference_si_snri_db": ref_score.mean_si_snri,
        "pesq": quality["pesq_hailo_mean"],
        "pesq_mixture": quality["pesq_mixture_mean"],
        "stoi": quality["stoi_hailo_mean"],
        "stoi_mixture": quality["stoi_mixture_mean"],
        "parity_max_abs": result.parity_max_abs,
        "parity_ok": result.parity_ok,
        "silent_references": " ".join(score.silent_references),
    }


def evaluate_mixture(
    spec: RunSpec, mixture_id: str, mix: str, sources: tuple[str, ...], files: dict | None = None
) -> dict:
    """The task: one mixture, from its paths here, or from ``files`` shipped to another node."""
    if files is None:
        return mixture_row(separator_for(spec), mixture_id, Path(mix), [Path(s) for s in sources])
    with tempfile.TemporaryDirectory(prefix="convtasnet-mixture-") as scratch:
        unpack(files, Path(scratch))
        return mixture_row(separator_for(spec), mixture_id, Path(scratch) / mix, [Path(scratch) / s for s in sources])


def _task(entry: MixtureEntry, spec_arg, executor: CaseExecutor) -> Task:
    if not executor.ships_files:
        args = (spec_arg, entry.mixture_id, str(entry.mixture_path), tuple(str(p) for p in entry.source_paths), None)
    else:  # shipped under neutral names: the node has none of the driver's folders
        names = ["mixture" + entry.mixture_path.suffix] + [
            f"s{i}{p.suffix}" for i, p in enumerate(entry.source_paths, 1)
        ]
        files = {
            name: executor.share(path)
            for name, path in zip(names, (entry.mixture_path, *entry.source_paths), strict=False)
        }
        args = (spec_arg, entry.mixture_id, names[0], tuple(names[1:]), files)
    return Task(entry.mixture_id, evaluate_mixture, args, {"CPU": 1})


def _cell(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def read_rows(path: Path) -> list[dict]:
    """The CSV's finished rows, numbers as floats (what the summary is computed from)."""
    if not path.exists():
        return []
    regular_file(path, "run file", "pass the folder of an `evaluate` run")
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
        for line, row in enumerate(rows, 2):
            _typed_row(row, line, len(reader.fieldnames or ()))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"{path} is not the CSV `evaluate` writes ({exc}); start a new run") from None
    except RecordError as exc:
        raise UserError(
            f"{path}: {exc}; it is not the CSV `evaluate` writes: start a new run (or delete that "
            "row to evaluate the mixture again)"
        ) from None
    return rows


def _typed_row(row: dict, line: int, header: int) -> None:
    """A row of the run's CSV with its numbers as numbers (in place); ``header``: its column count."""
    # csv.DictReader fills a short (torn) row's missing cells with None and keeps a long row's
    # extra values as a list under the key None: the row's own count is what was on the line.
    values = sum(1 for key, value in row.items() if key is not None and value is not None)
    values += len(row.get(None) or ())
    for key, before in TEXT_COLUMNS.items():
        if before is not None and key not in row:  # a row of a CSV written before the column existed
            row[key] = before
    if None in row or any(row.get(key) is None for key in EVALUATE_COLUMNS):
        raise RecordError(f"line {line} has {values} value(s), the header {header} column(s)")
    try:
        for key in EVALUATE_COLUMNS:
            if key not in TEXT_COLUMNS:
                row[key] = row[key] == "True" if key == "parity_ok" else float(row[key])
        row["num_samples"] = int(row["num_samples"])
    except ValueError as exc:
        raise RecordError(f"line {line}: {exc}") from None


def start_run(run_dir: Path, run_info: dict, resume: bool) -> None:
    """Records what the run evaluates; a resumed run must evaluate the same (RESUME_KEYS)."""
    path = run_dir / RUN_FILE
    if not resume:
        write_json(path, run_info)
        return
    if not path.exists():
        raise UserError(f"--resume {run_dir}: no {RUN_FILE} there; pass the folder of an `evaluate` run")
    before = read_json(path, "run file", "pass the folder of an `evaluate` run, or start a new one")
    if not isinstance(before, dict):
        raise UserError(
            f"{path} holds a JSON {type(before).__name__}, not the record `evaluate` writes; pass the "
            "folder of an `evaluate` run, or start a new one"
        )
    changed = [k for k in RESUME_KEYS if before.get(k) != json.loads(json.dumps(run_info.get(k), default=str))]
    if changed:
        raise UserError(
            f"--resume {run_dir}: that run had another {changed[0]} ({before.get(changed[0])!r}); resume "
            "with the same model, metadata, backend and plan options, or start a new run"
        )


def evaluate_entries(
    spec: RunSpec, entries: list[MixtureEntry], run_dir: Path, executor: CaseExecutor
) -> tuple[list[dict], list[TaskFailure]]:
    """Every entry not already in the run folder's CSV through ``executor`` (each row appended as
    it finishes); then the CSV in metadata order. Returns its rows and the mixtures that failed."""
    csv_path = run_dir / CSV_FILE
    done = {row["mixture_ID"] for row in read_rows(csv_path)}
    todo = [e for e in entries if e.mixture_id not in done]
    if done:
        log.info(f"resume: {len(entries) - len(todo)} mixture(s) already evaluated, {len(todo)} to go")
    if not csv_path.is_file():
        write_text_atomically(csv_path, ",".join(EVALUATE_COLUMNS) + "\n")
    spec_arg = executor.put(spec)
    failures = []
    with open(csv_path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, EVALUATE_COLUMNS)
        for index, (task, row) in enumerate(executor.run([_task(e, spec_arg, executor) for e in todo]), 1):
            if isinstance(row, TaskFailure):
                failures.append(row)
                log.warning(f"[{index}/{len(todo)}] {task.key}: FAILED ({row.error_type}: {row.message})")
                continue
            writer.writerow({k: _cell(v) for k, v in row.items()})
            handle.flush()
            log.info(
                f"[{index}/{len(todo)}] {task.key}: SI-SNRi {row['si_snri_db']:.2f} dB, PESQ {row['pesq']:.2f}, "
                f"STOI {row['stoi']:.2f}, parity {row['parity_max_abs']:.1e}"
            )
    order = {e.mixture_id: i for i, e in enumerate(entries)}
    rows = sorted(read_rows(csv_path), key=lambda r: order.get(r["mixture_ID"], len(order)))
    _rewrite_csv(csv_path, rows)
    return rows, failures


def _rewrite_csv(path: Path, rows: list[dict]) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, EVALUATE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    write_text_atomically(path, text.getvalue())


#: The summary's metrics and the value each takes from a row.
SUMMARY_METRICS = {
    "si_snr_db": lambda r: finite_mean([r["si_snr_s1_db"], r["si_snr_s2_db"]]),
    **{key: (lambda r, key=key: r[key]) for key in ("si_snri_db", "reference_si_snri_db")},
    **{key: (lambda r, key=key: r[key]) for key in ("pesq", "pesq_mixture", "stoi", "stoi_mixture")},
}


def _stats(values: list[float]) -> dict | None:
    """Mean and median of the finite values (a silent reference's NaN, or PESQ's NaN where P.862
    finds no speech, never enters them); None when none is finite."""
    kept = [v for v in values if math.isfinite(v)]
    return {"mean": statistics.fmean(kept), "median": statistics.median(kept)} if kept else None


def summarize(rows: list[dict], run_info: dict) -> dict:
    """The run's summary: each metric's mean and median over the finite values, with the silent
    references named and counted (``excluded_silent_references``) and, per metric, the mixtures
    whose value was not finite and so left out (``excluded_non_finite``)."""
    silent = [f"{r['mixture_ID']}:{name}" for r in rows for name in r["silent_references"].split()]
    values = {key: [value(r) for r in rows] for key, value in SUMMARY_METRICS.items()}
    return {
        **run_info,
        "n_mixtures": len(rows),
        **{key: _stats(column) for key, column in values.items()},
        "excluded_silent_references": len(silent),
        "silent_references": silent,
        "excluded_non_finite": {key: sum(not math.isfinite(v) for v in column) for key, column in values.items()},
        "parity_max_abs": max((r["parity_max_abs"] for r in rows), default=float("nan")),
        "parity_all_ok": all(r["parity_ok"] for r in rows),
    }


def missing_files(entries) -> list[Path]:
    return [p for e in entries for p in (e.mixture_path, *e.source_paths) if not p.exists()]


def check_listed_audio(metadata: Path, entries, config) -> None:
    """Every listed file exists, is a regular file and opens as audio a mixture (or a mono
    source) can be: checked from the headers before the first mixture is separated."""
    missing = missing_files(entries)
    if missing:
        raise UserError(
            f"{metadata} lists {len(missing)} file(s) that do not exist, the first {missing[0]}; "
            "fix the paths or pass the CSV of the LibriMix tree they belong to"
        )
    for entry in entries:
        probe_audio(entry.mixture_path, config.sample_rate, min_seconds=config.kernel_size / config.sample_rate)
        for path in entry.source_paths:
            probe_audio(path, config.sample_rate, max_channels=1)
