"""Parity runs compatible with the runbook: cases over lengths x tile widths, a JSON per case
with every stage's ``*_max_abs`` / ``*_max_rel``, and the ``hef_tiled_*_summary.tsv``."""

from __future__ import annotations

import dataclasses
import enum
import time
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ..plan.builder import PlanPath, StagePlan, is_contract_tensor
from ..model.config import ConvTasNetConfig
from ..model.source import ModelSource
from ..plan.reference_trace import trace_reference
from ..runs.run_folder import TsvWriter, write_json
from ..tiling.executor import StitchedExecutor, check_tile_width
from ..metrics.separation import si_snr
from ..tolerances import CONTRACT, EMULATION_MIN_SQNR_DB, QUANTIZED_MIN_SQNR_DB, REQUIRED_MARGIN, TARGET_MAX_REL, TOL
from .compare import TensorDiff, diff_tensor

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


def default_cases(path: PlanPath, config: ConvTasNetConfig,
                  tile_widths: Iterable[int] = DEFAULT_TILE_WIDTHS) -> list[ParityCase]:
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

    StitchedExecutor(plan, emulation, case.tile_w).run(_executor_inputs(case.path, trace), keep)
    return kept


def _emulation_fields(diffs: list[TensorDiff], emulated_final, final) -> dict:
    """The run JSON's comparison with the emulation: SQNR per stage against it, and the verdict."""
    contract = [d for d in diffs if is_contract_tensor(d.name)]
    worst = min(contract, key=lambda d: d.sqnr_db, default=None)
    fields = {"expected_emulation": True, "emulation_min_sqnr_db": EMULATION_MIN_SQNR_DB,
              "matches_emulation": bool(contract) and worst.sqnr_db >= EMULATION_MIN_SQNR_DB,
              "min_sqnr_vs_emulation_db": worst.sqnr_db if worst else None,
              "worst_stage_vs_emulation": worst.name if worst else None}
    fields.update({f"{d.name}_sqnr_vs_emulation_db": d.sqnr_db for d in diffs})
    if emulated_final is not None and final is not None:
        fields["final_output_si_snr_vs_emulation_db"] = float(np.mean(
            [si_snr(final[g, 0], emulated_final[g, 0]) for g in range(final.shape[0])]))
    return fields


