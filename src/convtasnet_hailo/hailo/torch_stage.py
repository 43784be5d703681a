"""A PyTorch module that computes one :class:`Stage` (used by torch_proxy and ONNX export)."""

from __future__ import annotations

import torch
from torch import nn

from .stages import Add, Conv, Mul, PRelu, Relu, Sigmoid, Stage


def _conv_module(op: Conv) -> nn.Conv2d:
    conv = nn.Conv2d(
        op.in_channels, op.out_channels, kernel_size=(1, op.kernel), stride=(1, op.stride),
        dilation=(1, op.dilation), groups=op.groups, bias=op.bias is not None,
    )
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(op.weight))
        if op.bias is not None:
            conv.bias.copy_(torch.from_numpy(op.bias))
    return conv


def _prelu_module(op: PRelu) -> nn.PReLU:
    prelu = nn.PReLU(num_parameters=1)
    with torch.no_grad():
        prelu.weight.fill_(op.slope)
    return prelu


class StageModule(nn.Module):
    """Evaluates a stage's ops in order. Shape: inputs (batch, C_in, 1, W_in) in the order of
    ``stage.inputs`` -> tuple of (batch, C_out, 1, W) in the order of ``stage.outputs``."""

    def __init__(self, stage: Stage):
        super().__init__()
        self.stage = stage
        self.layers = nn.ModuleDict()
        for index, op in enumerate(stage.ops):
            if isinstance(op, Conv):
                self.layers[self._layer_name(index, op)] = _conv_module(op)
            elif isinstance(op, PRelu):
                self.layers[self._layer_name(index, op)] = _prelu_module(op)

    @staticmethod
    def _layer_name(index: int, op) -> str:
        # Stable, readable names: they become ONNX node and initializer names.
        return f"{type(op).__name__.lower()}{index}_{op.output}"

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        values = {port.name: tensor for port, tensor in zip(self.stage.inputs, inputs)}
        for index, op in enumerate(self.stage.ops):
            if isinstance(op, (Conv, PRelu)):
                values[op.output] = self.layers[self._layer_name(index, op)](values[op.input])
            elif isinstance(op, Relu):
                values[op.output] = torch.relu(values[op.input])
            elif isinstance(op, Sigmoid):
                values[op.output] = torch.sigmoid(values[op.input])
            elif isinstance(op, Add):
                values[op.output] = values[op.a] + values[op.b]
            elif isinstance(op, Mul):
                values[op.output] = values[op.a] * values[op.b]
            else:  # pragma: no cover - the Op union is closed
                raise TypeError(f"stage {self.stage.name}: unknown op {op!r}")
        return tuple(values[port.name] for port in self.stage.outputs)
