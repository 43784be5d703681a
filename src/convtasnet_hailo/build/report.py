"""Step 6: ``BUILD/report.md`` in plain words with its figures (``plan.png``: the chosen plan's stages;
``noise.png``: each layer's SQNR at 8 bits and the layers advised at 16), from ``build.json``."""

from __future__ import annotations

import logging
from pathlib import Path

from ..files import write_text_atomically
from .record import BuildRecord
from .steps import Context

log = logging.getLogger(__name__)

#: The files the report writes in the build folder (the report is a page of the build, not of this repository).
REPORT, PLAN_PNG, NOISE_PNG = "report" + ".md", "plan.png", "noise.png"

#: What no build here measures: said in every report.
UNCONFIRMED = (
    "device time: the cost model's prediction (plan/cost_model.py, its parameters and their sources), "
    "not a measurement on the chip",
    "8-bit quality: the emulation of the Dataflow Compiler's quantization (hailo/quant_scheme.py), "
    "not the HEF's output; run `parity --bundle` on the device to confirm it",
    "the PCIe link: the device's link is what `doctor --bundle` reports on the Pi",
)


def write_report(record: BuildRecord, ctx: Context) -> dict:
    """BUILD/report.md and the figures the steps so far allow; what was written."""
    figures = [name for name in (_plan_figure(record, ctx), _noise_figure(record, ctx)) if name]
    text = "\n".join(_sections(record, figures)) + "\n"
    write_text_atomically(ctx.out / REPORT, text)
    return {"line": f"{ctx.out / REPORT}", "figures": figures}


def _sections(record: BuildRecord, figures: list[str]) -> list[str]:
    s, model = record.settings, record.model
    config = model["config"]
    lines = [
        f"# Build of {model['name']} for {s.hw_arch}",
        "",
        f"Model: `{model['given']}` (sha256 `{model['sha256'][:16]}...`), {config['sample_rate']} Hz, "
        f"{config['n_src']} source(s), {'causal' if config['causal'] else 'non-causal'}, norm {config['norm_type']}.",
        f"Job: {s.job}" + (f" in hops of {s.hop_ms:g} ms" if s.hop_ms else "") + f"; chip {s.hw_arch} behind PCIe "
        f"{s.link} x1; target: at most {s.target_loss_db:g} dB lost against float on held-out audio.",
        "",
        "## Steps",
        "",
        "| step | state | seconds | detail |",
        "|---|---|---|---|",
    ]
    lines += [f"| {n} | {st.status} | {st.seconds:.1f} | {st.detail[:160]} |" for n, st in record.steps.items()]
    lines += _choice_section(record.outputs("choose"))
    lines += _stage_section(record)
    lines += _quantization_section(record.outputs("split"), record.outputs("noise"))
    lines += _device_section(record)
    lines += ["", "## Figures", ""] + [f"![{name}]({name})" for name in figures]
    lines += ["", "## Not confirmed on hardware", ""] + [f"- {u}" for u in UNCONFIRMED]
    return lines


def _choice_section(choice: dict) -> list[str]:
    if not choice:
        return []
    lines = ["", "## The choice", "", f"Chosen: {choice['reason']}.", ""]
    if choice["job"] == "separate":
        lines += ["| tile width | predicted device s (10 s of audio) | RTF | why |", "|---|---|---|---|"]
        lines += [
            f"| {c['tile_w']} | {c['device_s']:.4f} | {c['rtf']:.4f} | {c['why']} |" for c in choice["candidates"]
        ]
    else:
        lines += ["| plan | execution mode | device ms per hop | latency ms | why |", "|---|---|---|---|---|"]
        lines += [
            f"| {c['plan']} | {c['execution_mode']} | {c['device_ms_per_hop']:.3f} | "
            f"{c['end_to_end_latency_ms']:.1f} | {c['why']} |"
            for c in choice["candidates"]
        ]
    return lines


