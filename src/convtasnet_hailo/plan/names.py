"""Tensor names shared by the reference trace, the plan and every report: the names the
runbook's users read (docs/exactness.md, "Output names")."""

from __future__ import annotations

import re

WAV = "wav"
ENCODER = "encoder"
BOTTLENECK_NORM = "bottleneck_norm"
BOTTLENECK = "bottleneck"
MASK_NET = "mask_net"
MASK_SCORE = "mask_score"
MASK_OUTPUT = "mask_output"
MASKER_OUTPUT = "masker_output"
SOURCE_PROJECTOR = "source_projector"
MASKED_REP = "masked_rep"
DECODER_PRE = "decoder_pre"
DECODER_HEAD = "decoder_head"
DECODER_OUTPUT = "decoder_output"
FINAL_OUTPUT = "final_output"

#: Tensors of TCN block i: ``tcn{i}_<part>``.
BLOCK_PARTS = ("in", "in_norm", "depth", "depth_norm", "residual", "skip", "skip_sum")


def tcn(index: int, part: str) -> str:
    """``tcn{index}_{part}``, e.g. ``tcn3_depth``."""
    if part not in BLOCK_PARTS:
        raise ValueError(f"unknown block tensor part {part!r}; parts: {', '.join(BLOCK_PARTS)}")
    return f"tcn{index}_{part}"


#: Tensors the exactness contract names (stage outputs in the runbook's words); the others
#: (``*_norm``, ``*_skip_sum``, ``mask_net``) are host-made and judged alike as diagnostics.
CONTRACT_TENSORS = re.compile(
    r"^(encoder|bottleneck|tcn\d+_(in|depth|residual|skip)|mask_score|mask_output|masker_output"
    r"|source_projector|masked_rep|decoder_pre|decoder_head|decoder_output|final_output)$"
)


def is_contract_tensor(name: str) -> bool:
    return CONTRACT_TENSORS.match(name) is not None


#: Every tensor a parity run reports: the contract's names and the host-made diagnostics.
REPORTED_TENSORS = re.compile(
    CONTRACT_TENSORS.pattern[:-2] + r"|bottleneck_norm|tcn\d+_(in_norm|depth_norm|skip_sum)|mask_net)$"
)


def is_reported_tensor(name: str) -> bool:
    return REPORTED_TENSORS.match(name) is not None
