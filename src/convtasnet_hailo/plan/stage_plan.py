"""The stage plan as a value: ordered stages and host steps for one model and path, with the
options it was built with. Imports no torch (the device side reads plans from exports)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..errors import UserError
from ..model.config import ConvTasNetConfig
from .host_steps import HostStep
from .options import PlanOptions, PlanPath
from .stages import Stage

Step = Stage | HostStep


@dataclasses.dataclass(frozen=True, eq=False)
class StagePlan:
    """Ordered stages and host steps for one model and path, built with ``options``; ``inputs``
    seed the executor. ``expose_internal`` plans output every reported tensor (parity runs);
    ``rf_window`` is the width every receptive-field span runs at (``plan.rf_windows``)."""

    config: ConvTasNetConfig
    path: PlanPath
    steps: tuple[Step, ...]
    options: PlanOptions = PlanOptions()
    expose_internal: bool = False
    rf_window: int | None = None
    #: the export folder this plan was read from (``plan.serialize``): its stage files are these
    #: stages, so a backend need not rebuild them to check them (None: built from a model)
    export_dir: Path | None = None

    @property
    def inputs(self) -> tuple[str, ...]:
        return self.path.inputs

    @property
    def float_only_options(self) -> tuple[str, ...]:
        """The options it was built with that only the float backends serve (``refuse_float_only``)."""
        return self.options.float_only

    @property
    def stages(self) -> tuple[Stage, ...]:
        return tuple(s for s in self.steps if isinstance(s, Stage))

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise UserError(f"the plan has no stage {name!r}; stages: {', '.join(s.name for s in self.stages)}")

    def produced_names(self) -> list[str]:
        """Every tensor name the plan produces, in order."""
        return [name for step in self.steps for name in step_outputs(step)]

    def last_uses(self) -> dict[str, int]:
        """Index of the last step reading each tensor (for freeing memory early)."""
        last: dict[str, int] = {}
        for index, step in enumerate(self.steps):
            for name in step_inputs(step):
                last[name] = index
        return last


def step_inputs(step: Step) -> tuple[str, ...]:
    return step.reads


def step_outputs(step: Step) -> tuple[str, ...]:
    return step.writes
