"""Parity runs compatible with the runbook: cases over lengths x tile widths, a JSON per case
with every stage's ``*_max_abs`` / ``*_max_rel``, and the ``hef_tiled_*_summary.tsv``."""

from __future__ import annotations

import dataclasses
import enum
import logging
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..metrics.separation import si_snr
from ..model.config import ConvTasNetConfig
from ..model.source import ModelSource
from ..plan import PlanPath, StagePlan, is_contract_tensor
from ..plan.reference_trace import trace_reference
from ..runs.run_folder import TsvWriter, write_json
from ..runtime.engine import stitched_executor
from ..runtime.tensors import check_tile_width
from ..tolerances import CONTRACT, EMULATION_MIN_SQNR_DB, QUANTIZED_MIN_SQNR_DB, REQUIRED_MARGIN, TARGET_MAX_REL, TOL
from .compare import TensorDiff, diff_tensor

log = logging.getLogger(__name__)

DEFAULT_TILE_WIDTHS = (64, 128, 256)

SUMMARY_FILES = {
    PlanPath.DECODER: "hef_tiled_decoder_path_summary.tsv",
    PlanPath.MASKER: "hef_tiled_masker_path_summary.tsv",
    PlanPath.FULL_CHAIN: "hef_tiled_full_chain_summary.tsv",
}


