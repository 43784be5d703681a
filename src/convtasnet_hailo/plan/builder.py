"""The stage plan: a ConvTasNet decomposed into Hailo-format stages and the host steps between.

The plan is the single source of truth for export, compile, every backend and the parity
reports. Tensor names are those the runbook's users read (docs/exactness.md, "Output names"): ``encoder``,
``bottleneck``, ``tcn{i}_in``, ``tcn{i}_depth``, ``tcn{i}_residual``, ``tcn{i}_skip``,
``mask_score``, ``mask_output``, ``source_projector``, ``decoder_pre``, ``decoder_head``,
``decoder_output``, plus the host-made ``*_norm`` tensors and skip sums.

Per TCN block (gLN): stage ``tcn{i}_in`` (1x1 conv + PReLU) -> host norm -> stage
``tcn{i}_depth`` (depthwise dilated conv + PReLU, halo d) -> host norm -> stage ``tcn{i}_out``
(residual 1x1 conv + add, skip 1x1 conv) -> host skip sum.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import UserError
from ..model.config import ConvTasNetConfig, EncoderActivation, NormType
from ..model.convtasnet import ConvTasNet, TemporalBlock
from . import names
from .host_steps import ActivateMask, AddTensors, Alias, FitLength, Normalize, OverlapAdd, SplitSources
from .ops import Add, ChannelNorm, Conv, Mul, PRelu, Relu, conv1d_weight
from .options import DEFAULT_MAX_WIDTH, PlanOptions, PlanPath
from .passes.channel_blocks import split_channel_blocks
from .passes.fusion import fuse_stages
from .passes.gln_in_stages import check_options as check_gln_in_stages
from .passes.gln_in_stages import gln_into_stages
from .passes.halo_edges import halo_edges_into_stages
from .passes.rf_windows import check_rf_windows, window_steps
from .passes.skip_sums_in_stages import skip_sums_into_stages
from .stage_plan import StagePlan, Step, step_inputs, step_outputs
from .stages import Geometry, Stage, StageInput, StageOutput


def _numpy(tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy().astype(np.float32)


def _conv1x1(conv, input_name: str, output_name: str) -> Conv:
    return Conv(
        input_name, output_name, conv1d_weight(_numpy(conv.weight)), None if conv.bias is None else _numpy(conv.bias)
    )


def _prelu(prelu, input_name: str, output_name: str) -> PRelu:
    return PRelu(input_name, output_name, float(prelu.weight.detach().reshape(-1)[0]))


def _normalize(norm_module, config: ConvTasNetConfig, input_name: str, output_name: str) -> Normalize:
    return Normalize(input_name, output_name, config.norm_type, _numpy(norm_module.gamma), _numpy(norm_module.beta))


def _encoder_steps(model: ConvTasNet) -> list[Step]:
    config = model.config
    ops: list = [
        Conv(names.WAV, "encoder_conv", conv1d_weight(_numpy(model.encoder.filterbank._filters)), stride=config.stride)
    ]
    if config.encoder_activation is EncoderActivation.RELU:
        ops.append(Relu("encoder_conv", names.ENCODER))
    else:
        ops[0] = dataclasses.replace(ops[0], output=names.ENCODER)
    geometry = Geometry(stride=config.stride, span=config.kernel_size)
    return [
        Stage(
            names.ENCODER,
            (StageInput(names.WAV, 1, geometry),),
            (StageOutput(names.ENCODER, config.n_filters),),
            tuple(ops),
            role="waveform -> mixture representation (strided conv, kernel L, stride S)",
        )
    ]


def _block_steps(
    block: TemporalBlock, index: int, config: ConvTasNetConfig, x_name: str, keep_residual: bool
) -> list[Step]:
    shared = block.shared_block
    depth_conv = shared[3][0] if config.causal else shared[3]
    hid, dilation = config.hid_chan, config.dilation(index)
    span = (config.conv_kernel_size - 1) * dilation + 1
    pad_left = config.depthwise_padding(index)
    depth_geometry = Geometry(span=span, pad_left=pad_left, pad_right=span - 1 - pad_left)
    p = f"tcn{index}"
    steps: list[Step] = [
        Stage(
            names.tcn(index, "in"),
            (StageInput(x_name, config.bn_chan),),
            (StageOutput(names.tcn(index, "in"), hid),),
            (_conv1x1(shared[0], x_name, f"{p}_in_conv"), _prelu(shared[1], f"{p}_in_conv", names.tcn(index, "in"))),
            role=f"block {index}: 1x1 conv {config.bn_chan}->{hid} + PReLU",
        ),
        _normalize(shared[2], config, names.tcn(index, "in"), names.tcn(index, "in_norm")),
        Stage(
            names.tcn(index, "depth"),
            (StageInput(names.tcn(index, "in_norm"), hid, depth_geometry),),
            (StageOutput(names.tcn(index, "depth"), hid),),
            (
                Conv(
                    names.tcn(index, "in_norm"),
                    f"{p}_depth_conv",
                    conv1d_weight(_numpy(depth_conv.weight)),
                    _numpy(depth_conv.bias),
                    dilation=dilation,
                    groups=hid,
                ),
                _prelu(shared[4], f"{p}_depth_conv", names.tcn(index, "depth")),
            ),
            role=f"block {index}: depthwise conv k={config.conv_kernel_size} d={dilation} + PReLU",
        ),
        _normalize(shared[5], config, names.tcn(index, "depth"), names.tcn(index, "depth_norm")),
    ]
    ops: list = []
    outputs: list[StageOutput] = []
    inputs = [StageInput(names.tcn(index, "depth_norm"), hid)]
    if keep_residual:
        inputs.append(StageInput(x_name, config.bn_chan))
        ops += [
            _conv1x1(block.res_conv, names.tcn(index, "depth_norm"), f"{p}_res_conv"),
            Add(x_name, f"{p}_res_conv", names.tcn(index, "residual")),
        ]
        outputs.append(StageOutput(names.tcn(index, "residual"), config.bn_chan))
    if config.skip_chan:
        ops.append(_conv1x1(block.skip_conv, names.tcn(index, "depth_norm"), names.tcn(index, "skip")))
        outputs.append(StageOutput(names.tcn(index, "skip"), config.skip_chan))
    steps.append(
        Stage(
            f"{p}_out",
            tuple(inputs),
            tuple(outputs),
            tuple(ops),
            role=f"block {index}: residual (1x1 conv + add) and skip 1x1 conv",
        )
    )
    if config.skip_chan:
        steps.append(
            Alias(names.tcn(index, "skip"), names.tcn(index, "skip_sum"))
            if index == 0
            else AddTensors(names.tcn(index - 1, "skip_sum"), names.tcn(index, "skip"), names.tcn(index, "skip_sum"))
        )
    return steps


def _masker_steps(model: ConvTasNet) -> list[Step]:
    config, masker = model.config, model.masker
    steps: list[Step] = [
        _normalize(masker.bottleneck[0], config, names.ENCODER, names.BOTTLENECK_NORM),
        Stage(
            names.BOTTLENECK,
            (StageInput(names.BOTTLENECK_NORM, config.n_filters),),
            (StageOutput(names.BOTTLENECK, config.bn_chan),),
            (_conv1x1(masker.bottleneck[1], names.BOTTLENECK_NORM, names.BOTTLENECK),),
            role=f"1x1 conv {config.n_filters}->{config.bn_chan}",
        ),
    ]
    last = config.n_tcn_blocks - 1
    x_name = names.BOTTLENECK
    for index, block in enumerate(masker.TCN):
        # The last block's residual feeds nothing when skips exist (Asteroid computes and drops it).
        keep_residual = index < last or not config.skip_chan
        steps += _block_steps(block, index, config, x_name, keep_residual)
        x_name = names.tcn(index, "residual")
    mask_in = names.tcn(last, "skip_sum") if config.skip_chan else x_name
    n_out = config.n_src * config.n_filters
    steps += [
        Stage(
            "mask_head",
            (StageInput(mask_in, config.mask_in_chan),),
            (StageOutput(names.MASK_NET, n_out),),
            (
                _prelu(masker.mask_net[0], mask_in, "mask_prelu"),
                _conv1x1(masker.mask_net[1], "mask_prelu", names.MASK_NET),
            ),
            role=f"PReLU + 1x1 conv {config.mask_in_chan}->{n_out} (source-major)",
        ),
        SplitSources(names.MASK_NET, names.MASK_SCORE, config.n_src),
        ActivateMask(names.MASK_SCORE, names.MASK_OUTPUT, config.mask_act),
        Alias(names.MASK_OUTPUT, names.MASKER_OUTPUT),
    ]
    return steps


def _decoder_steps(model: ConvTasNet) -> list[Step]:
    config = model.config
    # ConvTranspose1d(N, 1, L, stride S) = per-frame projection N -> L, then overlap-add.
    filters = _numpy(model.decoder.filterbank._filters)  # (N, 1, L)
    projection = np.ascontiguousarray(filters[:, 0, :].T[:, :, None, None])  # (L, N, 1, 1)
    n = config.n_filters
    return [
        Stage(
            names.SOURCE_PROJECTOR,
            (StageInput(names.MASK_OUTPUT, n), StageInput(names.ENCODER, n)),
            (StageOutput(names.SOURCE_PROJECTOR, n),),
            (Mul(names.MASK_OUTPUT, names.ENCODER, names.SOURCE_PROJECTOR),),
            role="mask * mixture representation, one batch entry per source",
        ),
        Alias(names.SOURCE_PROJECTOR, names.MASKED_REP),
        Stage(
            names.DECODER_PRE,
            (StageInput(names.SOURCE_PROJECTOR, n),),
            (StageOutput(names.DECODER_PRE, config.kernel_size),),
            (Conv(names.SOURCE_PROJECTOR, names.DECODER_PRE, projection),),
            role=f"1x1 projection {n}->{config.kernel_size} frame samples",
        ),
        OverlapAdd(names.DECODER_PRE, names.DECODER_HEAD, config.stride),
        FitLength(names.DECODER_HEAD, names.DECODER_OUTPUT, names.WAV),
        Alias(names.DECODER_OUTPUT, names.FINAL_OUTPUT),
    ]


def float_backend_options(config: ConvTasNetConfig) -> PlanOptions:
    """Every float-only option the model takes: the plan with the least host work for the float
    backends (bench's ``float_plan`` paths); gLN in the stages for gLN models only."""
    return PlanOptions(gln_in_stages=config.norm_type is NormType.GLN, halo_edges=True, skip_sums_in_stages=True)


def build_plan(
    model: ConvTasNet,
    options: PlanOptions = PlanOptions(),
    path: PlanPath = PlanPath.FULL_CHAIN,
    expose_internal: bool = False,
) -> StagePlan:
    """Decomposes ``model`` (left untouched) into the stage plan for ``path`` cut as ``options``
    say: with ``block_chan``, 1x1 convs wider than that are split into channel blocks; with
    ``fuse`` (default), runs of stages no host step separates become one stage (``plan.fusion``);
    ``device_norms`` (cLN models only) turns every per-frame norm into a device op, so fusion
    can keep a TCN block's norms inside its stages; ``gln_in_stages`` (gLN models, float backends)
    takes gLN's statistics and affine inside the stages (``plan.gln_in_stages``); ``halo_edges``
    (float backends) has halo stages read tile and edges (``plan.halo_edges``);
    ``skip_sums_in_stages`` (float backends) has the stages add the skip sums
    (``plan.skip_sums_in_stages``); ``rf_hop_frames`` makes receptive-field spans instead
    (:func:`build_window_plan`). ``expose_internal`` makes fused stages output every reported
    tensor (parity runs)."""
    if options.rf_hop_frames is not None:
        return build_window_plan(model, options.rf_hop_frames, options.rf_max_width)
    if options.gln_in_stages:
        check_gln_in_stages(model.config, options.block_chan, options.device_norms)
    if path is PlanPath.DECODER:
        steps = _decoder_steps(model)
    elif path is PlanPath.MASKER:
        steps = _masker_steps(model)
    else:
        steps = _encoder_steps(model) + _masker_steps(model) + _decoder_steps(model)
    steps = _transform(steps, model.config, options, path, expose_internal)
    plan = StagePlan(model.config, path, tuple(steps), options, expose_internal)
    _check_dataflow(plan)
    return plan


def _transform(
    steps: list[Step], config: ConvTasNetConfig, options: PlanOptions, path: PlanPath, expose_internal: bool
) -> list[Step]:
    """The plan's rewrites, in the order each expects the one before."""
    if options.block_chan is not None:
        steps = list(split_channel_blocks(tuple(steps), options.block_chan))
    if options.device_norms:
        steps = norms_on_device(steps, config)
    if options.gln_in_stages:
        steps = gln_into_stages(steps, config)
    if options.fuse:
        steps = list(fuse_stages(steps, path.outputs, expose_internal))
    if options.halo_edges:
        steps = halo_edges_into_stages(steps)
    if options.skip_sums_in_stages:
        steps = skip_sums_into_stages(steps, path.outputs, expose_internal)
    return steps


def build_window_plan(model: ConvTasNet, hop_frames: int, max_width: int = DEFAULT_MAX_WIDTH) -> StagePlan:
    """The full-chain plan of a causal cLN model as receptive-field spans (``plan.rf_windows``)
    for hops of ``hop_frames`` frames, each span at most ``max_width`` frames wide."""
    check_rf_windows(model.config)
    steps = norms_on_device(_encoder_steps(model) + _masker_steps(model) + _decoder_steps(model), model.config)
    steps, width = window_steps(steps, model.config, hop_frames, max_width)
    options = PlanOptions(fuse=False, device_norms=True, rf_hop_frames=hop_frames, rf_max_width=max_width)
    plan = StagePlan(model.config, PlanPath.FULL_CHAIN, tuple(steps), options, rf_window=width)
    _check_dataflow(plan)
    return plan


def norms_on_device(steps: list[Step], config: ConvTasNetConfig) -> list[Step]:
    """Every cLN host step as a one-op stage (``ChannelNorm``): per frame, so exact inside any
    tile. gLN and cgLN need whole-utterance or running statistics and stay on the host."""
    if config.norm_type is not NormType.CLN:
        raise UserError(
            f"--device-norms moves per-frame (cLN) norms onto the device; this model uses "
            f"{config.norm_type.value}, whose statistics span the utterance and stay on the host: "
            "drop --device-norms"
        )
    converted: list[Step] = []
    for step in steps:
        if isinstance(step, Normalize):
            channels = len(step.gamma)
            converted.append(
                Stage(
                    f"{step.output}_device",
                    (StageInput(step.input, channels),),
                    (StageOutput(step.output, channels),),
                    (ChannelNorm(step.input, step.output, step.gamma, step.beta),),
                    role="cLN on the device",
                )
            )
        else:
            converted.append(step)
    return converted


def _check_dataflow(plan: StagePlan) -> None:
    """Every step reads only plan inputs or tensors produced before it (a builder bug otherwise)."""
    available = set(plan.inputs)
    for step in plan.steps:
        missing = [n for n in step_inputs(step) if n not in available]
        if missing:
            raise RuntimeError(f"plan step {step} reads {missing} before they exist")
        available.update(step_outputs(step))
