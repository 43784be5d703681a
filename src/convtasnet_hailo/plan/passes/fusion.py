"""Fusion: consecutive stages that no whole-utterance host step separates become one stage.

Every stage boundary is a host/device round trip and a network-group switch on the device
(docs/pipeline.md, "Shaped for the device"). A stage B joins the open fused stage when everything B
reads is either made inside it (read pointwise: a halo would need the earlier ops on extra
frames), made before it, or made by a host step that is exact as a device op (the skip sum:
``AddTensors`` -> ``Add``, the same float32 add in the same order). Host steps B does not need
(norm statistics, aliases) run after the fused stage, which then outputs what they read.
For a gLN model this leaves two stage invocations per TCN block: block i's depthwise conv, and
block i's residual and skip convs fused with block i+1's input conv.

Tensors made inside a fused stage are not outputs unless a later step reads them; with
``expose_internal`` (parity runs) every reported tensor is an output too, so every runbook name
is still compared with the reference.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from ..host_steps import AddTensors, HostStep
from ..names import is_reported_tensor
from ..ops import Add
from ..stages import POINTWISE, Stage, StageInput, StageOutput

#: Joins member names in a fused stage's name (file, node and HEF network names derive from it).
JOIN = "__"


@dataclasses.dataclass
class _Group:
    members: list[Stage]
    ops: list
    made: set[str]  # values made inside the group (by member ops or absorbed host steps)
    inputs: dict[str, StageInput]  # values read from outside, with the geometry they are read with

    @classmethod
    def start(cls, stage: Stage) -> _Group:
        return cls([stage], list(stage.ops), {op.output for op in stage.ops}, {p.name: p for p in stage.inputs})


def _absorbable(step: HostStep) -> bool:
    return isinstance(step, AddTensors)


def _plan_join(group: _Group, pending: list[HostStep], stage: Stage) -> list[HostStep] | None:
    """The pending host steps ``stage`` needs converted into device ops, or None when it cannot join."""
    made_by_pending = {name: step for step in pending for name in step.writes}
    absorbed: list[HostStep] = []
    made = set(group.made)

    def available(name: str, geometry) -> bool:
        if name in made:
            return geometry == POINTWISE
        step = made_by_pending.get(name)
        if step is None:  # made before the group: read from the store like any stage input
            known = group.inputs.get(name)
            return known is None or known.geometry == geometry
        if not _absorbable(step) or geometry != POINTWISE:
            return False
        if step not in absorbed:
            if not all(available(read, POINTWISE) for read in step.reads):
                return False
            absorbed.append(step)
            made.update(step.writes)
        return True

    if not all(available(port.name, port.geometry) for port in stage.inputs):
        return None
    return [step for step in pending if step in absorbed]  # in plan order


def _channels(group: _Group) -> dict[str, int]:
    channels = {name: port.channels for name, port in group.inputs.items()}
    for op in group.ops:
        channels[op.output] = op.out_channels(channels)
    return channels


def _join(group: _Group, absorbed: list[HostStep], stage: Stage) -> None:
    for step in absorbed:
        channels = _channels(group)
        known = [channels[name] for name in step.reads if name in channels]
        for name in step.reads:  # an elementwise add: an operand from outside has the other's channels
            if name not in group.made and name not in group.inputs:
                group.inputs[name] = StageInput(name, known[0] if known else stage.inputs[0].channels)
        group.ops.append(Add(step.a, step.b, step.output))
        group.made.update(step.writes)
    for port in stage.inputs:
        if port.name not in group.made and port.name not in group.inputs:
            group.inputs[port.name] = port
    group.members.append(stage)
    group.ops += list(stage.ops)
    group.made.update(op.output for op in stage.ops)


def _close(group: _Group, needed_later: Callable[[str], bool], expose_internal: bool) -> Stage:
    if len(group.members) == 1:
        return group.members[0]
    channels = _channels(group)
    declared = {port.name: port for member in group.members for port in member.outputs}  # keeps per-tile ones
    produced = [op.output for op in group.ops]
    outputs = [name for name in produced if needed_later(name) or (expose_internal and is_reported_tensor(name))]
    return Stage(
        JOIN.join(m.name for m in group.members),
        tuple(group.inputs.values()),
        tuple(declared.get(name, StageOutput(name, channels[name])) for name in outputs),
        tuple(group.ops),
        role="; ".join(m.role for m in group.members if m.role),
        block=None,
    )


def _last_reads(steps: Sequence) -> dict[str, int]:
    """Index of the last step reading each value."""
    return {name: index for index, step in enumerate(steps) for name in step.reads}


def drop_dead_host_steps(steps: Sequence, plan_outputs: Sequence[str]) -> tuple:
    """Removes host steps whose outputs nothing reads (aliases kept only for reports)."""
    kept = list(steps)
    while True:
        needed = set(plan_outputs)
        for step in kept:
            needed.update(step.reads)
        dead = [s for s in kept if not isinstance(s, Stage) and not (set(s.writes) & needed)]
        if not dead:
            return tuple(kept)
        kept = [s for s in kept if s not in dead]


def fuse_stages(steps: Sequence, plan_outputs: Sequence[str], expose_internal: bool = False) -> tuple:
    """The plan's steps with every fusable run of stages merged (see the module docstring).
    Channel-block stages stay alone: keeping them small is their purpose."""
    if not expose_internal:
        steps = drop_dead_host_steps(steps, plan_outputs)
    steps = list(steps)
    out: list = []
    group: _Group | None = None
    pending: list[HostStep] = []

    last_read = _last_reads(steps)
    outputs = set(plan_outputs)

    def flush(until: int) -> None:
        if group is not None:
            deferred_reads = {name for s in pending for name in s.reads}
            out.append(
                _close(
                    group,
                    lambda name: name in outputs or name in deferred_reads or last_read.get(name, -1) >= until,
                    expose_internal,
                )
            )
        out.extend(pending)

    for index, step in enumerate(steps):
        if not isinstance(step, Stage):
            (out if group is None else pending).append(step)
            continue
        fusable = group is not None and step.block is None and group.members[0].block is None
        absorbed = _plan_join(group, pending, step) if fusable else None
        if absorbed is not None:
            _join(group, absorbed, step)
            pending = [s for s in pending if s not in absorbed]  # the rest run after the fused stage
            continue
        flush(index)
        group, pending = _Group.start(step), []
    flush(len(steps))
    return tuple(out)
