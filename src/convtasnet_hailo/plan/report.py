"""What a plan costs on the device, before anyone compiles: stage invocations, HEFs and network
groups (packing), host steps, MACs and weight bytes per stage, and the values that cross the
host/device boundary per second of audio (halo included). The `plan` command's summary
(:class:`PlanSummary`: table, JSON) and figure.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from .facts import ExecutionFacts, PlanFacts, StageFacts
from .host_steps import SplitSources
from .packing import ExecutionMode, Packing, pack_stages
from .stage_plan import StagePlan
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


@dataclasses.dataclass(frozen=True)
class StageCost:
    """One stage's cost at one tile width. Values per second count every tile's inputs with
    their halo; ``inputs`` and ``outputs`` are the stage's ports as the JSON record lists them."""

    name: str
    ops: int
    macs_per_frame: int
    weights: int
    batch_groups: int
    inputs: tuple[tuple[str, dict[str, Any]], ...]
    outputs: tuple[tuple[str, int], ...]
    boundary_values_per_audio_second: int

    @property
    def facts(self) -> StageFacts:
        return StageFacts(self.macs_per_frame, self.boundary_values_per_audio_second, self.batch_groups)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "ops": self.ops,
            "macs_per_frame": self.macs_per_frame,
            "weights": self.weights,
            "weight_bytes_8bit": self.weights,
            "weight_bytes_16bit": 2 * self.weights,
            "batch_groups": self.batch_groups,
            "inputs": {name: dict(port) for name, port in self.inputs},
            "outputs": dict(self.outputs),
            "boundary_values_per_audio_second": self.boundary_values_per_audio_second,
        }


def stage_row(stage: Stage, tile_w: int, frames_per_second: float, groups: dict[str, int]) -> StageCost:
    """One stage's cost. Values per second count every tile's inputs with their halo."""
    batch = max(groups.get(p.name, 1) for p in stage.inputs)
    values_in = sum(p.channels * p.width(tile_w) * batch for p in stage.inputs) / tile_w
    values_out = sum(p.channels * p.width(tile_w) * batch for p in stage.outputs) / tile_w
    inputs = tuple(
        (
            p.name,
            {
                "channels": p.channels,
                "halo": list(p.geometry.halo) if p.geometry.stride == 1 else None,
                "tile_input_width": p.width(tile_w),
                "kind": p.kind.value,
            },
        )
        for p in stage.inputs
    )
    return StageCost(
        stage.name,
        len(stage.ops),
        stage.macs_per_frame * batch,
        stage.weight_count,
        batch,
        inputs,
        tuple((p.name, p.channels) for p in stage.outputs),
        round((values_in + values_out) * frames_per_second),
    )


def execution_modes(plan: StagePlan, packing: Packing) -> dict:
    """Both execution modes for this plan and runtime (``plan.packing``): what each costs per
    utterance, and what each needs to run at all."""
    order = [s.name for s in plan.stages]
    needs = {
        ExecutionMode.SCHEDULED_GROUPS: "runs whatever the contexts (the only mode on HailoRT 5 / hailo10h)",
        ExecutionMode.ACTIVATED_PACKS: "HailoRT 4 only; every pack must compile single-context (the HEF says; "
        "hailo_runtime refuses a multi-context pack)",
    }
    return {
        mode.value: {**pack_stages(order, packing.limits, mode=mode).execution(order), "needs": needs[mode]}
        for mode in ExecutionMode
    }


