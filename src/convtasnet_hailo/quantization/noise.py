"""`noise`: the SDK's ``analyze-noise`` without the SDK, on the ``hailo_quant`` emulation.

Three sets of recordings (:class:`NoiseInputs`): calibration (the ranges), held-out (the choices)
and evaluation (the figures); calibration never holds a recording of the other two.

1. Calibration: the same real stitched tiles `compile` calibrates with (``make_calibration``,
   same files); the stages equalized when the scheme says so, every op's range (min/max and
   percentiles) recorded by running each stage in float on them.
2. Clipping: min/max, a percentile or min/max with headroom, whichever all-8 emulation is
   closest to float on the held-out audio (``--clipping`` fixes it instead).
3. Per layer: SQNR of the layer's output with only that layer quantized (its inputs on their
   grids, its weights in integers), on the held-out audio; coverage (values outside the
   calibrated ranges) per layer on the evaluation audio.
4. Advice (``quantization.precision_advice``): the cheapest 16-bit set by the device cost model
   that reaches the target on the held-out audio.
5. Evaluation: float, all-8, advised and all-16 on the evaluation audio; all-8 again with each
   assumption flipped (per-channel weights, bias correction, clipping, fused activations,
   equalization).
6. Cross-check: the same stages quantized by ONNX Runtime (``ort_crosscheck``), per-stage SQNR
   beside the emulator's.
7. Rescale feasibility before any compile: every PReLU whose negative slope needs more shift
   than its data bits ("Desired shift is 10.0, but op has only 8 data bits") and every add whose
   inputs' scales differ by more than the data bits can shift.
Writes ``noise_report.json`` (it names ``weight_granularity``, the ``scheme`` and each
``optimizations`` step), ``noise_layers.png`` and ``model_scripts/<stage>.alls``: the DFC lines
that do what the emulation did (``compile.model_script.optimization_lines``), and a
``quantization_param(<layer>, ...)`` per advised mode or pinned range (layers named by their
ONNX node; `compile --precision DIR` maps them to the parsed names).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from ..backends.base import Backend
from ..backends.hailo_quant import HailoQuantBackend
from ..hailo import quant_scheme as qs
from ..hailo.emulation import (
    Calibrated, Emulation, Precision, QValue, build_emulation, calibrated, emulate_op, feasibility, float_op,
    layer_name, rescheme, run_emulated, value_bits,
)
from .datasets import AudioSet
from ..errors import UserError
from ..guard import check_run_files
from ..files import write_text_atomically
from ..metrics.separation import score_separation, si_snr
from ..metrics.sqnr import PowerSums
from ..model.source import ModelSource
from ..plan.builder import PlanOptions, PlanPath, StagePlan, build_plan
from ..plan.stages import Stage
from ..runtime.executor import StitchedExecutor

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


@dataclasses.dataclass
class NoiseInputs:
    """The three sets: ranges come from ``calibration``; clipping and the advice are chosen on
    ``heldout`` (audio the calibration never saw; by default the evaluation audio); the report's
    figures are measured on ``evaluation``."""

    evaluation: AudioSet
    calibration: AudioSet
    heldout: AudioSet | None = None

    @property
    def judged_on(self) -> AudioSet:
        return self.heldout if self.heldout is not None else self.evaluation


def _final(plan: StagePlan, backend: Backend, tile_w: int, audio: list[np.ndarray]) -> list[np.ndarray]:
    executor = StitchedExecutor(plan, backend, tile_w)
    finals = [executor.run({"wav": wav[None, None].astype(np.float32)})["final_output"] for wav in audio]
    return [final.reshape(-1, final.shape[-1]) for final in finals]  # (n_src, T) each


def _si_snr_vs_float(quantized: list[np.ndarray], exact: list[np.ndarray]) -> float:
    return float(np.mean([si_snr(q[i], e[i]) for q, e in zip(quantized, exact) for i in range(len(e))]))


def _si_snri(estimates: list[np.ndarray], audio: AudioSet) -> float | None:
    if audio.sources is None:
        return None
    return float(np.mean([score_separation(est, src, wav).mean_si_snri
                          for est, src, wav in zip(estimates, audio.sources, audio.wavs)]))


@dataclasses.dataclass(frozen=True)
class Target:
    """When quantized output is good enough: SI-SNRi within ``si_snri_loss_db`` of float (when the
    judging audio has sources and a loss is given), else ``si_snr_vs_float_db`` against float."""

    si_snr_vs_float_db: float = 40.0
    si_snri_loss_db: float | None = None

    def met(self, outcome: "Outcome", float_si_snri: float | None) -> bool:
        if self.si_snri_loss_db is not None and outcome.si_snri is not None and float_si_snri is not None:
            return float_si_snri - outcome.si_snri <= self.si_snri_loss_db
        return outcome.vs_float_db >= self.si_snr_vs_float_db


@dataclasses.dataclass
class Outcome:
    finals: list[np.ndarray]
    vs_float_db: float
    si_snri: float | None
    per_stage: dict[str, float]

    def summary(self) -> dict:
        return {"si_snr_vs_float_db": self.vs_float_db, "si_snri_db": self.si_snri}


class Judge:
    """One set of recordings, its float output, and the emulation's output on it."""

    def __init__(self, plan: StagePlan, tile_w: int, audio: AudioSet) -> None:
        from ..backends.registry import load_backend

        self.plan, self.tile_w, self.audio = plan, tile_w, audio
        self.exact = _final(plan, load_backend("torch_proxy"), tile_w, audio.wavs)
        self.float_si_snri = _si_snri(self.exact, audio)

    def run(self, emulation: Emulation, per_stage: bool = False) -> Outcome:
        """The emulation's output on this audio (with ``per_stage``, each stage's SQNR too: it runs
        every stage in float as well, twice the time)."""
        backend = StageNoiseProbe(emulation) if per_stage else HailoQuantBackend(emulation=emulation)
        final = _final(self.plan, backend, self.tile_w, self.audio.wavs)
        powers = backend.powers.db() if per_stage else {}
        return Outcome(final, _si_snr_vs_float(final, self.exact), _si_snri(final, self.audio), powers)

    def probe(self, emulation: Emulation) -> LayerNoiseProbe:
        probe = LayerNoiseProbe(emulation)
        _final(self.plan, probe, self.tile_w, self.audio.wavs)
        return probe


