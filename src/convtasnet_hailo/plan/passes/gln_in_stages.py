"""``--gln-in-stages``: gLN's statistics and affine inside the stages, for the float backends.

By default gLN runs on the host between two stages: its whole-utterance statistics, then the
affine applied while the next stage's tiles are cut. Those passes over the largest tensors of the
plan were most of the stitched path's host time (docs/benchmarks.md, "Host speed"). With this
option, for every gLN whose input a stage makes:

- that stage also outputs, per tile and channel, the mean of the tensor and its sum of squares
  (``TileMean``, ``TileSumSquare``: two per-tile outputs, one pass over the tensor each);
- a host step (``GlnFold``) combines those moments (tiles x channels values, not the tensor)
  into gLN's per-channel scale and shift;
- every stage reading the normalized tensor reads the raw one instead, with scale and shift as
  per-tile inputs, and applies them first (``Mul``, ``Add``); one with a halo also gets a valid
  mask (executor-made) so the window's padding stays the zeros the reference convolves.

The normalized tensor never leaves a stage. A gLN of a plan input (the masker path's encoder
output) has no stage to take its moments and stays on the host.

For the float backends only (onnxruntime, torch_proxy): whether the Dataflow Compiler maps a
global average pool in a normalization path, and a multiply by a per-tile network input, is
unconfirmed (docs/hailo_facts.md, "Errors seen": ``NegativeSlopeExponentNonFixable`` on such an avgpool in a ConvTasNet
port), so compile and the Hailo backends refuse these plans (``builder.refuse_float_only``).
"""

from __future__ import annotations

from collections.abc import Sequence

from ...errors import UserError
from ...model.config import ConvTasNetConfig, NormType
from ..host_steps import GlnFold, Normalize
from ..ops import Add, Mul, TileMean, TileSumSquare
from ..stages import POINTWISE, InputKind, Stage, StageInput, StageOutput


def tile_moment_names(tensor: str) -> tuple[str, str]:
    """The per-tile mean and sum-of-squares outputs of ``tensor``'s producing stage."""
    return f"{tensor}.tile_mean", f"{tensor}.tile_sum_sq"


def valid_mask_name(tensor: str) -> str:
    return f"{tensor}.valid"


def check_options(config: ConvTasNetConfig, block_chan: int | None, device_norms: bool) -> None:
    """One-line refusals for combinations the option does not serve."""
    if config.norm_type is not NormType.GLN:
        raise UserError(
            f"--gln-in-stages moves gLN's statistics into the stages; this model uses "
            f"{config.norm_type.value}: drop --gln-in-stages"
            + (" (cLN norms can run on the device with --device-norms)" if config.norm_type is NormType.CLN else "")
        )
    if block_chan is not None or device_norms:
        raise UserError("--gln-in-stages cannot be combined with --block-chan or --device-norms: drop one of them")


def gln_into_stages(steps: Sequence, config: ConvTasNetConfig) -> list:
    """The unfused plan's steps with every gLN whose input a stage makes moved into the stages
    (module docstring). Other steps are kept as they are."""
    steps = list(steps)
    producer = {name: index for index, step in enumerate(steps) if isinstance(step, Stage) for name in step.writes}
    for index, step in enumerate(list(steps)):
        if not (isinstance(step, Normalize) and step.norm is NormType.GLN and step.input in producer):
            continue
        mean, sum_sq = tile_moment_names(step.input)
        fold = GlnFold(step.input, step.output, step.gamma, step.beta, mean, sum_sq)
        steps[index] = fold
        steps[producer[step.input]] = _with_moments(steps[producer[step.input]], step.input, mean, sum_sq)
        for k, reader in enumerate(steps):
            if isinstance(reader, Stage) and step.output in reader.reads:
                steps[k] = _applying_affine(reader, fold)
    return steps


def _with_moments(stage: Stage, tensor: str, mean: str, sum_sq: str) -> Stage:
    """``stage`` also outputting ``tensor``'s per-tile mean and sum of squares."""
    channels = stage.value_channels()[tensor]
    ops = (TileMean(tensor, mean), TileSumSquare(tensor, sum_sq))
    outputs = (StageOutput(mean, channels, per_tile=True), StageOutput(sum_sq, channels, per_tile=True))
    return Stage(
        stage.name,
        stage.inputs,
        stage.outputs + outputs,
        stage.ops + ops,
        role=stage.role + "; gLN moments per tile",
        block=stage.block,
    )


def _applying_affine(stage: Stage, fold: GlnFold) -> Stage:
    """``stage`` reading the raw tensor, scale and shift (and a valid mask for a halo) instead of
    the normalized tensor, which its first ops make."""
    (port,) = [p for p in stage.inputs if p.name == fold.output]
    if fold.input in stage.reads:
        raise RuntimeError(f"stage {stage.name} reads {fold.input} and its gLN output")  # not in ConvTasNet
    scaled, shifted = f"{fold.output}.scaled", f"{fold.output}.shifted"
    inputs = [
        StageInput(fold.input, port.channels, port.geometry),
        StageInput(fold.scale, port.channels, kind=InputKind.PER_TILE),
        StageInput(fold.shift, port.channels, kind=InputKind.PER_TILE),
    ]
    ops = [Mul(fold.input, fold.scale, scaled)]
    if port.geometry == POINTWISE:  # the padding past the utterance is cut off the outputs anyway
        ops.append(Add(scaled, fold.shift, fold.output))
    else:  # the conv must see the reference's zeros outside the utterance, not the shift
        mask = valid_mask_name(fold.output)
        inputs.append(StageInput(mask, 1, port.geometry, kind=InputKind.VALID_MASK, source=fold.input))
        ops += [Add(scaled, fold.shift, shifted), Mul(shifted, mask, fold.output)]
    others = tuple(p for p in stage.inputs if p.name != fold.output)
    return Stage(
        stage.name,
        tuple(inputs) + others,
        stage.outputs,
        tuple(ops) + stage.ops,
        role="gLN affine; " + stage.role,
        block=stage.block,
    )