@dataclasses.dataclass(frozen=True)
class ParityCase:
    """One stitched run: ``wav_t`` samples of input, tiles of ``tile_w`` latent frames."""

    path: PlanPath
    tile_w: int
    wav_t: int

    def latent_w(self, config: ConvTasNetConfig) -> int:
        return max(0, (self.wav_t - config.kernel_size) // config.stride + 1)

    def run_tag(self, config: ConvTasNetConfig) -> str:
        prefix = self.path.value.replace("-", "_")
        if self.path is PlanPath.FULL_CHAIN:
            return f"{prefix}_tile{self.tile_w}_wav{self.wav_t}"
        return f"{prefix}_tile{self.tile_w}_latent{self.latent_w(config)}"


def samples_for_frames(config: ConvTasNetConfig, frames: int) -> int:
    """Shortest waveform giving ``frames`` encoder frames."""
    return (frames - 1) * config.stride + config.kernel_size


def edge_frame_counts(tile_w: int) -> list[int]:
    """Latent lengths that exercise the tiling: one frame, under one tile, exactly one tile,
    one frame past a tile, a multiple of the tile, and a non-multiple."""
    return sorted({1, max(1, tile_w // 2), tile_w, tile_w + 1, 3 * tile_w, 3 * tile_w + tile_w // 3 + 1})


def default_cases(
    path: PlanPath, config: ConvTasNetConfig, tile_widths: Iterable[int] = DEFAULT_TILE_WIDTHS
) -> list[ParityCase]:
    """Edge lengths for every tile width; full-chain adds trailing samples that do not make a
    frame (one sample past a tile), which the decoder must pad back."""
    cases = []
    for tile_w in tile_widths:
        for frames in edge_frame_counts(tile_w):
            wav_t = samples_for_frames(config, frames)
            cases.append(ParityCase(path, tile_w, wav_t))
            if path is PlanPath.FULL_CHAIN and frames in (tile_w, 3 * tile_w):
                cases.append(ParityCase(path, tile_w, wav_t + 1))
    return cases


def probe_waveform(num_samples: int, sample_rate: int, seed: int) -> np.ndarray:
    """Deterministic speech-like test signal (T,): harmonic tones with a syllable-rate envelope
    plus noise, peak about 0.5."""
    rng = np.random.default_rng(seed)
    t = np.arange(num_samples) / sample_rate
    f0 = 110 + 60 * rng.random()
    voiced = sum(np.sin(2 * np.pi * f0 * k * t + rng.random() * 6.28) / k for k in range(1, 8))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * t + rng.random() * 6.28)
    signal = 0.15 * voiced * envelope + 0.05 * rng.standard_normal(num_samples)
    return signal.astype(np.float32)


class ReferencePrecision(str, enum.Enum):
    """What the stitched path is compared with: the model as users run it (float32, the
    contract's default) or the same model in float64 (exact math, which shows the path's own
    error without the float32 reference's rounding added)."""

    FLOAT32 = "float32"
    FLOAT64 = "float64"


def _executor_inputs(path: PlanPath, trace: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name: trace[name].astype(np.float32) for name in path.inputs}


@dataclasses.dataclass
class CaseOutcome:
    case: ParityCase
    run_tag: str
    diffs: list[TensorDiff]
    record: dict
    json_path: Path

    @property
    def success(self) -> bool:
        return self.record["all_close"] and self.record.get("matches_emulation", True)

    @property
    def worst(self) -> TensorDiff | None:
        return max((d for d in self.diffs if is_contract_tensor(d.name)), key=lambda d: d.max_rel, default=None)


def _emulated_tensors(plan: StagePlan, emulation, case: ParityCase, trace: dict[str, np.ndarray]) -> dict:
    """Every reference-named tensor of the case as the device-arithmetic emulation computes it."""
    kept: dict[str, np.ndarray] = {}

    def keep(name: str, tensor: np.ndarray) -> None:
        if name in trace:
            kept[name] = tensor

    stitched_executor(plan, emulation, case.tile_w).run(_executor_inputs(case.path, trace), keep)
    return kept


def _emulation_fields(diffs: list[TensorDiff], emulated_final, final) -> dict:
    """The run JSON's comparison with the emulation: SQNR per stage against it, and the verdict."""
    contract = [d for d in diffs if is_contract_tensor(d.name)]
    worst = min(contract, key=lambda d: d.sqnr_db, default=None)
    fields = {
        "expected_emulation": True,
        "emulation_min_sqnr_db": EMULATION_MIN_SQNR_DB,
        "matches_emulation": bool(contract) and worst.sqnr_db >= EMULATION_MIN_SQNR_DB,
        "min_sqnr_vs_emulation_db": worst.sqnr_db if worst else None,
        "worst_stage_vs_emulation": worst.name if worst else None,
    }
    fields.update({f"{d.name}_sqnr_vs_emulation_db": d.sqnr_db for d in diffs})
    if emulated_final is not None and final is not None:
        fields["final_output_si_snr_vs_emulation_db"] = float(
            np.mean([si_snr(final[g, 0], emulated_final[g, 0]) for g in range(final.shape[0])])
        )
    return fields


@dataclasses.dataclass(frozen=True)
class ParityRun:
    """What every case of one parity run shares: the plan, the open backend, the model, where the
    JSONs go, the reference's precision, and the device-arithmetic emulation (or None)."""

    plan: StagePlan
    backend: object
    source: ModelSource
    out_dir: Path
    precision: ReferencePrecision = ReferencePrecision.FLOAT32
    emulation: object = None


class _Observed:
    """Every tensor the stitched executor makes, compared as it comes with the reference trace
    and the emulation's tensors; the final output kept for its SI-SNR."""

    def __init__(self, trace: dict[str, np.ndarray], emulated: dict[str, np.ndarray]) -> None:
        self.trace, self.emulated = trace, emulated
        self.diffs: list[TensorDiff] = []
        self.emulation_diffs: list[TensorDiff] = []
        self.final: np.ndarray | None = None

    def __call__(self, name: str, tensor: np.ndarray) -> None:
        if name in self.trace:
            self.diffs.append(diff_tensor(name, tensor, self.trace[name]))
        if name in self.emulated:
            self.emulation_diffs.append(diff_tensor(name, tensor, self.emulated[name]))
        if name == "final_output":
            self.final = tensor


def failed_stages(diffs: list[TensorDiff], quantized: bool) -> list[str]:
    """Every tensor that breaks its rule, not just the first: integer arithmetic is judged by
    SQNR per stage; float32 by the normwise contract, host-made diagnostics (norms, skip sums)
    included."""
    if quantized:
        return [d.name for d in diffs if is_contract_tensor(d.name) and not d.sqnr_db >= QUANTIZED_MIN_SQNR_DB]
    return [d.name for d in diffs if not d.all_close]


def _judgement(diffs: list[TensorDiff], quantized: bool) -> dict:
    """The record's verdict fields."""
    contract = [d for d in diffs if is_contract_tensor(d.name)]
    diagnostics = [d for d in diffs if not is_contract_tensor(d.name)]
    failed = failed_stages(diffs, quantized)
    worst = max(contract, key=lambda d: d.max_rel, default=None)
    tightest = min(diffs, key=lambda d: d.margin, default=None)
    deciding = min(contract, key=lambda d: d.sqnr_db, default=None) if quantized else None
    return {
        "deciding_sqnr_db": deciding.sqnr_db if deciding else None,
        "deciding_sqnr_stage": deciding.name if deciding else None,
        "all_close": bool(contract) and not failed,
        "tol": TOL,
        "tolerance": "sqnr" if quantized else "normwise",
        "contract": f"SQNR >= {QUANTIZED_MIN_SQNR_DB:g} dB per stage" if quantized else CONTRACT,
        "min_sqnr_db": QUANTIZED_MIN_SQNR_DB if quantized else None,
        "target_max_rel": TARGET_MAX_REL,
        "worst_stage": worst.name if worst else None,
        "max_abs": max((d.max_abs for d in contract), default=None),
        "max_rel": worst.max_rel if worst else None,
        "min_margin": tightest.margin if tightest else None,
        "min_margin_stage": tightest.name if tightest else None,
        "required_margin": REQUIRED_MARGIN,
        "margin_ok": bool(tightest) and tightest.margin >= REQUIRED_MARGIN,
        "failed_stages": failed,
        "stages_over_target_max_rel": [d.name for d in contract if d.max_rel > TARGET_MAX_REL],
        "diagnostic_tensors": [d.name for d in diagnostics],
        "diagnostics_all_close": all(d.all_close for d in diagnostics),
        "diagnostics_max_abs": max((d.max_abs for d in diagnostics), default=None),
        "diagnostics_min_margin": min((d.margin for d in diagnostics), default=None),
    }


def case_record(run: ParityRun, case: ParityCase, observed: _Observed, seconds: dict, stage_calls: int) -> dict:
    """The case's JSON record (pure: nothing is written)."""
    config, diffs = run.plan.config, observed.diffs
    latent_w = case.latent_w(config)
    record: dict = {
        "run_tag": case.run_tag(config),
        "path": case.path.value,
        "backend": run.backend.name,
        "reference": run.precision.value,
        **_judgement(diffs, run.backend.quantized),
        "tile_w": case.tile_w,
        "block_chan": run.plan.options.block_chan,
        "n_stages": len(run.plan.stages),
        "latent_w": latent_w,
        "wav_t": case.wav_t,
        "n_tiles": -(-latent_w // case.tile_w),
        "sample_rate": config.sample_rate,
        "stage_calls": stage_calls,
        "backend_stats": run.backend.stats(),
        **{key: round(value, 4) for key, value in seconds.items()},
        **run.source.to_json(),
    }
    for suffix, value in (("max_abs", "max_abs"), ("max_rel", "max_rel"), ("bound", "bound"), ("sqnr_db", "sqnr_db")):
        record.update({f"{d.name}_{suffix}": getattr(d, value) for d in diffs})
    if "final_output" in observed.trace and observed.final is not None:
        scores = [
            si_snr(observed.final[g, 0], observed.trace["final_output"][g, 0]) for g in range(observed.final.shape[0])
        ]
        record["final_output_si_snr_vs_reference_db"] = float(np.mean(scores))
    if run.emulation is not None:
        record.update(
            _emulation_fields(observed.emulation_diffs, observed.emulated.get("final_output"), observed.final)
        )
    return record


def run_case(run: ParityRun, case: ParityCase, trace: dict[str, np.ndarray], reference_seconds: float) -> CaseOutcome:
    """Runs one case through the stitched executor, judges it and writes its JSON. With an
    emulation (the ``hailo_quant`` backend of a `noise` folder), every stage is also compared with
    the device arithmetic's emulation (SQNR), the expected value of a quantized backend."""
    emulated = _emulated_tensors(run.plan, run.emulation, case, trace) if run.emulation is not None else {}
    observed = _Observed(trace, emulated)
    executor = stitched_executor(run.plan, run.backend, case.tile_w)
    started = time.perf_counter()
    executor.run(_executor_inputs(case.path, trace), observed)
    seconds = {"reference_seconds": reference_seconds, "stitched_seconds": time.perf_counter() - started}
    record = case_record(run, case, observed, seconds, sum(executor.stage_batches.values()))
    json_path = run.out_dir / f"{record['run_tag']}.json"
    write_json(json_path, record)
    return CaseOutcome(case, record["run_tag"], observed.diffs, record, json_path)


def summary_columns(path: PlanPath) -> list[str]:
    length_column = "wav_t" if path is PlanPath.FULL_CHAIN else "latent_w"
    return [
        "run_tag",
        "backend",
        length_column,
        "tile_w",
        "success",
        "output_json",
        "max_abs",
        "max_rel",
        "worst_stage",
        "min_margin",
        "min_margin_stage",
    ]


def run_parity(run: ParityRun, cases: list[ParityCase], seed: int = 0) -> list[CaseOutcome]:
    """Runs ``cases`` (one reference trace per length), writing JSONs and the summary TSV."""
    path, source = run.plan.path, run.source
    for case in cases:
        check_tile_width(case.tile_w)
    summary = TsvWriter(run.out_dir / SUMMARY_FILES[path], summary_columns(path))
    outcomes: list[CaseOutcome] = []
    by_length: dict[int, list[ParityCase]] = {}
    for case in cases:
        by_length.setdefault(case.wav_t, []).append(case)
    done = 0
    for wav_t, length_cases in by_length.items():
        started = time.perf_counter()
        trace = trace_reference(
            source.model,
            probe_waveform(wav_t, source.model.config.sample_rate, seed),
            float64=run.precision is ReferencePrecision.FLOAT64,
        )
        reference_seconds = time.perf_counter() - started
        for case in length_cases:
            outcome = run_case(run, case, trace, reference_seconds)
            outcomes.append(outcome)
            done += 1
            rec = outcome.record
            summary.append({**rec, "success": outcome.success, "output_json": outcome.json_path.name})
            log.info(f"[{done}/{len(cases)}] {case_line(outcome, run.emulation is not None)}")
        del trace
    return outcomes


def case_line(outcome: CaseOutcome, emulated: bool) -> str:
    """One case in words: a float backend by max_abs and its margin to the contract's bound; a
    quantized one by the SQNR that decided it (the lowest stage's) and the output's SI-SNR
    against the float model."""
    rec, worst = outcome.record, outcome.worst
    head = f"{outcome.run_tag}: {'ok' if outcome.success else 'FAIL'} "
    if rec.get("tolerance") == "sqnr":
        si_snr_db = rec.get("final_output_si_snr_vs_reference_db")
        line = head + (
            f"SQNR {rec['deciding_sqnr_db']:.1f} dB at {rec['deciding_sqnr_stage']} (the lowest stage; "
            f">= {rec['min_sqnr_db']:g} dB passes)"
            + (f", output SI-SNR vs float {si_snr_db:.1f} dB" if si_snr_db is not None else "")
        )
    else:
        line = head + (
            f"max_abs {rec['max_abs']:.2e} max_rel {rec['max_rel']:.2e} (worst {worst.name if worst else '-'}), "
            f"margin {rec['min_margin']:.1f}x ({rec['min_margin_stage']})"
        )
    line += f" {rec['stitched_seconds']:.2f} s"
    if emulated:
        line += f"; vs emulation min SQNR {rec['min_sqnr_vs_emulation_db']:.1f} dB ({rec['worst_stage_vs_emulation']})"
    return line
