"""Channel blocks: the allocator workaround for wide 1x1 convs.

Every 1x1 conv with more than ``block_chan`` input or output channels becomes one stage per
(output block, input block) pair computing a partial sum (bias only in input block 0); the host
adds the partial sums over input blocks and concatenates the output blocks. The ops around the
conv stay in stages of their own. In the seed runbook's runs, 1x1 convs split into 64-channel
partial blocks compiled at width 256 where whole 256-channel ones failed at widths >= 1024
(docs/hailo_facts.md, "Ops and shapes").
"""

from __future__ import annotations

from ...errors import UserError
from ..host_steps import AssembleBlocks, SplitChannels
from ..ops import Conv
from ..stages import POINTWISE, ChannelBlock, Stage, StageInput, StageOutput


def is_wide_pointwise(op, block_chan: int) -> bool:
    return isinstance(op, Conv) and op.is_pointwise and max(op.in_channels, op.out_channels()) > block_chan


def _block_bounds(total: int, block_chan: int) -> list[tuple[int, int]]:
    return [(lo, min(lo + block_chan, total)) for lo in range(0, total, block_chan)]


class _StageSplitter:
    """Rewrites one stage into segment stages, channel-block stages and host steps."""

    def __init__(self, stage: Stage, block_chan: int):
        self.stage, self.block_chan = stage, block_chan
        self.channels = stage.value_channels()
        self.geometry = {p.name: p.geometry for p in stage.inputs}
        self.steps: list = []
        self.split_inputs: dict[str, tuple[str, ...]] = {}
        self.segments = 0

    def _needed_after(self, index: int) -> set[str]:
        needed = {p.name for p in self.stage.outputs}
        for op in self.stage.ops[index:]:
            needed.update(op.reads)
        return needed

    def _flush(self, ops: list, needed: set[str], final: bool) -> None:
        if not ops:
            return
        produced = [op.output for op in ops]
        reads = []
        for op in ops:
            reads += [n for n in op.reads if n not in produced and n not in reads]
        outputs = [n for n in produced if n in needed]
        self.segments += 1
        name = self.stage.name if final and self.segments == 1 else f"{self.stage.name}__part{self.segments}"
        self.steps.append(
            Stage(
                name,
                tuple(StageInput(n, self.channels[n], self.geometry.get(n, POINTWISE)) for n in reads),
                tuple(StageOutput(n, self.channels[n]) for n in outputs),
                tuple(ops),
                role=f"{self.stage.role} (ops around its channel-blocked convs)",
            )
        )

    def _split_input(self, name: str) -> tuple[str, ...]:
        if name not in self.split_inputs:
            bounds = _block_bounds(self.channels[name], self.block_chan)
            parts = tuple(f"{name}__c{j}" for j in range(len(bounds))) if len(bounds) > 1 else (name,)
            if len(bounds) > 1:
                self.steps.append(SplitChannels(name, parts, tuple(hi - lo for lo, hi in bounds)))
            self.split_inputs[name] = parts
        return self.split_inputs[name]

    def _blocks(self, op: Conv) -> None:
        if self.geometry.get(op.input, POINTWISE) != POINTWISE:
            raise RuntimeError(f"stage {self.stage.name}: 1x1 conv reads {op.input} with a halo")
        parts = self._split_input(op.input)
        in_bounds = _block_bounds(op.in_channels, self.block_chan)
        partials = []
        for k, (o_lo, o_hi) in enumerate(_block_bounds(op.out_channels(), self.block_chan)):
            row = []
            for j, ((i_lo, i_hi), part) in enumerate(zip(in_bounds, parts, strict=False)):
                out = f"{op.output}__o{k}i{j}"
                bias = op.bias[o_lo:o_hi] if op.bias is not None and j == 0 else None
                conv = Conv(part, out, op.weight[o_lo:o_hi, i_lo:i_hi].copy(), None if bias is None else bias.copy())
                self.steps.append(
                    Stage(
                        f"{self.stage.name}__{op.output}__o{k}i{j}",
                        (StageInput(part, i_hi - i_lo),),
                        (StageOutput(out, o_hi - o_lo),),
                        (conv,),
                        role=f"channel block of {op.output}: out {o_lo}:{o_hi} from in {i_lo}:{i_hi}",
                        block=ChannelBlock(self.stage.name, op.output, k, j, (o_lo, o_hi), (i_lo, i_hi)),
                    )
                )
                row.append(out)
            partials.append(tuple(row))
        self.steps.append(AssembleBlocks(tuple(partials), op.output))

    def split(self) -> list:
        pending: list = []
        for index, op in enumerate(self.stage.ops):
            if is_wide_pointwise(op, self.block_chan):
                self._flush(pending, self._needed_after(index), final=False)
                pending = []
                self._blocks(op)
            else:
                pending.append(op)
        self._flush(pending, {p.name for p in self.stage.outputs}, final=True)
        return self.steps


def split_channel_blocks(steps: tuple, block_chan: int) -> tuple:
    """The plan's steps with every wide 1x1 conv split into channel blocks of ``block_chan``."""
    if not isinstance(block_chan, int) or block_chan < 1:
        raise UserError(f"--block-chan {block_chan!r} must be a positive integer (e.g. 64)")
    out: list = []
    for step in steps:
        if isinstance(step, Stage) and any(is_wide_pointwise(op, block_chan) for op in step.ops):
            out += _StageSplitter(step, block_chan).split()
        else:
            out.append(step)
    return tuple(out)