def _key(outcome: Outcome, judge: Judge) -> float:
    """What choices maximize: closeness to float (SI-SNR against the float output). SI-SNRi is
    not used: a quantized output may score above float by chance, which is not fidelity."""
    return outcome.vs_float_db


CLIPPING_CANDIDATES = ((None, 1.0),) + tuple((p, 1.0) for p in qs.CLIP_PERCENTILES) + ((None, 1.25), (None, 1.5))


def parse_clipping(text: str) -> tuple[float | None, float] | None:
    """``auto`` (None: choose on the held-out audio), ``minmax``, ``headroom:F`` or ``percentile:P``."""
    kind, _, value = text.partition(":")
    try:
        if kind == "auto" and not value:
            return None
        if kind == "minmax" and not value:
            return (None, 1.0)
        if kind == "headroom":
            return (None, float(value)) if float(value) >= 1 else _bad_clipping(text)
        if kind == "percentile":
            return (float(value), 1.0) if 50 < float(value) < 100 else _bad_clipping(text)
    except ValueError:
        pass
    return _bad_clipping(text)


def _bad_clipping(text: str):
    raise UserError(f"--clipping {text!r}: use auto, minmax, headroom:F (F >= 1) or percentile:P (50 < P < 100)")


def choose_clipping(base: Calibrated, judge: Judge, report: Report, candidates=CLIPPING_CANDIDATES
                    ) -> tuple[Calibrated, list[dict]]:
    """The activation clipping (min/max, a percentile, or min/max with headroom) whose all-8
    emulation scores best on the held-out audio, and every candidate's score."""
    table, best = [], None
    for percentile, headroom in candidates:
        candidate = rescheme(base, dataclasses.replace(base.scheme, clip_percentile=percentile, headroom=headroom))
        outcome = judge.run(build_emulation(candidate, Precision()))
        table.append({"clip_percentile": percentile, "headroom": headroom, **outcome.summary()})
        report(f"noise: clipping {'min/max' if percentile is None else f'{percentile}%'}"
               f"{'' if headroom == 1.0 else f' x{headroom:g}'}: all-8 {outcome.vs_float_db:.2f} dB against float"
               + ("" if outcome.si_snri is None else f", SI-SNRi {outcome.si_snri:.2f} dB") + " (held-out audio)")
        if best is None or _key(outcome, judge) > best[0]:
            best = (_key(outcome, judge), candidate)
    return best[1], table