def _stage_section(record: BuildRecord) -> list[str]:
    export, noise = record.outputs("export"), record.outputs("noise")
    if not export:
        return []
    sqnr = noise.get("per_stage_sqnr_db_all8", {})
    sixteen = noise.get("layers_16bit", [])
    lines = ["", "## Stages", "", f"{len(export['stages'])} stages at tile width {export['tile_w']}, execution mode "
             f"{export['execution_mode']}; every graph passes the Hailo parser rules and the packing check.", "",
             "| stage | emulated 8-bit SQNR (dB) | layers advised at 16 bits |", "|---|---|---|"]  # fmt: skip
    for stage in export["stages"]:
        db = sqnr.get(stage)
        count = sum(1 for layer in sixteen if layer.startswith(f"{stage}/") or layer.startswith(f"{stage}_"))
        lines.append(f"| {stage} | {'-' if db is None else f'{db:.1f}'} | {count} |")
    parity = export.get("parity", {})
    if "tensors" in parity:
        verdict = "every one within" if parity["all_close"] else "NOT all within"
        lines += ["", f"Float parity (the exported ONNX stages against the model, 2 s probe): {verdict} the "
                  f"exactness contract; largest max-abs {parity['max_abs']:.2e}.", "",
                  "| tensor | max-abs | bound | within |", "|---|---|---|---|"]  # fmt: skip
        lines += [
            f"| {name} | {t['max_abs']:.2e} | {t['bound']:.2e} | {'yes' if t['all_close'] else 'NO'} |"
            for name, t in parity["tensors"].items()
        ]
    elif parity:
        lines += ["", f"Float parity: {parity.get('skipped')}."]
    return lines


def _quantization_section(split: dict, noise: dict) -> list[str]:
    lines = []
    if split:
        lines += ["", "## Calibration", "", f"CALIB: {split['line']}."]
        if split.get("rate_warning"):
            lines.append(f"Warning: {split['rate_warning']}.")
    if noise:
        loss = noise["heldout_si_snri_loss_db"]
        lines += ["", "## Quantization", "", f"Precision advice: {noise['line']}."]
        lines.append(
            f"Quantization loss on the held-out audio: {loss:.3f} dB SI-SNRi against float."
            if loss is not None
            else "The held-out audio has no sources: the loss is judged as SI-SNR of the output against float."
        )
        lines += [f"**WARNING: {w}.**" for w in noise["warnings"]]
    return lines


def _device_section(record: BuildRecord) -> list[str]:
    choice, s = record.outputs("choose"), record.settings
    lines = ["", "## On the device", ""]
    if choice:
        p = choice["prediction"]
        if choice["job"] == "separate":
            lines.append(f"Predicted real-time factor on {s.hw_arch} behind PCIe {s.link} x1: {p['rtf']:.4f}.")
        else:
            lines.append(
                f"Predicted per hop on {s.hw_arch} behind PCIe {s.link} x1: {p['device_ms_per_hop']:.2f} ms of "
                f"device time, {p['end_to_end_latency_ms']:.1f} ms end to end."
            )
    state = record.steps.get("compile")
    if state is not None:
        lines.append(f"Compile: {state.status}. {state.detail}")
    bundle = record.outputs("bundle")
    if bundle:
        lines.append(f"Bundle: `device/` ({len(bundle['files'])} files) and `{bundle['archive']}`; HEFs need "
                     f"HailoRT {(bundle.get('hailort') or {}).get('major_minor')} (DFC "
                     f"{(bundle.get('hailort') or {}).get('dfc')}).")  # fmt: skip
    return lines


def _plan_figure(record: BuildRecord, ctx: Context) -> str | None:
    """The exported plan's stages (``plan.report.plot_plan``)."""
    from ..export.manifest import read_manifest
    from ..plan import build_plan
    from ..plan.report import plot_plan, summarize_plan

    if not record.outputs("export"):
        return None
    manifest = read_manifest(ctx.out / "export")
    plan = build_plan(ctx.source.model, manifest.plan.options, manifest.plan.path)
    plot_plan(ctx.out / PLAN_PNG, summarize_plan(plan, manifest.tile_w, manifest.packing))
    return PLAN_PNG


def _noise_figure(record: BuildRecord, ctx: Context) -> str | None:
    """Each layer's SQNR alone at 8 bits (plan order), the advised 16-bit layers in red."""
    noise = record.outputs("noise")
    if not noise:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..files import written_atomically

    names = list(noise["per_layer_sqnr_db"])
    values = [min(v, 120.0) for v in noise["per_layer_sqnr_db"].values()]
    chosen = set(noise["layers_16bit"])
    fig, ax = plt.subplots(figsize=(max(8, len(names) * 0.06), 4))
    ax.bar(range(len(names)), values, color=["C3" if n in chosen else "C0" for n in names], width=1.0)
    ax.set_xlabel("layer (plan order); red: advised at 16 bits")
    ax.set_ylabel("SQNR of the layer alone at 8 bits (dB)")
    ax.set_title(f"{record.model['name']}: {noise['line'][:110]}", fontsize=8)
    fig.tight_layout()
    with written_atomically(ctx.out / NOISE_PNG) as temporary:
        fig.savefig(temporary, dpi=100, format="png")
    plt.close(fig)
    return NOISE_PNG


def report_path(out: Path) -> Path:
    return out / REPORT
