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
:func:`analyze_noise` returns the report's record (it names ``weight_granularity``, the
``scheme`` and each ``optimizations`` step) and writes ``model_scripts/<stage>.alls``
(:mod:`.model_scripts`); the `noise` command (``commands/noise.py``) writes the record and the
figure. The sets are loaded by :mod:`.noise_inputs`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping

import numpy as np

from ..backends.base import Backend
from ..backends.hailo_quant import HailoQuantBackend
from ..errors import UserError
from ..hailo import quant_scheme as qs
from ..hailo.emulation import (
    Calibrated,
    Emulation,
    Precision,
    build_emulation,
    calibrated,
    rescheme,
    run_emulated,
    value_bits,
)
from ..hailo.integer_ops import QValue, emulate_op, float_op, layer_name
from ..metrics.separation import score_separation, si_snr
from ..metrics.sqnr import PowerSums
from ..model.source import ModelSource
from ..plan import PlanPath, StagePlan, build_plan
from ..plan.stages import Stage
from ..progress import Progress
from ..runtime.engine import open_backend_named, stitched_executor
from .datasets import AudioSet
from .model_scripts import write_model_scripts
from .noise_inputs import NoiseInputs
from .noise_record import noise_record
from .noise_types import CalibratedRun, NoiseSettings, Outcome

log = logging.getLogger(__name__)


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
        for index, (op, qop) in enumerate(zip(exact_stage.ops, quant_stage.ops, strict=False)):
            name = layer_name(stage, index, op)
            reads = [values[n] for n in op.reads]
            exact = float_op(op, reads)
            grids = [qs.activation_grid(*emulation.ranges[n], bits[n]) for n in op.reads]
            quantized = emulate_op(
                qop,
                [QValue(qs.quantize(x, g), g) for x, g in zip(reads, grids, strict=False)],
                qs.activation_grid(*emulation.ranges[op.output], bits[op.output]),
                emulation.precision.bits(name).weight,
                emulation.scheme.weight_granularity,
            )
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


def _final(plan: StagePlan, backend: Backend, tile_w: int, audio: list[np.ndarray], what: str = "") -> list[np.ndarray]:
    """The plan's output on each recording, (n_src, T) each; ``what`` names the progress lines."""
    executor = stitched_executor(plan, backend, tile_w)
    progress = Progress(log, f"noise: {what or backend.name}", len(audio), "recordings")
    finals = []
    for wav in audio:
        finals.append(executor.run({"wav": wav[None, None].astype(np.float32)})["final_output"])
        progress.step()
    progress.finish()
    return [final.reshape(-1, final.shape[-1]) for final in finals]


def _si_snr_vs_float(quantized: list[np.ndarray], exact: list[np.ndarray]) -> float:
    return float(np.mean([si_snr(q[i], e[i]) for q, e in zip(quantized, exact, strict=False) for i in range(len(e))]))


def _si_snri(estimates: list[np.ndarray], audio: AudioSet) -> float | None:
    if audio.sources is None:
        return None
    return float(
        np.mean(
            [
                score_separation(est, src, wav).mean_si_snri
                for est, src, wav in zip(estimates, audio.sources, audio.wavs, strict=False)
            ]
        )
    )


class Judge:
    """One set of recordings, its float output, and the emulation's output on it."""

    def __init__(self, plan: StagePlan, tile_w: int, audio: AudioSet) -> None:
        self.plan, self.tile_w, self.audio = plan, tile_w, audio
        self.exact = _final(plan, open_backend_named("torch_proxy"), tile_w, audio.wavs, "float outputs")
        self.float_si_snri = _si_snri(self.exact, audio)

    def run(self, emulation: Emulation, per_stage: bool = False) -> Outcome:
        """The emulation's output on this audio (with ``per_stage``, each stage's SQNR too: it runs
        every stage in float as well, twice the time)."""
        backend = StageNoiseProbe(emulation) if per_stage else open_backend_named("hailo_quant", emulation=emulation)
        final = _final(self.plan, backend, self.tile_w, self.audio.wavs)
        powers = backend.powers.db() if per_stage else {}
        return Outcome(final, _si_snr_vs_float(final, self.exact), _si_snri(final, self.audio), powers)

    def probe(self, emulation: Emulation) -> LayerNoiseProbe:
        probe = LayerNoiseProbe(emulation)
        _final(self.plan, probe, self.tile_w, self.audio.wavs, "per-layer study")
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