def run_case(plan: StagePlan, backend, case: ParityCase, trace: dict[str, np.ndarray],
             source: ModelSource, out_dir: Path, reference_seconds: float,
             precision: ReferencePrecision = ReferencePrecision.FLOAT32, emulation=None) -> CaseOutcome:
    """Runs one case through the stitched executor and writes its JSON. With ``emulation`` (the
    ``hailo_quant`` backend of a `noise` folder), every stage is also compared with the device
    arithmetic's emulation (SQNR), the expected value of a quantized backend."""
    config = plan.config
    reference_names = set(trace)
    diffs: list[TensorDiff] = []
    emulated = _emulated_tensors(plan, emulation, case, trace) if emulation is not None else {}
    emulation_diffs: list[TensorDiff] = []

    final = None

    def observe(name: str, tensor: np.ndarray) -> None:
        nonlocal final
        if name in reference_names:
            diffs.append(diff_tensor(name, tensor, trace[name]))
        if name in emulated:
            emulation_diffs.append(diff_tensor(name, tensor, emulated[name]))
        if name == "final_output":
            final = tensor

    executor = StitchedExecutor(plan, backend, case.tile_w)
    started = time.perf_counter()
    executor.run(_executor_inputs(case.path, trace), observe)
    stitched_seconds = time.perf_counter() - started
    run_tag = case.run_tag(config)
    latent_w = case.latent_w(config)
    contract = [d for d in diffs if is_contract_tensor(d.name)]
    diagnostics = [d for d in diffs if not is_contract_tensor(d.name)]
    quantized = backend.quantized
    if quantized:  # integer arithmetic: judged by SQNR per stage, not by the float32 contract
        all_close = bool(contract) and all(d.sqnr_db >= QUANTIZED_MIN_SQNR_DB for d in contract)
    else:
        # Host-made diagnostics (norms, skip sums) are judged by the same normwise rule.
        all_close = bool(contract) and all(d.all_close for d in diffs)
    worst = max(contract, key=lambda d: d.max_rel, default=None)
    tightest = min(diffs, key=lambda d: d.margin, default=None)
    record: dict = {
        "run_tag": run_tag, "path": case.path.value, "backend": backend.name,
        "all_close": all_close, "tol": TOL, "reference": precision.value,
        "tolerance": "sqnr" if quantized else "normwise",
        "contract": f"SQNR >= {QUANTIZED_MIN_SQNR_DB:g} dB per stage" if quantized else CONTRACT,
        "min_sqnr_db": QUANTIZED_MIN_SQNR_DB if quantized else None,
        "target_max_rel": TARGET_MAX_REL,
        "tile_w": case.tile_w, "block_chan": plan.options.block_chan, "n_stages": len(plan.stages), "latent_w": latent_w, "wav_t": case.wav_t,
        "n_tiles": -(-latent_w // case.tile_w), "sample_rate": config.sample_rate,
        "worst_stage": worst.name if worst else None,
        "max_abs": max((d.max_abs for d in contract), default=None),
        "max_rel": worst.max_rel if worst else None,
        "min_margin": tightest.margin if tightest else None,
        "min_margin_stage": tightest.name if tightest else None,
        "required_margin": REQUIRED_MARGIN,
        "margin_ok": bool(tightest) and tightest.margin >= REQUIRED_MARGIN,
        "failed_stages": [d.name for d in (contract if quantized else diffs)
                          if not (d.sqnr_db >= QUANTIZED_MIN_SQNR_DB if quantized else d.all_close)],
        "stages_over_target_max_rel": [d.name for d in contract if d.max_rel > TARGET_MAX_REL],
        "diagnostic_tensors": [d.name for d in diagnostics],
        "diagnostics_all_close": all(d.all_close for d in diagnostics),
        "diagnostics_max_abs": max((d.max_abs for d in diagnostics), default=None),
        "diagnostics_min_margin": min((d.margin for d in diagnostics), default=None),
        "stage_calls": sum(executor.stage_batches.values()),
        "backend_stats": backend.stats(),
        "reference_seconds": round(reference_seconds, 4),
        "stitched_seconds": round(stitched_seconds, 4),
        **source.to_json(),
    }
    for d in diffs:
        record[f"{d.name}_max_abs"] = d.max_abs
    for d in diffs:
        record[f"{d.name}_max_rel"] = d.max_rel
    for d in diffs:
        record[f"{d.name}_bound"] = d.bound
    for d in diffs:
        record[f"{d.name}_sqnr_db"] = d.sqnr_db
    if "final_output" in reference_names and final is not None:
        scores = [si_snr(final[g, 0], trace["final_output"][g, 0]) for g in range(final.shape[0])]
        record["final_output_si_snr_vs_reference_db"] = float(np.mean(scores))
    if emulation is not None:
        record.update(_emulation_fields(emulation_diffs, emulated.get("final_output"), final))
    json_path = out_dir / f"{run_tag}.json"
    write_json(json_path, record)
    return CaseOutcome(case, run_tag, diffs, record, json_path)


def summary_columns(path: PlanPath) -> list[str]:
    length_column = "wav_t" if path is PlanPath.FULL_CHAIN else "latent_w"
    return ["run_tag", "backend", length_column, "tile_w", "success", "output_json",
            "max_abs", "max_rel", "worst_stage", "min_margin", "min_margin_stage"]


def run_parity(plan: StagePlan, source: ModelSource, backend, cases: list[ParityCase], out_dir: Path,
               seed: int = 0, report: Callable[[str], None] = print,
               precision: ReferencePrecision = ReferencePrecision.FLOAT32, emulation=None) -> list[CaseOutcome]:
    """Runs ``cases`` (one reference trace per length), writing JSONs and the summary TSV."""
    path = plan.path
    for case in cases:
        check_tile_width(case.tile_w)
    summary = TsvWriter(out_dir / SUMMARY_FILES[path], summary_columns(path))
    outcomes: list[CaseOutcome] = []
    by_length: dict[int, list[ParityCase]] = {}
    for case in cases:
        by_length.setdefault(case.wav_t, []).append(case)
    done = 0
    for wav_t, length_cases in by_length.items():
        started = time.perf_counter()
        trace = trace_reference(source.model, probe_waveform(wav_t, source.model.config.sample_rate, seed),
                                float64=precision is ReferencePrecision.FLOAT64)
        reference_seconds = time.perf_counter() - started
        for case in length_cases:
            outcome = run_case(plan, backend, case, trace, source, out_dir, reference_seconds, precision, emulation)
            outcomes.append(outcome)
            done += 1
            rec = outcome.record
            summary.append({**rec, "success": outcome.success, "output_json": outcome.json_path.name})
            worst = outcome.worst
            report(f"[{done}/{len(cases)}] {outcome.run_tag}: {'ok' if outcome.success else 'FAIL'} "
                   f"max_abs {rec['max_abs']:.2e} max_rel {rec['max_rel']:.2e} "
                   f"(worst {worst.name if worst else '-'}), margin {rec['min_margin']:.1f}x "
                   f"({rec['min_margin_stage']}) {rec['stitched_seconds']:.2f} s"
                   + (f"; vs emulation min SQNR {rec['min_sqnr_vs_emulation_db']:.1f} dB "
                      f"({rec['worst_stage_vs_emulation']})" if emulation is not None else ""))
        del trace
    return outcomes