@dataclasses.dataclass
class _Calibrated:
    """The plan, its calibration files and the emulation's base (ranges, scheme) for a run."""

    plan: StagePlan
    files: dict
    base: Calibrated
    layers: list[str]


def _calibrate(source: ModelSource, inputs: NoiseInputs, request: NoiseRequest, report: Report) -> _Calibrated:
    from .calibration import make_calibration

    plan = build_plan(source.model, PlanOptions(), PlanPath.FULL_CHAIN)
    files = make_calibration(plan, request.tile_w, inputs.calibration.wavs, request.out / "calib",
                             request.calib_count, report=report)
    base = calibrated(list(plan.stages), files, request.scheme)
    layers = [layer_name(s, i, op) for s in plan.stages for i, op in enumerate(s.ops)]
    rate = source.model.config.sample_rate
    report(f"noise: {len(plan.stages)} stages, {len(layers)} layers; calibrated on "
           f"{len(inputs.calibration.wavs)} recording(s) ({inputs.calibration.seconds_total / rate:.0f} s), "
           f"{base.calibration.tiles} tiles per stage input; weights {request.scheme.weight_granularity.value}, "
           f"{len(base.equalized)} conv pair(s) equalized")
    return _Calibrated(plan, files, base, layers)


def _judges(plan: StagePlan, tile_w: int, inputs: NoiseInputs, report: Report) -> tuple:
    """(evaluation, held-out) judges: the held-out one chooses, the evaluation one reports."""
    evaluation = Judge(plan, tile_w, inputs.evaluation)
    judge = evaluation if inputs.heldout is None else Judge(plan, tile_w, inputs.heldout)
    for name, one in (("evaluation", evaluation),) + ((("held-out", judge),) if judge is not evaluation else ()):
        if one.float_si_snri is not None:
            report(f"noise: float SI-SNRi on the {name} audio: {one.float_si_snri:.2f} dB")
    return evaluation, judge


def _ranges(base: Calibrated, judge, clipping: str, report: Report) -> tuple[Calibrated, list | None]:
    """The base with its activation clipping: fixed by ``--clipping``, or chosen on held-out audio."""
    fixed = parse_clipping(clipping)
    if fixed is None:
        return choose_clipping(base, judge, report)
    return rescheme(base, dataclasses.replace(base.scheme, clip_percentile=fixed[0], headroom=fixed[1])), None


def _probe(base: Calibrated, judge, evaluation, started: float, report: Report) -> tuple[dict, dict]:
    """Per-layer SQNR (on the judge's audio) and coverage (on the evaluation audio) at all-8."""
    emulation = build_emulation(base, Precision())
    probe = judge.probe(emulation)
    per_layer = probe.powers.db()
    report(f"noise: per-layer SQNR measured ({time.perf_counter() - started:.0f} s); worst "
           f"{min(per_layer, key=per_layer.get)} at {min(per_layer.values()):.1f} dB")
    coverage = (probe if judge is evaluation else evaluation.probe(emulation)).coverage()
    # Percentile clipping leaves its tails out of the calibration values on purpose: only a share
    # well above that says the calibration audio is unlike the evaluation audio.
    percentile = base.scheme.clip_percentile
    tail = 2 * (100.0 - percentile) / 100.0 if percentile is not None else 0.0
    outside = {name: share for name, share in coverage.items() if share > 10 * tail}
    if outside:
        worst = max(outside, key=outside.get)
        expected = f", 10 times more than the clipping leaves out ({tail:.4%})" if tail else ""
        report(f"noise: {len(outside)} layer(s) see values outside their calibrated range on the evaluation audio"
               f"{expected} (worst {worst}: {outside[worst]:.3%}); calibrate on more audio like it (--calib DIR or CSV)")
    return per_layer, coverage


def _outcomes(base: Calibrated, evaluation, advice, report: Report) -> dict:
    """all-8, advised and all-16 on the evaluation audio (and float's SI-SNRi there, ``"float"``)."""
    all8 = evaluation.run(build_emulation(base, Precision()), per_stage=True)
    advised = all8 if advice.precision == Precision() else evaluation.run(build_emulation(base, advice.precision))
    all16 = evaluation.run(build_emulation(base, Precision(default="a16_w16")))
    report(f"noise: evaluation audio: all-8 {all8.vs_float_db:.2f} dB, advised {advised.vs_float_db:.2f} dB, "
           f"all-16 {all16.vs_float_db:.2f} dB against float")
    return {"all8": all8, "advised": advised, "all16": all16, "float": evaluation.float_si_snri}