def choose_clipping(base: Calibrated, judge: Judge, candidates=CLIPPING_CANDIDATES) -> tuple[Calibrated, list[dict]]:
    """The activation clipping (min/max, a percentile, or min/max with headroom) whose all-8
    emulation scores best on the held-out audio, and every candidate's score."""
    table, best = [], None
    progress = Progress(log, "noise: clipping", len(candidates), "candidates")
    for percentile, headroom in candidates:
        candidate = rescheme(base, dataclasses.replace(base.scheme, clip_percentile=percentile, headroom=headroom))
        outcome = judge.run(build_emulation(candidate, Precision()))
        table.append({"clip_percentile": percentile, "headroom": headroom, **outcome.summary()})
        progress.done += 1
        log.info(
            f"noise: clipping ({progress.status()}) {'min/max' if percentile is None else f'{percentile}%'}"
            f"{'' if headroom == 1.0 else f' x{headroom:g}'}: all-8 {outcome.vs_float_db:.2f} dB against float"
            + ("" if outcome.si_snri is None else f", SI-SNRi {outcome.si_snri:.2f} dB")
            + " (held-out audio)"
        )
        if best is None or _key(outcome, judge) > best[0]:
            best = (_key(outcome, judge), candidate)
    return best[1], table


def _calibrate(source: ModelSource, inputs: NoiseInputs, settings: NoiseSettings) -> CalibratedRun:
    from .calibration import make_calibration

    plan = build_plan(source.model, settings.options, PlanPath.FULL_CHAIN)
    files = make_calibration(
        plan, settings.tile_w, inputs.calibration.wavs, settings.calibration_folder, settings.calib_count
    )
    base = calibrated(list(plan.stages), files, settings.scheme)
    layers = [layer_name(s, i, op) for s in plan.stages for i, op in enumerate(s.ops)]
    rate = source.model.config.sample_rate
    log.info(
        f"noise: {len(plan.stages)} stages, {len(layers)} layers; calibrated on "
        f"{len(inputs.calibration.wavs)} recording(s) ({inputs.calibration.seconds_total / rate:.0f} s), "
        f"{base.calibration.tiles} tiles per stage input; weights {settings.scheme.weight_granularity.value}, "
        f"{len(base.equalized)} conv pair(s) equalized"
    )
    return CalibratedRun(plan, files, base, layers)


def _judges(plan: StagePlan, tile_w: int, inputs: NoiseInputs) -> tuple:
    """(evaluation, held-out) judges: the held-out one chooses, the evaluation one reports."""
    evaluation = Judge(plan, tile_w, inputs.evaluation)
    judge = evaluation if inputs.heldout is None else Judge(plan, tile_w, inputs.heldout)
    for name, one in (("evaluation", evaluation),) + ((("held-out", judge),) if judge is not evaluation else ()):
        if one.float_si_snri is not None:
            log.info(f"noise: float SI-SNRi on the {name} audio: {one.float_si_snri:.2f} dB")
    return evaluation, judge


def _ranges(base: Calibrated, judge, clipping: str) -> tuple[Calibrated, list | None]:
    """The base with its activation clipping: fixed by ``--clipping``, or chosen on held-out audio."""
    fixed = parse_clipping(clipping)
    if fixed is None:
        return choose_clipping(base, judge)
    return rescheme(base, dataclasses.replace(base.scheme, clip_percentile=fixed[0], headroom=fixed[1])), None


def _probe(base: Calibrated, judge, evaluation, started: float) -> tuple[dict, dict]:
    """Per-layer SQNR (on the judge's audio) and coverage (on the evaluation audio) at all-8."""
    emulation = build_emulation(base, Precision())
    probe = judge.probe(emulation)
    per_layer = probe.powers.db()
    log.info(
        f"noise: per-layer SQNR measured ({time.perf_counter() - started:.0f} s); worst "
        f"{min(per_layer, key=per_layer.get)} at {min(per_layer.values()):.1f} dB"
    )
    coverage = (probe if judge is evaluation else evaluation.probe(emulation)).coverage()
    # Percentile clipping leaves its tails out of the calibration values on purpose: only a share
    # well above that says the calibration audio is unlike the evaluation audio.
    percentile = base.scheme.clip_percentile
    tail = 2 * (100.0 - percentile) / 100.0 if percentile is not None else 0.0
    outside = {name: share for name, share in coverage.items() if share > 10 * tail}
    if outside:
        worst = max(outside, key=outside.get)
        expected = f", 10 times more than the clipping leaves out ({tail:.4%})" if tail else ""
        log.warning(
            f"noise: {len(outside)} layer(s) see values outside their calibrated range on the evaluation audio"
            f"{expected} (worst {worst}: {outside[worst]:.3%}); calibrate on more audio like it (--calib DIR or CSV)"
        )
    return per_layer, coverage


def _outcomes(base: Calibrated, evaluation, advice) -> dict:
    """all-8, advised and all-16 on the evaluation audio (and float's SI-SNRi there, ``"float"``)."""
    all8 = evaluation.run(build_emulation(base, Precision()), per_stage=True)
    advised = all8 if advice.precision == Precision() else evaluation.run(build_emulation(base, advice.precision))
    all16 = evaluation.run(build_emulation(base, Precision(default="a16_w16")))
    log.info(
        f"noise: evaluation audio: all-8 {all8.vs_float_db:.2f} dB, advised {advised.vs_float_db:.2f} dB, "
        f"all-16 {all16.vs_float_db:.2f} dB against float"
    )
    return {"all8": all8, "advised": advised, "all16": all16, "float": evaluation.float_si_snri}


