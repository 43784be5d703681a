"""What a plan costs on the device, before anyone compiles: stage invocations, HEFs and network
groups (packing), host steps, MACs and weight bytes per stage, and the values that cross the
host/device boundary per second of audio (halo included). The `plan` command's table, JSON and PNG.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Callable

from ..files import write_text_atomically
from .builder import StagePlan, float_only_options_of
from .host_steps import SplitSources
from .packing import ExecutionMode, Packing, pack_stages
from .stages import Stage


def tensor_groups(plan: StagePlan) -> dict[str, int]:
    """How many batch groups each tensor has: 1, or n_src for per-source tensors (after the
    masks are split by source; a stage's outputs have its widest input's groups)."""
    n_src = plan.config.n_src
    groups = {name: (n_src if name == "mask_output" else 1) for name in plan.inputs}
    for step in plan.steps:
        widest = max((groups.get(name, 1) for name in step.reads), default=1)
        for name in step.writes:
            groups[name] = n_src if isinstance(step, SplitSources) else widest
    return groups


def stage_row(stage: Stage, tile_w: int, frames_per_second: float, groups: dict[str, int]) -> dict:
    """One stage's cost. Values per second count every tile's inputs with their halo."""
    batch = max(groups.get(p.name, 1) for p in stage.inputs)
    values_in = sum(p.channels * p.width(tile_w) * batch for p in stage.inputs) / tile_w
    values_out = sum(p.channels * p.width(tile_w) * batch for p in stage.outputs) / tile_w
    return {
        "name": stage.name, "ops": len(stage.ops), "macs_per_frame": stage.macs_per_frame * batch,
        "weights": stage.weight_count, "weight_bytes_8bit": stage.weight_count,
        "weight_bytes_16bit": 2 * stage.weight_count, "batch_groups": batch,
        "inputs": {p.name: {"channels": p.channels, "halo": list(p.geometry.halo) if p.geometry.stride == 1 else None,
                            "tile_input_width": p.width(tile_w), "kind": p.kind.value} for p in stage.inputs},
        "outputs": {p.name: p.channels for p in stage.outputs},
        "boundary_values_per_audio_second": round((values_in + values_out) * frames_per_second),
    }


def execution_modes(plan: StagePlan, packing: Packing) -> dict:
    """Both execution modes for this plan and runtime (``plan.packing``): what each costs per
    utterance, and what each needs to run at all."""
    order = [s.name for s in plan.stages]
    needs = {ExecutionMode.SCHEDULED_GROUPS: "runs whatever the contexts (the only mode on HailoRT 5 / hailo10h)",
             ExecutionMode.ACTIVATED_PACKS: "HailoRT 4 only; every pack must compile single-context (the HEF says; "
                                            "hailo_runtime refuses a multi-context pack)"}
    return {mode.value: {**pack_stages(order, packing.limits, mode=mode).execution(order), "needs": needs[mode]}
            for mode in ExecutionMode}


def plan_summary(plan: StagePlan, tile_w: int, packing: Packing) -> dict:
    """The `plan --json` record."""
    config = plan.config
    # The encoder's output frames per second; every stage's frames are encoder frames.
    frames_per_second = config.sample_rate / config.stride
    groups = tensor_groups(plan)
    rows = [stage_row(stage, tile_w, frames_per_second, groups) for stage in plan.stages]
    boundary = sum(r["boundary_values_per_audio_second"] for r in rows)
    return {
        "path": plan.path.value, "tile_w": tile_w, **plan.options.to_json(), "model_config": config.to_json(),
        "stages": len(plan.stages), "stage_invocations_per_utterance": len(plan.stages),
        "host_steps": len(plan.steps) - len(plan.stages),
        "hefs": len(packing.hefs), "network_groups": len(packing.network_groups),
        "configure_windows": packing.windows, "fits_runtime_limits": not packing.hard_violations(),
        "limit_violations": packing.hard_violations(), "window_note": packing.window_note(),
        "execution": packing.execution([s.name for s in plan.stages]),
        "execution_modes": execution_modes(plan, packing),
        "macs_per_second": round(sum(r["macs_per_frame"] for r in rows) * frames_per_second),
        "weight_bytes_8bit": sum(r["weight_bytes_8bit"] for r in rows),
        "weight_bytes_16bit": sum(r["weight_bytes_16bit"] for r in rows),
        "boundary_values_per_audio_second": boundary,
        "boundary_bytes_per_audio_second_8bit": boundary,
        "boundary_bytes_per_audio_second_16bit": 2 * boundary,
        "packing": packing.to_json(),
        "per_stage": rows,
    }


def format_table(summary: dict) -> str:
    """A readable table: one line per stage, then the totals."""
    lines = [f"{'stage':36s} {'MACs/frame':>11s} {'weights':>9s} {'values/s':>12s}  HEF/network group"]
    where = {n: (h["name"], g["name"]) for h in summary["packing"]["hefs"] for g in h["network_groups"]
             for n in g["networks"]}
    for row in summary["per_stage"]:
        hef, group = where[row["name"]]
        lines.append(f"{row['name'][:36]:36s} {row['macs_per_frame']:>11,d} {row['weights']:>9,d} "
                     f"{row['boundary_values_per_audio_second']:>12,d}  {hef}/{group}")
    lines.append(
        f"{summary['stages']} stages ({summary['stage_invocations_per_utterance']} invocations per utterance), "
        f"{summary['host_steps']} host steps, {summary['hefs']} HEF(s), {summary['network_groups']} network group(s); "
        f"{summary['macs_per_second'] / 1e9:.2f} GMAC and {summary['boundary_values_per_audio_second'] / 1e6:.1f} M "
        f"boundary values ({summary['boundary_bytes_per_audio_second_8bit'] / 1e6:.1f} MB at 8 bits, "
        f"{summary['boundary_bytes_per_audio_second_16bit'] / 1e6:.1f} MB at 16) per second of audio; weights "
        f"{summary['weight_bytes_8bit'] / 1e6:.2f} MB at 8 bits")
    lines.append(execution_line(summary))
    options = float_only_options_of(summary)
    if options:
        lines.append(f"built with {' and '.join(options)}: a plan for the float backends (onnxruntime, torch_proxy); "
                     "compile and the Hailo backends refuse it, so the HEF figures are not a device's")
    return "\n".join(lines)


def execution_line(summary: dict) -> str:
    """The execution mode this packing is for, and the other one, per utterance."""
    def one(e: dict) -> str:
        entered = f"{e['switches']} scheduler switches" if e["mode"] == "scheduled_groups" else \
            f"{e['activations']} activations"
        return (f"{e['mode']}: {e['network_groups']} network group(s) in {e['configure_windows']} configure window(s) "
                f"of {e['network_groups_per_device']}; per utterance {entered}, {e['network_groups_configured']} "
                "network groups reconfigured")
    chosen = summary["execution"]
    other = [e for m, e in summary["execution_modes"].items() if m != chosen["mode"]]
    return f"execution mode {one(chosen)}" + "".join(f" | alternative {one(e)} ({e['needs']})" for e in other)


def plot_plan(path: Path, plan: StagePlan, summary: dict) -> Path:
    """One row per step, in order: stages as bars (MACs per frame, colored by network group),
    host steps as grey ticks; the packing and the limits in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..files import written_atomically

    # Color: the configuration window a stage's network group is configured in (all one color
    # when the plan configures at once).
    per_device = summary["packing"]["limits"]["network_groups_per_device"]
    groups = [g["name"] for h in summary["packing"]["hefs"] for g in h["network_groups"]]
    window_of_group = {name: index // per_device for index, name in enumerate(groups)}
    group_of = {n: f"window {window_of_group[g['name']] + 1}" for h in summary["packing"]["hefs"]
                for g in h["network_groups"] for n in g["networks"]}
    order = sorted(set(group_of.values()), key=lambda name: int(name.split()[-1]))
    colors = {name: plt.cm.tab10(i % 10) for i, name in enumerate(order)}
    macs = {row["name"]: row["macs_per_frame"] for row in summary["per_stage"]}
    height = max(4.0, 0.12 * len(plan.steps) + 1.5)
    fig, ax = plt.subplots(figsize=(9, min(height, 60)))
    labelled = len(plan.stages) <= 120
    for y, step in enumerate(plan.steps):
        if isinstance(step, Stage):
            group = group_of[step.name]
            ax.barh(y, max(macs[step.name], 1), color=colors[group], height=0.8,
                    label=group if group not in ax.get_legend_handles_labels()[1] else None)
            if labelled:
                ax.text(1.2, y, step.name, va="center", fontsize=6, color="white" if macs[step.name] > 100 else "black")
        else:
            ax.plot([1], [y], marker="|", color="0.6", markersize=6)
    if len(order) <= 12:
        ax.legend(loc="lower right", fontsize=7, title="configured in", title_fontsize=7)
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_xlabel("MACs per frame (bars: stages, colored by configuration window; grey ticks: host steps)")
    ax.set_yticks([])
    ax.set_title(f"{summary['path']} plan, tile_w {summary['tile_w']}: {summary['stages']} stages, "
                 f"{summary['host_steps']} host steps, {summary['hefs']} HEF(s), {summary['network_groups']} network "
                 f"groups\n" + ("configures at once within HailoRT's limits" if summary["fits_runtime_limits"] else
                                 f"needs {summary['configure_windows']} configuration windows per utterance") +
                 f" ({summary['packing']['limits']['network_groups_per_device']} network groups per device)",
                 fontsize=9)
    fig.tight_layout()
    with written_atomically(path) as temporary:
        fig.savefig(temporary, dpi=100, format="png")
    plt.close(fig)
    return path


def plan_command(plan: StagePlan, tile_w: int, packing: Packing, json_path: Path | None, png_path: Path | None,
                 report: Callable[[str], None] = print, given: list[tuple[str, str | None]] = ()) -> int:
    """Prints the table; writes the JSON and the PNG (beside the JSON unless given). A packing
    that breaks a runtime limit is said on stderr with what to change; the report itself succeeds.
    ``given``: the files the plan was read from (neither output may be one of them)."""
    from ..guard import check_run_files

    if json_path is not None and png_path is None:
        png_path = json_path.with_suffix(".png")
    check_run_files(given, [json_path, png_path])
    summary = plan_summary(plan, tile_w, packing)
    report(format_table(summary))
    if json_path is not None:
        write_text_atomically(json_path, json.dumps(summary, indent=1) + "\n")
        report(f"wrote {json_path}")
    if png_path is not None:
        plot_plan(png_path, plan, summary)
        report(f"wrote {png_path}")
    for problem in summary["limit_violations"]:
        print(f"plan: {problem}", file=sys.stderr)
    return 0
