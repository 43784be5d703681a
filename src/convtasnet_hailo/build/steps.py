"""The build's steps before the compile, each a function of the build's context returning what it
found (plain JSON for ``build.json``): choose, export (with the Hailo rules, the packing and the
stages' float parity checked), the calibration split and the precision advice (`noise`)."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

from ..errors import UserError
from ..export.hailo_rules import CheckLimits
from ..files import write_text_atomically
from ..model.source import ModelSource
from ..quantization.noise_types import DEFAULT_TARGET_DB
from .record import BuildSettings, folder_hash

log = logging.getLogger(__name__)

#: Build folder layout (docs/build.md).
CHOICE, EXPORT, NOISE, PARITY = "choice", "export", "noise", "parity"

#: More than this share of layers at 16 bits is a loud warning (and exit 1 with --strict).
MAX_16BIT_SHARE = 0.2

#: The target when the held-out audio has no sources (no SI-SNRi to lose): SI-SNR against float,
#: dB, `noise`'s own (``quantization.noise_types.DEFAULT_TARGET_DB``).
FALLBACK_VS_FLOAT_DB = DEFAULT_TARGET_DB


@dataclasses.dataclass(frozen=True)
class Context:
    """One build: its folder, settings, the model (read from the build's own copy), the limits."""

    out: Path
    settings: BuildSettings
    source: ModelSource
    model_copy: Path
    limits: CheckLimits = CheckLimits()


def run_choose(ctx: Context) -> dict:
    """Step 1: the choice, its candidates into ``choice/choice.json``."""
    from .choose import choose

    choice = choose(ctx.source.model, ctx.settings, ctx.limits)
    folder = ctx.out / CHOICE
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomically(folder / "choice.json", json.dumps(choice.to_json(), indent=1) + "\n")
    log.info(f"build: choose: {choice.headline()}")
    return {**choice.to_json(), "line": choice.headline()}


def _layout(choice: dict, config):
    from ..plan.options import PlanOptions
    from ..plan.passes.rf_windows import DEFAULT_MAX_WIDTH, hop_samples

    layout = PlanOptions()
    if choice["rf_hop_ms"] is None:
        return layout
    hop = hop_samples(choice["rf_hop_ms"], config.sample_rate, config.stride)
    return dataclasses.replace(layout, rf_hop_frames=hop // config.stride, rf_max_width=DEFAULT_MAX_WIDTH)


def run_export(ctx: Context, choice: dict) -> dict:
    """Step 2: the chosen export into ``export/``, checked (rules, packing), and its stages' float
    parity against the model on one probe (``parity/``). A broken rule fails the step."""
    from ..export.exporter import export_plan
    from ..export.graph_check import check_export
    from ..export.verdicts import packing_verdict, rules_verdict
    from ..plan import build_plan
    from ..plan.options import PlanPath
    from ..plan.packing import PackingRequest

    model, folder = ctx.source.model, ctx.out / EXPORT
    plan = build_plan(model, _layout(choice, model.config), PlanPath.FULL_CHAIN)
    packing = PackingRequest(mode=choice["execution_mode"], hw_arch=ctx.settings.hw_arch).packing(
        [s.name for s in plan.stages]
    )
    result = export_plan(plan, choice["tile_w"], folder, ctx.source.to_json(), ctx.limits, packing=packing)
    verdicts = (
        rules_verdict(check_export(folder, ctx.limits), f"check {folder}"),
        packing_verdict(result.manifest.packing, f"check {folder}"),
    )
    problems = [p for v in verdicts for p in v.problems]
    if problems:
        raise UserError(f"the export breaks {len(problems)} check(s): {problems[0]}; see {folder}")
    log.info(f"build: export: {len(plan.stages)} stages at tile_w {result.manifest.tile_w} in {folder}, checked")
    return {
        "line": f"{len(plan.stages)} stages at tile width {result.manifest.tile_w}, every check passed",
        "stages": [s.name for s in plan.stages],
        "tile_w": result.manifest.tile_w,
        "execution_mode": result.manifest.packing.mode.value,
        "check": [line for v in verdicts for line in v.lines],
        "parity": float_parity(ctx, result.manifest.tile_w),
        "artifact": folder_hash(folder),
    }


def float_parity(ctx: Context, tile_w: int) -> dict:
    """The exported stages (ONNX Runtime) against the float model on one probe of two seconds,
    every stage's output tensor compared (``parity.runner``; the exactness contract)."""
    from ..parity.runner import ParityCase, ParityRun, run_parity
    from ..plan import build_plan
    from ..plan.options import PlanOptions, PlanPath
    from ..runtime import RunSpec, open_run
    from ..runtime.backend_setup import BackendOptions

    folder, config = ctx.out / PARITY, ctx.source.model.config
    folder.mkdir(parents=True, exist_ok=True)
    if ctx.out.joinpath(EXPORT, "manifest.json").is_file() and _rf_export(ctx):
        return {"skipped": "the rf-windows spans are judged by `parity` on the stream path, not stitched tiles"}
    backend = BackendOptions(name="onnxruntime", export_dir=ctx.out / EXPORT)
    plan = build_plan(ctx.source.model, PlanOptions(), PlanPath.FULL_CHAIN)
    case = ParityCase(PlanPath.FULL_CHAIN, tile_w, 2 * config.sample_rate)
    spec = RunSpec(source=ctx.source, backend=backend, tile_w=tile_w)
    with open_run(spec, plan=plan) as opened:
        opened.backend.prepare(plan, tile_w)
        outcome = run_parity(ParityRun(plan, opened.backend, ctx.source, folder), [case])[0]
    tensors = {d.name: {"max_abs": d.max_abs, "bound": d.bound, "all_close": d.all_close} for d in outcome.diffs}
    log.info(f"build: float parity: {sum(t['all_close'] for t in tensors.values())}/{len(tensors)} tensors within")
    return {"all_close": outcome.success, "max_abs": outcome.record["max_abs"], "tensors": tensors}


def _rf_export(ctx: Context) -> bool:
    from ..export.manifest import read_manifest

    return read_manifest(ctx.out / EXPORT).plan.options.rf_hop_frames is not None


def run_split(ctx: Context) -> dict:
    """Step 3: CALIB split (seeded, stated), rates warned, calibration audio written."""
    from .split import split_calibration, warn_rates, write_calibration_audio

    config = ctx.source.model.config
    split = split_calibration(ctx.settings.calib, config.n_src, ctx.settings.heldout_share, ctx.settings.seed)
    warning = warn_rates(split, config.sample_rate)
    written = write_calibration_audio(split, config.sample_rate, ctx.out)
    log.info(f"build: split: {split.line()}")
    return {
        **split.to_json(),
        "line": split.line(),
        "rate_warning": warning,
        "calibration_audio": [str(Path(p).relative_to(ctx.out)) for p in written],
        "artifact": folder_hash(ctx.out / "calib" / "audio"),
    }


def run_noise(ctx: Context, tile_w: int, split: dict) -> dict:
    """Step 4: the precision advice against float (``quantization.noise``) at the export's tile
    width and layout, priced for the chip and link, calibrated on the calibration audio (its tiles
    in ``calib/``, which the compile then reuses) and judged on the held-out audio, into ``noise/``."""
    from ..quantization.noise import analyze_noise
    from ..quantization.noise_inputs import NoiseAudio, load_noise_inputs
    from ..quantization.noise_types import NoiseSettings, Target

    folder = ctx.out / NOISE
    folder.mkdir(parents=True, exist_ok=True)
    missing = [p for p in split["heldout"] if not Path(p).is_file()]
    if missing:
        raise UserError(f"the held-out audio {missing[0]} is not here; run the build's noise step where CALIB is")
    audio = NoiseAudio(audio=tuple(split["heldout"]), calib=(str(ctx.out / "calib" / "audio"),), calib_files=None)
    from ..export.manifest import read_manifest
    from .choose import device_model

    settings = NoiseSettings(
        out=folder,
        tile_w=tile_w,
        target=Target(FALLBACK_VS_FLOAT_DB, ctx.settings.target_loss_db),
        calib_count=ctx.settings.calib_count,
        ort_check=False,
        effects=False,
        device=device_model(ctx.settings),
        options=_advised_layout(read_manifest(ctx.out / EXPORT).plan.options),
        calib_dir=ctx.out / "calib",
    )
    record = analyze_noise(ctx.source, load_noise_inputs(ctx.source, audio), settings)
    write_text_atomically(folder / "noise_report.json", json.dumps(record, indent=1, default=str) + "\n")
    summary = noise_summary(record, ctx.settings.target_loss_db)
    log.info(f"build: noise: {summary['line']}")
    return {**summary, "artifact": folder_hash(folder / "model_scripts")}


def _advised_layout(options):
    """The export's layout, or for receptive-field spans the per-hop one (the advice's plan)."""
    from ..plan.options import PlanOptions

    return options if options.rf_hop_frames is None else PlanOptions()


def noise_summary(record: dict, target_loss_db: float) -> dict:
    """What the report says of the advice: the judged target, the loss on the held-out audio, the
    16-bit layers, per-stage SQNR at 8 bits, and the warnings (missed target, > 20 % at 16 bits)."""
    si = record["si_snri_db"]
    loss = None if si["float"] is None or si["advised"] is None else si["float"] - si["advised"]
    judged = (
        f"SI-SNRi loss against float <= {target_loss_db:g} dB"
        if loss is not None
        else f"SI-SNR against float >= {FALLBACK_VS_FLOAT_DB:g} dB (the held-out audio has no sources)"
    )
    share = record["n_layers_16bit"] / max(1, record["n_layers"])
    warnings = []
    if not record["target_reached"]:
        warnings.append(f"the precision advice does NOT reach its target ({judged}) on the held-out audio")
    if share > MAX_16BIT_SHARE:
        warnings.append(
            f"{record['n_layers_16bit']} of {record['n_layers']} layers ({share:.0%}) advised at 16 bits, over "
            f"{MAX_16BIT_SHARE:.0%}: the device runs them about 7x slower"
        )
    line = (
        f"advised {record['final_output_si_snr_vs_float_db_advised']:.2f} dB against float "
        f"(all 8-bit {record['final_output_si_snr_vs_float_db_all8']:.2f} dB) with {record['n_layers_16bit']} of "
        f"{record['n_layers']} layers at 16 bits; target ({judged}) "
        + ("reached" if record["target_reached"] else "NOT reached")
        + ("" if loss is None else f"; SI-SNRi loss on the held-out audio {loss:.3f} dB")
    )
    return {
        "line": line,
        "target": judged,
        "target_reached": record["target_reached"],
        "heldout_si_snri_loss_db": loss,
        "si_snri_db": si,
        "vs_float_db_all8": record["final_output_si_snr_vs_float_db_all8"],
        "vs_float_db_advised": record["final_output_si_snr_vs_float_db_advised"],
        "n_layers": record["n_layers"],
        "n_layers_16bit": record["n_layers_16bit"],
        "layers_16bit": record["layers_16bit"],
        "per_stage_sqnr_db_all8": record["per_stage_sqnr_db_all8"],
        "per_layer_sqnr_db": record["per_layer_sqnr_db"],
        "seconds": record["seconds"],
        "warnings": warnings,
    }