@dataclasses.dataclass(frozen=True)
class PlanSummary:
    """The `plan` command's result: what a plan costs at one tile width with one packing.
    :meth:`to_json` is the ``plan.json`` record; :attr:`facts` is what the cost model reads."""

    plan: StagePlan
    tile_w: int
    packing: Packing
    per_stage: tuple[StageCost, ...]
    frames_per_second: float

    @property
    def path(self) -> str:
        return self.plan.path.value

    @property
    def stages(self) -> int:
        return len(self.plan.stages)

    @property
    def host_steps(self) -> int:
        return len(self.plan.steps) - len(self.plan.stages)

    @property
    def hefs(self) -> int:
        return len(self.packing.hefs)

    @property
    def network_groups(self) -> int:
        return len(self.packing.network_groups)

    @property
    def limit_violations(self) -> list[str]:
        return self.packing.hard_violations()

    @property
    def float_only(self) -> tuple[str, ...]:
        return self.plan.options.float_only

    @property
    def macs_per_second(self) -> int:
        return round(sum(r.macs_per_frame for r in self.per_stage) * self.frames_per_second)

    @property
    def weight_bytes_8bit(self) -> int:
        return sum(r.weights for r in self.per_stage)

    @property
    def boundary_values_per_audio_second(self) -> int:
        return sum(r.boundary_values_per_audio_second for r in self.per_stage)

    def execution(self) -> dict:
        """``Packing.execution`` for one pass over the stages in this packing's mode."""
        return self.packing.execution([s.name for s in self.plan.stages])

    @property
    def facts(self) -> PlanFacts:
        config = self.plan.config
        return PlanFacts(
            config.sample_rate,
            config.stride,
            self.tile_w,
            tuple(r.facts for r in self.per_stage),
            ExecutionFacts.from_json(self.execution()),
        )

    def to_json(self) -> dict:
        """The ``plan.json`` record (``plan --out``; keys as before the typed summary)."""
        boundary, weights = self.boundary_values_per_audio_second, self.weight_bytes_8bit
        return {
            "path": self.path,
            "tile_w": self.tile_w,
            **self.plan.options.to_json(),
            "model_config": self.plan.config.to_json(),
            "stages": self.stages,
            "stage_invocations_per_utterance": self.stages,
            "host_steps": self.host_steps,
            "hefs": self.hefs,
            "network_groups": self.network_groups,
            "configure_windows": self.packing.windows,
            "fits_runtime_limits": not self.limit_violations,
            "limit_violations": self.limit_violations,
            "window_note": self.packing.window_note(),
            "execution": self.execution(),
            "execution_modes": execution_modes(self.plan, self.packing),
            "macs_per_second": self.macs_per_second,
            "weight_bytes_8bit": weights,
            "weight_bytes_16bit": 2 * weights,
            "boundary_values_per_audio_second": boundary,
            "boundary_bytes_per_audio_second_8bit": boundary,
            "boundary_bytes_per_audio_second_16bit": 2 * boundary,
            "packing": self.packing.to_json(),
            "per_stage": [r.to_json() for r in self.per_stage],
        }


def summarize_plan(plan: StagePlan, tile_w: int, packing: Packing) -> PlanSummary:
    """What ``plan`` costs at ``tile_w`` with ``packing``."""
    config = plan.config
    # The encoder's output frames per second; every stage's frames are encoder frames.
    frames_per_second = config.sample_rate / config.stride
    groups = tensor_groups(plan)
    rows = tuple(stage_row(stage, tile_w, frames_per_second, groups) for stage in plan.stages)
    return PlanSummary(plan, tile_w, packing, rows, frames_per_second)


def plan_summary(plan: StagePlan, tile_w: int, packing: Packing) -> dict:
    """The ``plan.json`` record as a dict. Deprecated: use :func:`summarize_plan` (typed; its
    ``facts`` feed the cost model); kept until every caller has moved."""
    return summarize_plan(plan, tile_w, packing).to_json()


