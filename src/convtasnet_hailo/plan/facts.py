"""What the device cost model (``plan.cost_model``) needs of a plan at one tile width, as typed
records: ``plan.report.PlanSummary.facts`` makes them from a plan, ``PlanFacts.from_json`` from a
``plan.json`` record."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class StageFacts:
    """What the cost model needs of one stage at one tile width (``plan.report.StageCost``)."""

    macs_per_frame: int
    boundary_values_per_audio_second: int
    batch_groups: int


@dataclasses.dataclass(frozen=True)
class ExecutionFacts:
    """What entering the plan's network groups costs per pass over its stages
    (``plan.packing.Packing.execution``)."""

    mode: str
    switches: int
    activations: int
    network_groups_configured: int
    configure_windows: int

    @classmethod
    def from_json(cls, execution: dict) -> ExecutionFacts:
        """From ``Packing.execution``'s record."""
        return cls(
            execution["mode"],
            execution["switches"],
            execution["activations"],
            execution["network_groups_configured"],
            execution["configure_windows"],
        )


@dataclasses.dataclass(frozen=True)
class PlanFacts:
    """What :func:`predict` needs of a plan at one tile width: the frame rate (``sample_rate /
    stride``), the tile width, each stage's MACs and boundary traffic, and the execution mode's
    network-group costs (``plan.report.PlanSummary.facts``)."""

    sample_rate: int
    stride: int
    tile_w: int
    per_stage: tuple[StageFacts, ...]
    execution: ExecutionFacts

    @classmethod
    def from_json(cls, summary: dict) -> PlanFacts:
        """From a ``plan --json`` record (``PlanSummary.to_json``): for records read back from files."""
        return cls(
            summary["model_config"]["sample_rate"],
            summary["model_config"]["stride"],
            summary["tile_w"],
            tuple(
                StageFacts(r["macs_per_frame"], r["boundary_values_per_audio_second"], r["batch_groups"])
                for r in summary["per_stage"]
            ),
            ExecutionFacts.from_json(summary["execution"]),
        )
