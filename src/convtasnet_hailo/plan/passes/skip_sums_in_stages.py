"""``--skip-sums-in-stages``: each skip-connection sum is added by the stage that makes its new term.

By default the running skip sum is a host step after the stage that made block i's skip output
(fusion absorbs it only into a stage that reads the sum: the mask head). With this option that
stage also reads the sum so far (a pointwise input: its tiles as stored, no copy) and outputs the
new sum (``Add``, the same float32 add in the same order), so the host adds nothing. For the float
backends only (``builder.refuse_float_only``): on the device it is one more input per block across
the link, for an add the host does anyway.

Applied to the finished (fused) plan.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..host_steps import AddTensors
from ..names import is_reported_tensor
from ..ops import Add
from ..stages import Stage, StageInput, StageOutput


def skip_sums_into_stages(steps: Sequence, plan_outputs: Sequence[str], expose_internal: bool) -> list:
    """The plan's steps with every host ``AddTensors`` moved into the stage that makes its ``b``
    when ``a`` exists before that stage runs (module docstring)."""
    steps = list(steps)
    for index, step in enumerate(list(steps)):
        if not isinstance(step, AddTensors):
            continue
        made_at = {name: k for k, s in enumerate(steps) if s is not None for name in s.writes}
        producer = made_at.get(step.b)
        if producer is None or not isinstance(steps[producer], Stage) or made_at.get(step.a, -1) >= producer:
            continue
        later_reads = {name for s in steps[index + 1 :] if s is not None for name in s.reads}
        keep_b = step.b in later_reads or step.b in plan_outputs or (expose_internal and is_reported_tensor(step.b))
        steps[producer] = _adding(steps[producer], step, keep_b)
        steps[index] = None
    return [s for s in steps if s is not None]


def _adding(stage: Stage, step: AddTensors, keep_b: bool) -> Stage:
    channels = stage.value_channels()[step.b]
    inputs = stage.inputs + ((StageInput(step.a, channels),) if step.a not in stage.reads else ())
    outputs = tuple(p for p in stage.outputs if keep_b or p.name != step.b) + (StageOutput(step.output, channels),)
    return Stage(
        stage.name,
        inputs,
        outputs,
        stage.ops + (Add(step.a, step.b, step.output),),
        role=stage.role + "; skip sum",
        block=stage.block,
    )