def _checks(run: _Calibrated, base: Calibrated, evaluation, all8, request: NoiseRequest, inputs: NoiseInputs,
            report: Report) -> dict:
    """The assumption flips and the ONNX Runtime cross-check, where asked for."""
    effects = assumption_effects(run.plan, base, run.files, evaluation, all8, report) if request.effects else None
    cross_check = None
    if request.ort_check:
        from .ort_crosscheck import ort_cross_check

        cross_check = ort_cross_check(run.plan, request.tile_w, run.files, inputs.evaluation.wavs, all8.per_stage,
                                      report)
    return {"assumption_effects_all8": effects, "onnxruntime_qdq_cross_check": cross_check}


def analyze_noise(source: ModelSource, inputs: NoiseInputs, request: NoiseRequest, report: Report = print) -> dict:
    """The report's record (module docstring); the precision comes from
    :func:`~convtasnet_hailo.quantization.precision_advice.advise_precision`."""
    from .precision_advice import advise_precision

    started = time.perf_counter()
    run = _calibrate(source, inputs, request, report)
    evaluation, judge = _judges(run.plan, request.tile_w, inputs, report)
    base, clipping_table = _ranges(run.base, judge, request.clipping, report)
    per_layer, coverage = _probe(base, judge, evaluation, started, report)
    advice = advise_precision(run.plan, base, judge, per_layer, request.target, request.tile_w, report)
    outcomes = _outcomes(base, evaluation, advice, report)
    checks = _checks(run, base, evaluation, outcomes["all8"], request, inputs, report)
    scripts = write_model_scripts(request.out / "model_scripts", run.plan, advice.precision, base.scheme, base.ranges)
    record = noise_record(source, run, base, advice, outcomes, request, inputs)
    record.update({"activation_clipping_candidates_heldout": clipping_table, **checks,
                   "heldout_float_si_snri_db": judge.float_si_snri,
                   "per_layer_sqnr_db": {name: per_layer[name] for name in run.layers},
                   "per_layer_flagged_below_db": {"threshold_db": 30.0,
                                                  "layers": [n for n in run.layers if per_layer[n] < 30.0]},
                   "coverage_outside_calibrated_range_by_layer": coverage,
                   "clipped_fraction_by_layer": {name: share for name, share in coverage.items() if share > 0},
                   "model_scripts": {stage: str(path) for stage, path in scripts.items()},
                   "seconds": round(time.perf_counter() - started, 1)})
    return record


def noise_record(source: ModelSource, run: _Calibrated, base: Calibrated, advice, outcomes: dict,
                 request: NoiseRequest, inputs: NoiseInputs) -> dict:
    """The report's verdict fields: the scheme, the advised modes, the three outcomes (pure)."""
    precision, rate, target = advice.precision, source.model.config.sample_rate, request.target
    chosen = [name for name in run.layers if precision.modes.get(name, qs.DEFAULT_MODE) != qs.DEFAULT_MODE]
    sixteen = [name for name in chosen if precision.modes[name] == "a16_w16"]
    all8, advised, all16, flo = outcomes["all8"], outcomes["advised"], outcomes["all16"], outcomes["float"]
    return {
        **source.to_json(), "tile_w": request.tile_w, "target": dataclasses.asdict(target),
        "target_db": target.si_snr_vs_float_db, "n_layers": len(run.layers),
        "weight_granularity": base.scheme.weight_granularity.value, "scheme": base.scheme.to_json(),
        "optimizations": optimizations_record(base),
        "n_layers_16bit": len(sixteen), "layers_16bit": sixteen, "n_layers_not_a8_w8": len(chosen),
        "precision_modes": {name: precision.modes[name] for name in chosen},
        "final_output_si_snr_vs_float_db_all8": all8.vs_float_db,
        "final_output_si_snr_vs_float_db_advised": advised.vs_float_db,
        "final_output_si_snr_vs_float_db_all16": all16.vs_float_db,
        "target_reached": advice.reached, "target_reached_on": "heldout" if inputs.heldout is not None else "evaluation",
        "advice": advice.record, "predicted_device_rtf": advice.rtf,
        "per_stage_sqnr_db_all8": all8.per_stage,
        "si_snri_db": {"float": flo, "all8": all8.si_snri, "advised": advised.si_snri, "all16": all16.si_snri},
        "si_snri_loss_db": None if flo is None else {k: flo - outcomes[k].si_snri for k in ("all8", "advised", "all16")},
        "rescale_feasibility": {"all8": feasibility(run.plan, base.ranges, Precision()),
                                "advised": feasibility(run.plan, base.ranges, precision)},
        "calibration_set": inputs.calibration.describe(rate) | {"tiles_per_input": base.calibration.tiles},
        "heldout_set": None if inputs.heldout is None else inputs.heldout.describe(rate),
        "evaluation_set": inputs.evaluation.describe(rate),
        "assumptions": "src/convtasnet_hailo/hailo/quant_scheme.py",
    }