def _checks(
    run: CalibratedRun, base: Calibrated, evaluation, all8, settings: NoiseSettings, inputs: NoiseInputs
) -> dict:
    """The assumption flips and the ONNX Runtime cross-check, where asked for."""
    effects = assumption_effects(run.plan, base, run.files, evaluation, all8) if settings.effects else None
    cross_check = None
    if settings.ort_check:
        from .ort_crosscheck import ort_cross_check

        cross_check = ort_cross_check(run.plan, settings.tile_w, run.files, inputs.evaluation.wavs, all8.per_stage)
    return {"assumption_effects_all8": effects, "onnxruntime_qdq_cross_check": cross_check}


def analyze_noise(source: ModelSource, inputs: NoiseInputs, settings: NoiseSettings) -> dict:
    """The report's record (module docstring); the precision comes from
    :func:`~convtasnet_hailo.quantization.precision_advice.advise_precision`."""
    from .precision_advice import advise_precision

    started = time.perf_counter()
    run = _calibrate(source, inputs, settings)
    evaluation, judge = _judges(run.plan, settings.tile_w, inputs)
    base, clipping_table = _ranges(run.base, judge, settings.clipping)
    per_layer, coverage = _probe(base, judge, evaluation, started)
    advice = advise_precision(run.plan, base, judge, per_layer, settings.target, settings.tile_w, settings.device)
    outcomes = _outcomes(base, evaluation, advice)
    checks = _checks(run, base, evaluation, outcomes["all8"], settings, inputs)
    scripts = write_model_scripts(settings.out / "model_scripts", run.plan, advice.precision, base.scheme, base.ranges)
    record = noise_record(source, run, base, advice, outcomes, settings, inputs)
    record.update(
        {
            "activation_clipping_candidates_heldout": clipping_table,
            **checks,
            "heldout_float_si_snri_db": judge.float_si_snri,
            "per_layer_sqnr_db": {name: per_layer[name] for name in run.layers},
            "per_layer_flagged_below_db": {
                "threshold_db": 30.0,
                "layers": [n for n in run.layers if per_layer[n] < 30.0],
            },
            "coverage_outside_calibrated_range_by_layer": coverage,
            "clipped_fraction_by_layer": {name: share for name, share in coverage.items() if share > 0},
            "model_scripts": {stage: str(path) for stage, path in scripts.items()},
            "seconds": round(time.perf_counter() - started, 1),
        }
    )
    return record


def assumption_effects(plan: StagePlan, base: Calibrated, files, evaluation: Judge, all8: Outcome) -> dict:
    """All-8 quality on the evaluation audio with each assumption or optimization flipped, beside
    the chosen scheme's (the report's "what each costs")."""
    scheme = base.scheme
    rows = {"chosen": all8.summary()}
    other = (
        qs.WeightGranularity.PER_CHANNEL
        if scheme.weight_granularity is qs.WeightGranularity.PER_LAYER
        else qs.WeightGranularity.PER_LAYER
    )
    flips = {
        f"weights_{other.value}": dataclasses.replace(scheme, weight_granularity=other),
        f"bias_correction_{'off' if scheme.bias_correction else 'on'}": dataclasses.replace(
            scheme, bias_correction=not scheme.bias_correction
        ),
        "clipping_minmax": dataclasses.replace(scheme, clip_percentile=None, headroom=1.0),
        f"fused_activations_{'off' if scheme.fuse_activations else 'on'}": dataclasses.replace(
            scheme, fuse_activations=not scheme.fuse_activations
        ),
    }
    progress = Progress(log, "noise: assumption flips", len(flips) + 1, "runs")
    for name, flipped in flips.items():
        if flipped != scheme:
            rows[name] = evaluation.run(build_emulation(rescheme(base, flipped), Precision())).summary()
        progress.step()
    flipped = dataclasses.replace(scheme, equalization=not scheme.equalization)
    other_base = calibrated(list(plan.stages), files, flipped)
    if other_base.equalized or base.equalized:
        rows[f"equalization_{'off' if scheme.equalization else 'on'}"] = evaluation.run(
            build_emulation(other_base, Precision())
        ).summary()
    else:
        rows["equalization"] = "no conv pair of this plan qualifies (module quant_scheme): on and off are one emulation"
    for name, row in rows.items():
        if isinstance(row, dict):
            log.info(
                f"noise: all-8 with {name}: {row['si_snr_vs_float_db']:.2f} dB against float"
                + ("" if row["si_snri_db"] is None else f", SI-SNRi {row['si_snri_db']:.2f} dB")
            )
    return rows
