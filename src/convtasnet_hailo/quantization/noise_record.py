"""The verdict fields of `noise`'s report: the scheme and each optimization the emulation used,
the advised modes, the outcomes at all-8, as advised and at all-16, rescale feasibility and the
three sets (pure: values in, a JSON-ready dict out)."""

from __future__ import annotations

import dataclasses

from ..hailo import quant_scheme as qs
from ..hailo.emulation import Calibrated, Precision, feasibility
from ..model.source import ModelSource
from .noise_inputs import NoiseInputs
from .noise_types import MAX_16BIT_SHARE, CalibratedRun, NoiseSettings


def noise_record(
    source: ModelSource,
    run: CalibratedRun,
    base: Calibrated,
    advice,
    outcomes: dict,
    settings: NoiseSettings,
    inputs: NoiseInputs,
) -> dict:
    """The report's verdict fields: the scheme, the advised modes, the three outcomes (pure)."""
    precision, rate, target = advice.precision, source.model.config.sample_rate, settings.target
    chosen = [name for name in run.layers if precision.modes.get(name, qs.DEFAULT_MODE) != qs.DEFAULT_MODE]
    sixteen = [name for name in chosen if precision.modes[name] == "a16_w16"]
    all8, advised, all16, flo = outcomes["all8"], outcomes["advised"], outcomes["all16"], outcomes["float"]
    return {
        **source.to_json(),
        "tile_w": settings.tile_w,
        "target": dataclasses.asdict(target),
        "target_described": target.describe(),
        "target_decided_by": "si_snri_loss_db"
        if target.si_snri_loss_db is not None and flo is not None
        else "si_snr_vs_float_db",
        "target_db": target.si_snr_vs_float_db,
        "n_layers": len(run.layers),
        "weight_granularity": base.scheme.weight_granularity.value,
        "scheme": base.scheme.to_json(),
        "optimizations": optimizations_record(base),
        "n_layers_16bit": len(sixteen),
        "layers_16bit": sixteen,
        "n_layers_not_a8_w8": len(chosen),
        "precision_modes": {name: precision.modes[name] for name in chosen},
        "final_output_si_snr_vs_float_db_all8": all8.vs_float_db,
        "final_output_si_snr_vs_float_db_advised": advised.vs_float_db,
        "final_output_si_snr_vs_float_db_all16": all16.vs_float_db,
        "target_reached": advice.reached,
        "target_reached_on": "heldout" if inputs.heldout is not None else "evaluation",
        "advice": advice.record,
        "predicted_device_rtf": advice.rtf,
        "per_stage_sqnr_db_all8": all8.per_stage,
        "si_snri_db": {"float": flo, "all8": all8.si_snri, "advised": advised.si_snri, "all16": all16.si_snri},
        "si_snri_loss_db": None
        if flo is None
        else {k: flo - outcomes[k].si_snri for k in ("all8", "advised", "all16")},
        "rescale_feasibility": {
            "all8": feasibility(run.plan, base.ranges, Precision()),
            "advised": feasibility(run.plan, base.ranges, precision),
        },
        "calibration_set": inputs.calibration.describe(rate) | {"tiles_per_input": base.calibration.tiles},
        "heldout_set": None if inputs.heldout is None else inputs.heldout.describe(rate),
        "evaluation_set": inputs.evaluation.describe(rate),
        "assumptions": "src/convtasnet_hailo/hailo/quant_scheme.py",
    }


def optimizations_record(base) -> dict:
    """Each DFC optimization the emulation used, as the model scripts state it."""
    scheme = base.scheme
    return {
        "equalization": {"enabled": scheme.equalization, "pairs": [dataclasses.asdict(p) for p in base.equalized]},
        "bias_correction": {"enabled": scheme.bias_correction},
        "activation_clipping": {
            "enabled": scheme.clip_percentile is not None,
            "mode": "percentile" if scheme.clip_percentile is not None else "minmax",
            "percentile": scheme.clip_percentile,
        },
        "headroom": {"enabled": scheme.headroom != 1.0, "factor": scheme.headroom},
        "finetune": {"enabled": False, "why": "QFT is not emulated; the model scripts disable it"},
        "fused_activations": {"enabled": scheme.fuse_activations},
    }


def advice_problems(record: dict) -> list[str]:
    """What makes the advice of a `noise` record (:func:`noise_record`'s fields) a loud warning,
    and a non-zero exit with ``--strict``: the target missed, or more than ``MAX_16BIT_SHARE`` of
    the layers at 16 bits. Empty when the advice is sound."""
    problems = []
    if not record["target_reached"]:
        reach = (record.get("advice") or {}).get("out_of_reach")
        why = (
            f" (out of reach: every layer at 16 bits gives {reach['all_units_16bit_si_snr_vs_float_db']:.2f} dB "
            "against float)"
            if reach
            else ""
        )
        problems.append(
            f"the quantization target ({record['target_described']}) is NOT reached on the "
            f"{record['target_reached_on']} audio{why}; pass a reachable --target-loss-db / --target-db, "
            "or calibrate on more audio like the model's"
        )
    share = record["n_layers_16bit"] / max(record["n_layers"], 1)
    if share > MAX_16BIT_SHARE:
        problems.append(
            f"{record['n_layers_16bit']} of {record['n_layers']} layers ({share:.0%}) advised 16-bit, more than "
            f"{MAX_16BIT_SHARE:.0%}: 16-bit layers run several times slower on the device; check the calibration "
            "audio (--calib) and the target"
        )
    return problems