def assumption_effects(plan: StagePlan, base: Calibrated, files, evaluation: Judge, all8: Outcome,
                       report: Report) -> dict:
    """All-8 quality on the evaluation audio with each assumption or optimization flipped, beside
    the chosen scheme's (the report's "what each costs")."""
    scheme = base.scheme
    rows = {"chosen": all8.summary()}
    other = qs.WeightGranularity.PER_CHANNEL if scheme.weight_granularity is qs.WeightGranularity.PER_LAYER \
        else qs.WeightGranularity.PER_LAYER
    flips = {f"weights_{other.value}": dataclasses.replace(scheme, weight_granularity=other),
             f"bias_correction_{'off' if scheme.bias_correction else 'on'}":
                 dataclasses.replace(scheme, bias_correction=not scheme.bias_correction),
             "clipping_minmax": dataclasses.replace(scheme, clip_percentile=None, headroom=1.0),
             f"fused_activations_{'off' if scheme.fuse_activations else 'on'}":
                 dataclasses.replace(scheme, fuse_activations=not scheme.fuse_activations)}
    for name, flipped in flips.items():
        if flipped == scheme:
            continue
        rows[name] = evaluation.run(build_emulation(rescheme(base, flipped), Precision())).summary()
    flipped = dataclasses.replace(scheme, equalization=not scheme.equalization)
    other_base = calibrated(list(plan.stages), files, flipped)
    if other_base.equalized or base.equalized:
        rows[f"equalization_{'off' if scheme.equalization else 'on'}"] = \
            evaluation.run(build_emulation(other_base, Precision())).summary()
    else:
        rows["equalization"] = "no conv pair of this plan qualifies (module quant_scheme): on and off are one emulation"
    for name, row in rows.items():
        if isinstance(row, dict):
            report(f"noise: all-8 with {name}: {row['si_snr_vs_float_db']:.2f} dB against float"
                   + ("" if row["si_snri_db"] is None else f", SI-SNRi {row['si_snri_db']:.2f} dB"))
    return rows


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
    from ..hailo.emulation import fused_activations
    from ..dfc.model_script import optimization_lines, precision_line, range_line

    names = [layer_name(stage, index, op) for index, op in enumerate(stage.ops)]
    lines = optimization_lines(scheme.equalization, scheme.bias_correction, scheme.clip_percentile, names)
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


def _default_calibration(rate: int) -> list[str]:
    """The shipped recordings, the one at the model's rate first (the other is resampled)."""
    from ..assets import DEMO_MIXTURE, ENHANCE_NOISY

    return [str(p) for p in ((ENHANCE_NOISY, DEMO_MIXTURE) if rate == 16000 else (DEMO_MIXTURE, ENHANCE_NOISY))]


@dataclasses.dataclass(frozen=True)
class NoiseRequest:
    """What `noise` is asked: the evaluation audio (files, folders or LibriMix CSVs; ``sources``
    for one file), calibration and held-out sets, their recording limits, and the choices."""

    audio: tuple[str, ...]
    out: Path
    sources: tuple[str, ...] = ()
    calib: tuple[str, ...] | None = None
    heldout: tuple[str, ...] | None = None
    calib_files: int | None = 64
    audio_files: int | None = None
    heldout_files: int | None = None
    tile_w: int = 256
    target: Target = Target()
    calib_count: int = 1024
    scheme: qs.Scheme = qs.Scheme()
    clipping: str = "auto"
    ort_check: bool = True
    effects: bool = True


