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
    Emulation, HailoQuantBackend, Precision, QValue, build_emulation, calibrated, emulate_op, float_op, layer_name,
    rescheme, run_emulated, value_bits,
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
    (quantized) inputs: per-layer SQNR. Float is what flows on. Also counts, per layer, the values
    outside the calibrated range (coverage)."""

    name = "layer_noise_probe"

    def __init__(self, emulation: Emulation) -> None:
        self.emulation, self.powers = emulation, PowerSums()
        self.clipped: dict[str, list[int]] = {}  # layer -> [values outside its calibrated range, values]

    def clipped_fraction(self) -> dict[str, float]:
        return {name: out / total for name, (out, total) in self.clipped.items() if out}

    def coverage(self) -> dict[str, float]:
        """layer -> share of its output values outside the calibrated range (0 included)."""
        return {name: out / total for name, (out, total) in self.clipped.items() if total}

    def run_stage(self, stage: Stage, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        emulation = self.emulation
        exact_stage, quant_stage = emulation.float_stage(stage), emulation.stage(stage)
        bits = value_bits(quant_stage, emulation.precision, emulation.scheme.fuse_activations)
        values = {name: np.asarray(array, np.float64) for name, array in inputs.items()}
        for index, (op, qop) in enumerate(zip(exact_stage.ops, quant_stage.ops)):
            name = layer_name(stage, index, op)
            reads = [values[n] for n in op.reads]
            exact = float_op(op, reads)
            grids = [qs.activation_grid(*emulation.ranges[n], bits[n]) for n in op.reads]
            quantized = emulate_op(qop, [QValue(qs.quantize(x, g), g) for x, g in zip(reads, grids)],
                                   qs.activation_grid(*emulation.ranges[op.output], bits[op.output]),
                                   emulation.precision.bits(name).weight, emulation.scheme.weight_granularity)
            self.powers.add(name, exact, quantized.real)
            lo, hi = emulation.ranges[op.output]
            lo, hi = min(lo, 0.0), max(hi, 0.0)
            slack = 1e-3 * (hi - lo)  # float rounding between the calibration and this run is not clipping
            counts = self.clipped.setdefault(name, [0, 0])
            counts[0] += int(np.count_nonzero((exact < lo - slack) | (exact > hi + slack)))
            counts[1] += exact.size
            values[op.output] = exact
        return {p.name: values[p.name].astype(np.float32) for p in stage.outputs}


class StageNoiseProbe(HailoQuantBackend):
    """``hailo_quant`` that also runs each stage in float on the same inputs: per-stage SQNR."""

    name = "stage_noise_probe"

    def __init__(self, emulation: Emulation) -> None:
        super().__init__(emulation=emulation)
        self.powers = PowerSums()

    def run_stage(self, stage: Stage, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = run_emulated(self.emulation, stage, inputs)
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
                  calib_count: int, report: Report = print, ort_check: bool = True,
                  scheme: qs.Scheme = qs.Scheme()) -> dict:
    from .calibration import make_calibration
    from ..backends import load_backend

    started = time.perf_counter()
    plan = PlanOptions().build(source.model, PlanPath.FULL_CHAIN)
    files = make_calibration(plan, tile_w, inputs.calibration, out / "calib", calib_count, report=report)
    base = calibrated(list(plan.stages), files, scheme)
    emulation = build_emulation(base, Precision())
    layers = [layer_name(s, i, op) for s in plan.stages for i, op in enumerate(s.ops)]
    report(f"noise: {len(plan.stages)} stages, {len(layers)} layers; calibrated on {len(inputs.calibration)} "
           f"file(s), {calib_count} tiles per stage input; weights {scheme.weight_granularity.value}, "
           f"{len(base.equalized)} conv pair(s) equalized")
    exact = _final(plan, load_backend("torch_proxy"), tile_w, inputs.audio)
    probe = LayerNoiseProbe(emulation)
    _final(plan, probe, tile_w, inputs.audio)
    per_layer = probe.powers.db()
    report(f"noise: per-layer SQNR measured ({time.perf_counter() - started:.0f} s); worst "
           f"{min(per_layer, key=per_layer.get)} at {min(per_layer.values()):.1f} dB")
    clipped = probe.clipped_fraction()
    if clipped:
        worst = max(clipped, key=clipped.get)
        report(f"noise: {len(clipped)} layer(s) see values outside their calibrated range on this audio (worst "
               f"{worst}: {clipped[worst]:.2%}); calibrate on audio like it (--calib) or expect clipping on the device")

    def run(emulation: Emulation) -> tuple[list[np.ndarray], float, dict[str, float]]:
        backend = StageNoiseProbe(emulation)
        final = _final(plan, backend, tile_w, inputs.audio)
        return final, _si_snr_vs_float(final, exact), backend.powers.db()

    all8, all8_db, per_stage = run(emulation)
    report(f"noise: all layers a8_w8: final output {all8_db:.2f} dB SI-SNR against float")
    other = qs.WeightGranularity.PER_CHANNEL if scheme.weight_granularity is qs.WeightGranularity.PER_LAYER \
        else qs.WeightGranularity.PER_LAYER
    other_scheme = dataclasses.replace(scheme, weight_granularity=other)
    other_all8, other_db, _ = run(build_emulation(rescheme(base, other_scheme), Precision()))
    report(f"noise: all layers a8_w8 with {other.value} weights: {other_db:.2f} dB")
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
        advised, advised_db, _ = run(build_emulation(base, Precision({name: "a16_w16" for name in chosen})))
        report(f"noise: {len(chosen)} layer(s) a16_w16: {advised_db:.2f} dB")
    precision = Precision({name: "a16_w16" for name in chosen})
    problems = feasibility(plan, base.ranges, precision)
    scripts = write_model_scripts(out / "model_scripts", plan, precision, scheme, base.ranges)
    record = {
        **source.to_json(), "tile_w": tile_w, "target_db": target_db, "n_layers": len(layers),
        "weight_granularity": scheme.weight_granularity.value, "scheme": scheme.to_json(),
        "optimizations": optimizations_record(base),
        "n_layers_16bit": len(chosen), "layers_16bit": chosen, "precision_modes": dict(precision.modes),
        "final_output_si_snr_vs_float_db_all8": all8_db, "final_output_si_snr_vs_float_db_advised": advised_db,
        "weight_granularity_effect": {
            "all8_si_snr_vs_float_db": {scheme.weight_granularity.value: all8_db, other.value: other_db},
            "all8_si_snri_db": {scheme.weight_granularity.value: _si_snri(all8, inputs),
                                other.value: _si_snri(other_all8, inputs)}},
        "target_reached": advised_db >= target_db,
        "per_layer_sqnr_db": {name: per_layer[name] for name in layers},
        "per_layer_flagged_below_db": {"threshold_db": 30.0,
                                       "layers": [name for name in layers if per_layer[name] < 30.0]},
        "per_stage_sqnr_db_all8": per_stage,
        "onnxruntime_qdq_cross_check": cross_check,
        "clipped_fraction_by_layer": probe.clipped_fraction(),
        "si_snri_db": {"float": _si_snri(exact, inputs), "all8": _si_snri(all8, inputs),
                       "advised": _si_snri(advised, inputs)},
        "rescale_feasibility": {"all8": feasibility(plan, base.ranges, Precision()), "advised": problems},
        "model_scripts": {stage: str(path) for stage, path in scripts.items()},
        "assumptions": "src/convtasnet_hailo/backends/quant_scheme.py",
        "seconds": round(time.perf_counter() - started, 1),
    }
    return record


def optimizations_record(base) -> dict:
    """Each DFC optimization the emulation used, as the model scripts state it."""
    scheme = base.scheme
    return {"equalization": {"enabled": scheme.equalization, "pairs": [dataclasses.asdict(p) for p in base.equalized]},
            "bias_correction": {"enabled": scheme.bias_correction},
            "activation_clipping": {"enabled": scheme.clip_percentile is not None,
                                    "mode": "percentile" if scheme.clip_percentile is not None else "minmax",
                                    "percentile": scheme.clip_percentile},
            "headroom": {"enabled": scheme.headroom != 1.0, "factor": scheme.headroom},
            "finetune": {"enabled": False, "why": "QFT is not emulated; the model scripts disable it"},
            "fused_activations": {"enabled": scheme.fuse_activations}}


def stage_script_lines(stage: Stage, precision: Precision, scheme: qs.Scheme, ranges=None) -> list[str]:
    """One stage's model-script lines: the optimizations the emulation used, a
    ``quantization_param`` per layer not a8_w8, and with headroom a ``force_range_out`` per layer
    output (the activation's, where a conv and its activation are one layer)."""
    from ..backends.hailo_quant import fused_activations
    from ..compile.model_script import optimization_lines, precision_line, range_line

    lines = optimization_lines(scheme.equalization, scheme.bias_correction, scheme.clip_percentile)
    fused = fused_activations(stage) if scheme.fuse_activations else {}
    for index, op in enumerate(stage.ops):
        name = layer_name(stage, index, op)
        mode = precision.modes.get(name, precision.default)
        if mode != qs.DEFAULT_MODE:
            lines.append(precision_line(name, mode))
        if ranges is not None and scheme.headroom != 1.0 and index not in fused:
            lo, hi = ranges[op.output]
            lines.append(range_line(name, min(lo, 0.0), max(hi, 0.0)))
    return lines


def write_model_scripts(directory: Path, plan: StagePlan, precision: Precision, scheme: qs.Scheme,
                        ranges=None) -> dict[str, Path]:
    """``<stage>.alls`` per stage (``stage_script_lines``; layers named by their ONNX node,
    `compile --precision` maps them to the parsed layers)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for stage in plan.stages:
        paths[stage.name] = directory / f"{stage.name}.alls"
        write_text_atomically(paths[stage.name], "".join(line + "\n" for line in
                                                          stage_script_lines(stage, precision, scheme, ranges)))
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
                  ort_check: bool = True, scheme: qs.Scheme = qs.Scheme()) -> int:
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
                           out, tile_w, target_db, calib_count, report, ort_check, scheme)
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
