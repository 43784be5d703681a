"""``torch_proxy``: the stage modules in PyTorch, on the CPU, float32."""

from __future__ import annotations

import numpy as np
import torch

from ..plan.stages import Stage
from .base import Backend, register_backend
from .torch_stage import StageModule


@register_backend("torch_proxy")
class TorchProxyBackend(Backend):
    """Builds each stage's :class:`StageModule` once and runs whole batches of tiles."""

    name = "torch_proxy"

    def __init__(self) -> None:
        self._modules: dict[str, StageModule] = {}

    def _module(self, stage: Stage) -> StageModule:
        module = self._modules.get(stage.name)
        if module is None or module.stage is not stage:
            module = StageModule(stage).eval()
            self._modules[stage.name] = module
        return module

    @torch.no_grad()
    def run_stage(self, stage: Stage, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        args = [torch.from_numpy(inputs[port.name]) for port in stage.inputs]
        outputs = self._module(stage)(*args)
        return {port.name: out.numpy() for port, out in zip(stage.outputs, outputs, strict=False)}