def format_table(summary: PlanSummary) -> str:
    """A readable table: one line per stage, then the totals."""
    lines = [f"{'stage':36s} {'MACs/frame':>11s} {'weights':>9s} {'values/s':>12s}  HEF/network group"]
    for row in summary.per_stage:
        hef, group = summary.packing.location(row.name)
        lines.append(
            f"{row.name[:36]:36s} {row.macs_per_frame:>11,d} {row.weights:>9,d} "
            f"{row.boundary_values_per_audio_second:>12,d}  {hef}/{group}"
        )
    boundary = summary.boundary_values_per_audio_second
    lines.append(
        f"{summary.stages} stages ({summary.stages} invocations per utterance), "
        f"{summary.host_steps} host steps, {summary.hefs} HEF(s), {summary.network_groups} network group(s); "
        f"{summary.macs_per_second / 1e9:.2f} GMAC and {boundary / 1e6:.1f} M "
        f"boundary values ({boundary / 1e6:.1f} MB at 8 bits, "
        f"{2 * boundary / 1e6:.1f} MB at 16) per second of audio; weights "
        f"{summary.weight_bytes_8bit / 1e6:.2f} MB at 8 bits"
    )
    lines.append(execution_line(summary))
    options = summary.float_only
    if options:
        lines.append(
            f"built with {' and '.join(options)}: a plan for the float backends (onnxruntime, torch_proxy); "
            "compile and the Hailo backends refuse it, so the HEF figures are not a device's"
        )
    return "\n".join(lines)


def execution_line(summary: PlanSummary) -> str:
    """The execution mode this packing is for, and the other one, per utterance."""

    def one(e: dict) -> str:
        entered = (
            f"{e['switches']} scheduler switches"
            if e["mode"] == "scheduled_groups"
            else f"{e['activations']} activations"
        )
        return (
            f"{e['mode']}: {e['network_groups']} network group(s) in {e['configure_windows']} configure window(s) "
            f"of {e['network_groups_per_device']}; per utterance {entered}, {e['network_groups_configured']} "
            "network groups reconfigured"
        )

    chosen = summary.execution()
    other = [e for m, e in execution_modes(summary.plan, summary.packing).items() if m != chosen["mode"]]
    return f"execution mode {one(chosen)}" + "".join(f" | alternative {one(e)} ({e['needs']})" for e in other)


def plot_plan(path: Path, summary: PlanSummary) -> Path:
    """One row per step, in order: stages as bars (MACs per frame, colored by network group),
    host steps as grey ticks; the packing and the limits in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..files import written_atomically

    # Color: the configuration window a stage's network group is configured in (all one color
    # when the plan configures at once).
    plan, packing = summary.plan, summary.packing
    per_device = packing.limits.network_groups_per_device
    groups = [g.name for h in packing.hefs for g in h.network_groups]
    window_of_group = {name: index // per_device for index, name in enumerate(groups)}
    group_of = {
        n: f"window {window_of_group[g.name] + 1}" for h in packing.hefs for g in h.network_groups for n in g.networks
    }
    order = sorted(set(group_of.values()), key=lambda name: int(name.split()[-1]))
    colors = {name: plt.cm.tab10(i % 10) for i, name in enumerate(order)}
    macs = {row.name: row.macs_per_frame for row in summary.per_stage}
    height = max(4.0, 0.12 * len(plan.steps) + 1.5)
    fig, ax = plt.subplots(figsize=(9, min(height, 60)))
    labelled = len(plan.stages) <= 120
    for y, step in enumerate(plan.steps):
        if isinstance(step, Stage):
            group = group_of[step.name]
            ax.barh(
                y,
                max(macs[step.name], 1),
                color=colors[group],
                height=0.8,
                label=group if group not in ax.get_legend_handles_labels()[1] else None,
            )
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
    ax.set_title(
        f"{summary.path} plan, tile_w {summary.tile_w}: {summary.stages} stages, "
        f"{summary.host_steps} host steps, {summary.hefs} HEF(s), {summary.network_groups} network "
        f"groups\n"
        + (
            "configures at once within HailoRT's limits"
            if not summary.limit_violations
            else f"needs {packing.windows} configuration windows per utterance"
        )
        + f" ({per_device} network groups per device)",
        fontsize=9,
    )
    fig.tight_layout()
    with written_atomically(path) as temporary:
        fig.savefig(temporary, dpi=100, format="png")
    plt.close(fig)
    return path
