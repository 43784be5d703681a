"""The stage plan: a ConvTasNet decomposed into Hailo-format stages and the host steps between.

The plan is the single source of truth for export, compile, every backend and the parity
reports. Tensor names are those the runbook's users read (DESIGN.md): ``encoder``,
``bottleneck``, ``tcn{i}_in``, ``tcn{i}_depth``, ``tcn{i}_residual``, ``tcn{i}_skip``,
``mask_score``, ``mask_output``, ``source_projector``, ``decoder_pre``, ``decoder_head``,
``decoder_output``, plus the host-made ``*_norm`` tensors and skip sums.

Per TCN block (gLN): stage ``tcn{i}_in`` (1x1 conv + PReLU) -> host norm -> stage
``tcn{i}_depth`` (depthwise dilated conv + PReLU, halo d) -> host norm -> stage ``tcn{i}_out``
(residual 1x1 conv + add, skip 1x1 conv) -> host skip sum.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from typing import Union

import numpy as np

from ..errors import UserError
from ..model.config import ConvTasNetConfig, EncoderActivation
from ..model.convtasnet import ConvTasNet, TemporalBlock
from ..tiling.host_steps import (
    ActivateMask, AddTensors, Alias, FitLength, HostStep, Normalize, OverlapAdd, SplitSources,
    host_step_inputs, host_step_outputs,
)
from .channel_blocks import split_channel_blocks
from .stages import Add, Conv, Geometry, Mul, PRelu, Relu, Stage, StageInput, StageOutput, conv1d_weight

Step = Union[Stage, HostStep]

#: Tensors the exactness contract is judged on: the names DESIGN.md / the runbook report.
CONTRACT_TENSORS = re.compile(
    r"^(encoder|bottleneck|tcn\d+_(in|depth|residual|skip)|mask_score|mask_output|masker_output"
    r"|source_projector|masked_rep|decoder_pre|decoder_head|decoder_output|final_output)$"
)


def is_contract_tensor(name: str) -> bool:
    """True for runbook stage names; False for host-made diagnostics (``*_norm``, ``*_skip_sum``,
    ``mask_net``), which are reported too but hold float32 noise amplified by 1/std."""
    return CONTRACT_TENSORS.match(name) is not None


class PlanPath(str, enum.Enum):
    """Which part of the model a plan covers (the runbook's three parity paths)."""

    DECODER = "decoder"  # (tf, masks) -> waveforms
    MASKER = "masker"  # tf -> masks
    FULL_CHAIN = "full-chain"  # waveform -> waveforms

    @property
    def inputs(self) -> tuple[str, ...]:
        return {
            PlanPath.DECODER: ("encoder", "mask_output", "wav"),
            PlanPath.MASKER: ("encoder",),
            PlanPath.FULL_CHAIN: ("wav",),
        }[self]


def _numpy(tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy().astype(np.float32)


def _conv1x1(conv, input_name: str, output_name: str) -> Conv:
    return Conv(input_name, output_name, conv1d_weight(_numpy(conv.weight)),
                None if conv.bias is None else _numpy(conv.bias))


def _prelu(prelu, input_name: str, output_name: str) -> PRelu:
    return PRelu(input_name, output_name, float(prelu.weight.detach().reshape(-1)[0]))


def _normalize(norm_module, config: ConvTasNetConfig, input_name: str, output_name: str) -> Normalize:
    return Normalize(input_name, output_name, config.norm_type,
                     _numpy(norm_module.gamma), _numpy(norm_module.beta))


def _encoder_steps(model: ConvTasNet) -> list[Step]:
    config = model.config
    ops: list = [Conv("wav", "encoder_conv", conv1d_weight(_numpy(model.encoder.filterbank._filters)),
                      stride=config.stride)]
    if config.encoder_activation is EncoderActivation.RELU:
        ops.append(Relu("encoder_conv", "encoder"))
    else:
        ops[0] = dataclasses.replace(ops[0], output="encoder")
    geometry = Geometry(stride=config.stride, span=config.kernel_size)
    return [Stage("encoder", (StageInput("wav", 1, geometry),), (StageOutput("encoder", config.n_filters),),
                  tuple(ops), role="waveform -> mixture representation (strided conv, kernel L, stride S)")]


def _block_steps(block: TemporalBlock, index: int, config: ConvTasNetConfig, x_name: str,
                 keep_residual: bool) -> list[Step]:
    shared = block.shared_block
    depth_conv = shared[3][0] if config.causal else shared[3]
    hid, dilation = config.hid_chan, config.dilation(index)
    span = (config.conv_kernel_size - 1) * dilation + 1
    pad_left = config.depthwise_padding(index)
    depth_geometry = Geometry(span=span, pad_left=pad_left, pad_right=span - 1 - pad_left)
    p = f"tcn{index}"
    steps: list[Step] = [
        Stage(f"{p}_in", (StageInput(x_name, config.bn_chan),), (StageOutput(f"{p}_in", hid),),
              (_conv1x1(shared[0], x_name, f"{p}_in_conv"), _prelu(shared[1], f"{p}_in_conv", f"{p}_in")),
              role=f"block {index}: 1x1 conv {config.bn_chan}->{hid} + PReLU"),
        _normalize(shared[2], config, f"{p}_in", f"{p}_in_norm"),
        Stage(f"{p}_depth", (StageInput(f"{p}_in_norm", hid, depth_geometry),),
              (StageOutput(f"{p}_depth", hid),),
              (Conv(f"{p}_in_norm", f"{p}_depth_conv", conv1d_weight(_numpy(depth_conv.weight)),
                    _numpy(depth_conv.bias), dilation=dilation, groups=hid),
               _prelu(shared[4], f"{p}_depth_conv", f"{p}_depth")),
              role=f"block {index}: depthwise conv k={config.conv_kernel_size} d={dilation} + PReLU"),
        _normalize(shared[5], config, f"{p}_depth", f"{p}_depth_norm"),
    ]
    ops: list = []
    outputs: list[StageOutput] = []
    inputs = [StageInput(f"{p}_depth_norm", hid)]
    if keep_residual:
        inputs.append(StageInput(x_name, config.bn_chan))
        ops += [_conv1x1(block.res_conv, f"{p}_depth_norm", f"{p}_res_conv"),
                Add(x_name, f"{p}_res_conv", f"{p}_residual")]
        outputs.append(StageOutput(f"{p}_residual", config.bn_chan))
    if config.skip_chan:
        ops.append(_conv1x1(block.skip_conv, f"{p}_depth_norm", f"{p}_skip"))
        outputs.append(StageOutput(f"{p}_skip", config.skip_chan))
    steps.append(Stage(f"{p}_out", tuple(inputs), tuple(outputs), tuple(ops),
                       role=f"block {index}: residual (1x1 conv + add) and skip 1x1 conv"))
    if config.skip_chan:
        steps.append(Alias(f"{p}_skip", f"{p}_skip_sum") if index == 0
                     else AddTensors(f"tcn{index - 1}_skip_sum", f"{p}_skip", f"{p}_skip_sum"))
    return steps


def _masker_steps(model: ConvTasNet) -> list[Step]:
    config, masker = model.config, model.masker
    steps: list[Step] = [
        _normalize(masker.bottleneck[0], config, "encoder", "bottleneck_norm"),
        Stage("bottleneck", (StageInput("bottleneck_norm", config.n_filters),),
              (StageOutput("bottleneck", config.bn_chan),),
              (_conv1x1(masker.bottleneck[1], "bottleneck_norm", "bottleneck"),),
              role=f"1x1 conv {config.n_filters}->{config.bn_chan}"),
    ]
    last = config.n_tcn_blocks - 1
    x_name = "bottleneck"
    for index, block in enumerate(masker.TCN):
        # The last block's residual feeds nothing when skips exist (Asteroid computes and drops it).
        keep_residual = index < last or not config.skip_chan
        steps += _block_steps(block, index, config, x_name, keep_residual)
        x_name = f"tcn{index}_residual"
    mask_in = f"tcn{last}_skip_sum" if config.skip_chan else x_name
    n_out = config.n_src * config.n_filters
    steps += [
        Stage("mask_head", (StageInput(mask_in, config.mask_in_chan),), (StageOutput("mask_net", n_out),),
              (_prelu(masker.mask_net[0], mask_in, "mask_prelu"),
               _conv1x1(masker.mask_net[1], "mask_prelu", "mask_net")),
              role=f"PReLU + 1x1 conv {config.mask_in_chan}->{n_out} (source-major)"),
        SplitSources("mask_net", "mask_score", config.n_src),
        ActivateMask("mask_score", "mask_output", config.mask_act),
        Alias("mask_output", "masker_output"),
    ]
    return steps


def _decoder_steps(model: ConvTasNet) -> list[Step]:
    config = model.config
    # ConvTranspose1d(N, 1, L, stride S) = per-frame projection N -> L, then overlap-add.
    filters = _numpy(model.decoder.filterbank._filters)  # (N, 1, L)
    projection = np.ascontiguousarray(filters[:, 0, :].T[:, :, None, None])  # (L, N, 1, 1)
    n = config.n_filters
    return [
        Stage("source_projector", (StageInput("mask_output", n), StageInput("encoder", n)),
              (StageOutput("source_projector", n),),
              (Mul("mask_output", "encoder", "source_projector"),),
              role="mask * mixture representation, one batch entry per source"),
        Alias("source_projector", "masked_rep"),
        Stage("decoder_pre", (StageInput("source_projector", n),),
              (StageOutput("decoder_pre", config.kernel_size),),
              (Conv("source_projector", "decoder_pre", projection),),
              role=f"1x1 projection {n}->{config.kernel_size} frame samples"),
        OverlapAdd("decoder_pre", "decoder_head", config.stride),
        FitLength("decoder_head", "decoder_output", "wav"),
        Alias("decoder_output", "final_output"),
    ]


@dataclasses.dataclass(frozen=True, eq=False)
class StagePlan:
    """Ordered stages and host steps for one model and path; ``inputs`` seed the executor."""

    config: ConvTasNetConfig
    path: PlanPath
    steps: tuple[Step, ...]
    block_chan: int | None = None

    @property
    def inputs(self) -> tuple[str, ...]:
        return self.path.inputs

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
    if isinstance(step, Stage):
        return tuple(p.name for p in step.inputs)
    return host_step_inputs(step)


def step_outputs(step: Step) -> tuple[str, ...]:
    if isinstance(step, Stage):
        return tuple(p.name for p in step.outputs)
    return host_step_outputs(step)


def build_plan(model: ConvTasNet, path: PlanPath = PlanPath.FULL_CHAIN, block_chan: int | None = None) -> StagePlan:
    """Decomposes ``model`` (left untouched) into the stage plan for ``path``; with
    ``block_chan``, 1x1 convs wider than that are split into channel blocks."""
    if path is PlanPath.DECODER:
        steps = _decoder_steps(model)
    elif path is PlanPath.MASKER:
        steps = _masker_steps(model)
    else:
        steps = _encoder_steps(model) + _masker_steps(model) + _decoder_steps(model)
    if block_chan is not None:
        steps = list(split_channel_blocks(tuple(steps), block_chan))
    plan = StagePlan(model.config, path, tuple(steps), block_chan)
    _check_dataflow(plan)
    return plan


def _check_dataflow(plan: StagePlan) -> None:
    """Every step reads only plan inputs or tensors produced before it (a builder bug otherwise)."""
    available = set(plan.inputs)
    for step in plan.steps:
        missing = [n for n in step_inputs(step) if n not in available]
        if missing:
            raise RuntimeError(f"plan step {step} reads {missing} before they exist")
        available.update(step_outputs(step))
