"""`noise`: the SDK's ``analyze-noise`` without the SDK, on the ``hailo_quant`` emulation.

1. Calibration: the same real stitched tiles `compile` calibrates with (``make_calibration``,
   same files), every op's range recorded by running each stage in float on them.
2. Per layer: SQNR of the layer's output with only that layer quantized (its inputs on their
   grids, its weights in integers), on the evaluation audio's real tiles.
3. All layers 8-bit: the final output's SI-SNR against float, and per stage the SQNR of the
   stage's outputs with every layer of it quantized (same inputs).
4. Advice: layers promoted to ``a16_w16`` from the noisiest up, in steps, until the final output
   reaches ``target_db`` SI-SNR against float (or every layer is 16-bit).
5. Cross-check: the same stages quantized by ONNX Runtime (``ort_crosscheck``), per-stage SQNR
   beside the emulator's.
6. Rescale feasibility before any compile: every PReLU whose negative slope needs more shift
   than its data bits ("Desired shift is 10.0, but op has only 8 data bits") and every add whose
   inputs' scales differ by more than the data bits can shift.
Writes ``noise_report.json``, ``noise_layers.png`` and ``model_scripts/<stage>.alls`` with the
advised ``quantization_param(<layer>, precision_mode=a16_w16)`` lines (layers named by their ONNX
node; `compile --precision DIR` maps them to the parsed names).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from ..backends import quant_scheme as qs
from ..backends.base import Backend
from ..backends.hailo_quant import (
    HailoQuantBackend, Precision, QValue, calibrate_ranges, emulate_op, float_op, layer_name, run_stage_quantized,
)
from ..errors import UserError
from ..guard import check_run_files
from ..files import write_text_atomically
from ..metrics.separation import score_separation, si_snr
from ..metrics.sqnr import PowerSums
from ..model.source import ModelSource
from ..plan.builder import PlanOptions, PlanPath, StagePlan
from ..plan.ops import Add, PRelu
from ..plan.stages import Stage
from ..tiling.executor import StitchedExecutor

Report = Callable[[str], None]


class LayerNoiseProbe(Backend):
    """Runs every stage in float and, op by op, the op alone in the device's integers on the same
    (quantized) inputs: per-layer SQNR. Float is what flows on."""

    name = "layer_noise_probe"

    def __init__(self, ranges, precision: Precision) -> None:
        self.ranges, self.precision, self.powers = ranges, precision, PowerSums()
        self.clipped: dict[str, list[int]] = {}  # layer -> [values outside its calibrated range, values]

    def clipped_fraction(self) -> dict[str, float]:
        return {name: out / total for name, (out, total) in self.clipped.items() if out}

    def run_stage(self, stage: Stage, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = {name: np.asarray(array, np.float64) for name, array in inputs.items()}
        for index, op in enumerate(stage.ops):
            name = layer_name(stage, index, op)
            act, weight_bits = self.precision.of(name)
            reads = [values[n] for n in op.reads]
            exact = float_op(op, reads)
            grids = [qs.activation_grid(*self.ranges[n], act) for n in op.reads]
            quantized = emulate_op(op, [QValue(qs.quantize(x, g), g) for x, g in zip(reads, grids)],
                                   qs.activation_grid(*self.ranges[op.output], act), weight_bits)
            self.powers.add(name, exact, quantized.real)
            lo, hi = self.ranges[op.output]
            slack = 1e-3 * (hi - lo)  # float rounding between the calibration and this run is not clipping
            counts = self.clipped.setdefault(name, [0, 0])
            counts[0] += int(np.count_nonzero((exact < lo - slack) | (exact > hi + slack)))
            counts[1] += exact.size
            values[op.output] = exact
        return {p.name: values[p.name].astype(np.float32) for p in stage.outputs}


class StageNoiseProbe(HailoQuantBackend):
    """``hailo_quant`` that also runs each stage in float on the same inputs: per-stage SQNR."""

    name = "stage_noise_probe"

    def __init__(self, ranges, precision: Precision) -> None:
        super().__init__(ranges, precision)
        self.powers = PowerSums()

    def run_stage(self, stage: Stage, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = run_stage_quantized(stage, inputs, self.ranges, self.precision)
        exact = _float_stage(stage, inputs)
        for name in out:
            self.powers.add(stage.name, exact[name], out[name])
        return out


def _float_stage(stage: Stage, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    values = {name: np.asarray(array, np.float64) for name, array in inputs.items()}
    for op in stage.ops:
        values[op.output] = float_op(op, [values[n] for n in op.reads])
    return {p.name: values[p.name] for p in stage.outputs}


def feasibility(plan: StagePlan, ranges, precision: Precision) -> list[dict]:
    """Layers whose rescale the datapath cannot hold at their precision, each with the fix."""
    problems = []
    for stage in plan.stages:
        for index, op in enumerate(stage.ops):
            name = layer_name(stage, index, op)
            act, _ = precision.of(name)
            if isinstance(op, PRelu) and not qs.slope_fits(op.slope, act):
                problems.append({
                    "layer": name, "kind": "NegativeSlopeExponentNonFixable",
                    "detail": f"negative slope {op.slope:.3g} needs a shift of {qs.slope_shift(op.slope)}, the "
                              f"op has {act} data bits",
                    "fix": "quantization_param(..., precision_mode=a16_w16) on this layer, or move the PReLU to "
                           "the host (a different split)"})
            if isinstance(op, Add):
                grids = [qs.activation_grid(*ranges[n], act) for n in op.reads]
                ratio = max(g.scale for g in grids) / max(min(g.scale for g in grids), 1e-30)
                if ratio > 2 ** act:
                    problems.append({
                        "layer": name, "kind": "add_scale_ratio",
                        "detail": f"input scales differ {ratio:.3g}x, more than {act} bits of shift: the smaller "
                                  "input vanishes on the common grid",
                        "fix": "a16_w16 on this layer, or split so the add runs on the host"})
    return problems


@dataclasses.dataclass
class NoiseInputs:
    audio: list[np.ndarray]  # evaluation mixtures (T,)
    sources: list[np.ndarray] | None  # per mixture (n_src, T), or None
    calibration: list[np.ndarray]  # calibration audio (T,)


def _final(plan: StagePlan, backend: Backend, tile_w: int, audio: list[np.ndarray]) -> list[np.ndarray]:
    executor = StitchedExecutor(plan, backend, tile_w)
    finals = [executor.run({"wav": wav[None, None].astype(np.float32)})["final_output"] for wav in audio]
    return [final.reshape(-1, final.shape[-1]) for final in finals]  # (n_src, T) each


def _si_snr_vs_float(quantized: list[np.ndarray], exact: list[np.ndarray]) -> float:
    return float(np.mean([si_snr(q[i], e[i]) for q, e in zip(quantized, exact) for i in range(len(e))]))


def _si_snri(estimates: list[np.ndarray], inputs: NoiseInputs) -> float | None:
    if inputs.sources is None:
        return None
    return float(np.mean([score_separation(est, src, wav).mean_si_snri
                          for est, src, wav in zip(estimates, inputs.sources, inputs.audio)]))


def analyze_noise(source: ModelSource, inputs: NoiseInputs, out: Path, tile_w: int, target_db: float,
                  calib_count: int, report: Report = print, ort_check: bool = True) -> dict:
    from .calibration import make_calibration
    from ..backends import load_backend

    started = time.perf_counter()
    plan = PlanOptions().build(source.model, PlanPath.FULL_CHAIN)
    files = make_calibration(plan, tile_w, inputs.calibration, out / "calib", calib_count, report=report)
    ranges = calibrate_ranges(list(plan.stages), files)
    layers = [layer_name(s, i, op) for s in plan.stages for i, op in enumerate(s.ops)]
    report(f"noise: {len(plan.stages)} stages, {len(layers)} layers; calibrated on {len(inputs.calibration)} "
           f"file(s), {calib_count} tiles per stage input")
    exact = _final(plan, load_backend("torch_proxy"), tile_w, inputs.audio)
    probe = LayerNoiseProbe(ranges, Precision())
    _final(plan, probe, tile_w, inputs.audio)
    per_layer = probe.powers.db()
    report(f"noise: per-layer SQNR measured ({time.perf_counter() - started:.0f} s); worst "
           f"{min(per_layer, key=per_layer.get)} at {min(per_layer.values()):.1f} dB")
    clipped = probe.clipped_fraction()
    if clipped:
        worst = max(clipped, key=clipped.get)
        report(f"noise: {len(clipped)} layer(s) see values outside their calibrated range on this audio (worst "
               f"{worst}: {clipped[worst]:.2%}); calibrate on audio like it (--calib) or expect clipping on the device")

    def run(precision: Precision) -> tuple[list[np.ndarray], float, dict[str, float]]:
        backend = StageNoiseProbe(ranges, precision)
        final = _final(plan, backend, tile_w, inputs.audio)
        return final, _si_snr_vs_float(final, exact), backend.powers.db()

    all8, all8_db, per_stage = run(Precision())
    report(f"noise: all layers a8_w8: final output {all8_db:.2f} dB SI-SNR against float")
    cross_check = None
    if ort_check:
        from .ort_crosscheck import ort_cross_check

        cross_check = ort_cross_check(plan, tile_w, files, inputs.audio, per_stage, report)
    ranked = sorted(layers, key=lambda name: per_layer[name])
    chosen: list[str] = []
    advised, advised_db = all8, all8_db
    step = max(1, len(layers) // 20)
    while advised_db < target_db and len(chosen) < len(layers):
        chosen = ranked[:len(chosen) + step]
        advised, advised_db, _ = run(Precision({name: "a16_w16" for name in chosen}))
        report(f"noise: {len(chosen)} layer(s) a16_w16: {advised_db:.2f} dB")
    precision = Precision({name: "a16_w16" for name in chosen})
    problems = feasibility(plan, ranges, precision)
    scripts = write_model_scripts(out / "model_scripts", plan, chosen)
    record = {
        **source.to_json(), "tile_w": tile_w, "target_db": target_db, "n_layers": len(layers),
        "n_layers_16bit": len(chosen), "layers_16bit": chosen,
        "final_output_si_snr_vs_float_db_all8": all8_db, "final_output_si_snr_vs_float_db_advised": advised_db,
        "target_reached": advised_db >= target_db,
        "per_layer_sqnr_db": {name: per_layer[name] for name in layers},
        "per_layer_flagged_below_db": {"threshold_db": 30.0,
                                       "layers": [name for name in layers if per_layer[name] < 30.0]},
        "per_stage_sqnr_db_all8": per_stage,
        "onnxruntime_qdq_cross_check": cross_check,
        "clipped_fraction_by_layer": probe.clipped_fraction(),
        "si_snri_db": {"float": _si_snri(exact, inputs), "all8": _si_snri(all8, inputs),
                       "advised": _si_snri(advised, inputs)},
        "rescale_feasibility": {"all8": feasibility(plan, ranges, Precision()), "advised": problems},
        "model_scripts": {stage: str(path) for stage, path in scripts.items()},
        "assumptions": "src/convtasnet_hailo/backends/quant_scheme.py",
        "seconds": round(time.perf_counter() - started, 1),
    }
    return record


def write_model_scripts(directory: Path, plan: StagePlan, layers_16bit: list[str]) -> dict[str, Path]:
    """``<stage>.alls`` per stage: one ``quantization_param`` line per 16-bit layer (named by its
    ONNX node; `compile --precision` maps it to the parsed layer)."""
    directory.mkdir(parents=True, exist_ok=True)
    chosen = set(layers_16bit)
    paths = {}
    for stage in plan.stages:
        lines = [f"quantization_param({layer_name(stage, i, op)}, precision_mode=a16_w16)"
                 for i, op in enumerate(stage.ops) if layer_name(stage, i, op) in chosen]
        paths[stage.name] = directory / f"{stage.name}.alls"
        write_text_atomically(paths[stage.name], "".join(line + "\n" for line in lines))
    return paths


def plot_layer_noise(path: Path, record: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..files import written_atomically

    names = list(record["per_layer_sqnr_db"])
    values = [min(record["per_layer_sqnr_db"][n], 120.0) for n in names]
    chosen = set(record["layers_16bit"])
    fig, ax = plt.subplots(figsize=(max(8, len(names) * 0.06), 4))
    ax.bar(range(len(names)), values, color=["C3" if n in chosen else "C0" for n in names], width=1.0)
    ax.axhline(record["per_layer_flagged_below_db"]["threshold_db"], color="black", lw=0.6, ls="--")
    ax.set_xlabel("layer (plan order); red: advised a16_w16")
    ax.set_ylabel("SQNR, layer alone (dB)")
    ax.set_title(f"{record['model_source']}: final output {record['final_output_si_snr_vs_float_db_all8']:.1f} dB "
                 f"all 8-bit, {record['final_output_si_snr_vs_float_db_advised']:.1f} dB with "
                 f"{record['n_layers_16bit']} layer(s) 16-bit", fontsize=9)
    fig.tight_layout()
    with written_atomically(path) as temporary:
        fig.savefig(temporary, dpi=100, format="png")
    plt.close(fig)


def _default_calibration(rate: int) -> list[Path]:
    from ..assets import DEMO_MIXTURE, ENHANCE_NOISY

    return [ENHANCE_NOISY] if rate == 16000 else [DEMO_MIXTURE] if rate == 8000 else []


def noise_command(source: ModelSource, audio_paths: list[str], source_paths: list[str], calib_paths: list[str] | None,
                  out: Path, tile_w: int, target_db: float, calib_count: int, report: Report = print,
                  ort_check: bool = True) -> int:
    """Writes noise_report.json, noise_layers.png and model_scripts/; exit 0 (the report says
    whether the target was reached)."""
    from ..audio.io import load_audio
    from ..runs.run_folder import write_json

    rate = source.model.config.sample_rate
    n_src = source.model.config.n_src
    if source_paths and (len(audio_paths) != 1 or len(source_paths) != n_src):
        raise UserError(f"--s1/--s2 are the sources of one --audio file: pass one file and {n_src} source(s)")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; pass a folder")
    audio = [load_audio(path, rate).wav for path in audio_paths]
    sources = None
    if source_paths:
        sources = [np.stack([np.pad(w, (0, max(0, len(audio[0]) - len(w))))[:len(audio[0])]
                             for w in (load_audio(p, rate, allow_silent=True).wav for p in source_paths)])]
    calibration = [Path(p) for p in calib_paths] if calib_paths else _default_calibration(rate) or \
        [Path(p) for p in audio_paths]
    calib_audio = [load_audio(p, rate).wav for p in calibration]  # every input checked before the first output
    check_run_files(source.given() + [("the --audio input", p) for p in audio_paths]
                    + [(f"the --s{i} reference", p) for i, p in enumerate(source_paths, 1)]
                    + [("the --calib input", p) for p in calibration],
                    [out / "noise_report.json", out / "noise_layers.png"])
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create --out {out}: {exc.strerror}; pass a writable folder") from None
    record = analyze_noise(source, NoiseInputs(audio, sources, calib_audio),
                           out, tile_w, target_db, calib_count, report, ort_check)
    record.update({"audio": list(audio_paths), "sources": list(source_paths), "calibration": [str(p) for p in calibration]})
    write_json(out / "noise_report.json", record)
    plot_layer_noise(out / "noise_layers.png", record)
    si = record["si_snri_db"]
    improvement = "" if si["float"] is None else \
        f"; SI-SNRi float {si['float']:.2f}, all-8 {si['all8']:.2f}, advised {si['advised']:.2f} dB"
    report(f"noise: all-8 {record['final_output_si_snr_vs_float_db_all8']:.2f} dB, advised "
           f"{record['final_output_si_snr_vs_float_db_advised']:.2f} dB with {record['n_layers_16bit']} of "
           f"{record['n_layers']} layers a16_w16 (target {target_db:g} dB: "
           f"{'reached' if record['target_reached'] else 'NOT reached'}){improvement}; "
           f"{len(record['rescale_feasibility']['all8'])} rescale problem(s) at 8 bits, "
           f"{len(record['rescale_feasibility']['advised'])} as advised; {out / 'noise_report.json'} "
           f"({record['seconds']:.0f} s)")
    return 0