def _sets(source: ModelSource, request: NoiseRequest, report: Report) -> NoiseInputs:
    """The three sets loaded, calibration less any recording of the other two (held out means unseen)."""
    from .datasets import load_set, recordings, Recording

    rate, n_src = source.model.config.sample_rate, source.model.config.n_src
    if request.sources and (len(request.audio) != 1 or len(request.sources) != n_src):
        raise UserError(f"--s1/--s2 are the sources of one --audio file: pass one file and {n_src} source(s)")
    if request.sources:
        evaluation = load_set([Recording(Path(request.audio[0]), tuple(Path(p) for p in request.sources))], rate)
    else:
        evaluation = load_set(recordings(list(request.audio), n_src, request.audio_files, what="--audio"), rate)
    heldout = None if request.heldout is None else \
        load_set(recordings(list(request.heldout), n_src, request.heldout_files, what="--heldout"), rate)
    calib_specs = list(request.calib) if request.calib else _default_calibration(rate)
    calibration = load_set(recordings(calib_specs, n_src, None, what="--calib"), rate)
    seen = evaluation.digests() | (heldout.digests() if heldout is not None else set())
    kept = calibration.without(seen)
    if len(kept.wavs) < len(calibration.wavs):
        report(f"noise: {len(calibration.wavs) - len(kept.wavs)} calibration recording(s) are also evaluation or "
               "held-out audio: left out of the calibration")
    if not kept.wavs:
        raise UserError("every calibration recording is also evaluation audio; pass --calib with other recordings "
                        "(a folder or a LibriMix metadata CSV)")
    if request.calib_files is not None and len(kept.wavs) > request.calib_files:
        chosen = np.sort(np.random.default_rng(0).choice(len(kept.wavs), request.calib_files, replace=False))
        kept = dataclasses.replace(kept, recordings=[kept.recordings[k] for k in chosen],
                                   wavs=[kept.wavs[k] for k in chosen],
                                   sources=None if kept.sources is None else [kept.sources[k] for k in chosen])
    return NoiseInputs(evaluation, kept, heldout)


def noise_command(source: ModelSource, request: NoiseRequest, report: Report = print) -> int:
    """Writes noise_report.json, noise_layers.png and model_scripts/; exit 0 (the report says
    whether the target was reached)."""
    from ..runs.run_folder import write_json

    out = request.out
    parse_clipping(request.clipping)  # a bad value is refused before any work
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; pass a folder")
    inputs = _sets(source, request, report)  # every input checked before the first output
    check_run_files(source.given() + [("the --audio input", r.path) for r in inputs.evaluation.recordings]
                    + [("the --calib input", r.path) for r in inputs.calibration.recordings],
                    [out / "noise_report.json", out / "noise_layers.png"])
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create --out {out}: {exc.strerror}; pass a writable folder") from None
    record = analyze_noise(source, inputs, request, report)
    record.update({"audio": list(request.audio), "sources": list(request.sources),
                   "calibration": [str(r.path) for r in inputs.calibration.recordings]})
    write_json(out / "noise_report.json", record)
    plot_layer_noise(out / "noise_layers.png", record)
    si = record["si_snri_db"]
    improvement = "" if si["float"] is None else \
        f"; SI-SNRi float {si['float']:.2f}, all-8 {si['all8']:.2f}, advised {si['advised']:.2f} dB"
    rtf = record["predicted_device_rtf"]
    cost = "" if not rtf else f"; predicted device RTF all-8 {rtf['all8']['rtf']:.3f}, advised " \
        f"{rtf['advised']['rtf']:.3f}, all-16 {rtf['all16']['rtf']:.3f}"
    report(f"noise: all-8 {record['final_output_si_snr_vs_float_db_all8']:.2f} dB, advised "
           f"{record['final_output_si_snr_vs_float_db_advised']:.2f} dB with {record['n_layers_16bit']} of "
           f"{record['n_layers']} layers a16_w16 and {record['n_layers_not_a8_w8'] - record['n_layers_16bit']} "
           f"a8_w8_a16 (target {'reached' if record['target_reached'] else 'NOT reached'} on the "
           f"{record['target_reached_on']} audio){improvement}{cost}; "
           f"{len(record['rescale_feasibility']['all8'])} rescale problem(s) at 8 bits, "
           f"{len(record['rescale_feasibility']['advised'])} as advised; {out / 'noise_report.json'} "
           f"({record['seconds']:.0f} s)")
    return 0
