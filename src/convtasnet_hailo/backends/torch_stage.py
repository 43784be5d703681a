"""A PyTorch module that computes one :class:`Stage` from its ops' own torch forms (torch_proxy)."""

from __future__ import annotations

import torch
from torch import nn

from ..plan.stages import Stage


class StageModule(nn.Module):
    """Evaluates a stage's ops in order. Shape: inputs (batch, C_in, 1, W_in) in the order of
    ``stage.inputs`` -> tuple of (batch, C_out, 1, W) in the order of ``stage.outputs``."""

    def __init__(self, stage: Stage):
        super().__init__()
        self.stage = stage
        self.layers = nn.ModuleDict()
        for index, op in enumerate(stage.ops):
            module = op.torch_module()
            if module is not None:
                self.layers[self._layer_name(index, op)] = module

    @staticmethod
    def _layer_name(index: int, op) -> str:
        return f"{type(op).__name__.lower()}{index}_{op.output}"

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        values = {port.name: tensor for port, tensor in zip(self.stage.inputs, inputs, strict=False)}
        for index, op in enumerate(self.stage.ops):
            module = self.layers[self._layer_name(index, op)] if self._layer_name(index, op) in self.layers else None
            values[op.output] = op.torch_forward(module, *(values[name] for name in op.reads))
        return tuple(values[port.name] for port in self.stage.outputs)
