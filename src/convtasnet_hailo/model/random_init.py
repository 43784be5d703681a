"""Seeded random models for parity runs without a checkpoint.

Asteroid's init leaves every norm at gamma=1, beta=0 and every PReLU at 0.25, which would hide
mistakes in how the plan handles them; these are perturbed so every parameter matters.
"""

from __future__ import annotations

import torch

from .config import ConvTasNetConfig
from .convtasnet import ConvTasNet, _AffineNorm


def random_model(config: ConvTasNetConfig, seed: int = 0) -> ConvTasNet:
    """A ConvTasNet with seeded weights, perturbed norm affines and PReLU slopes (eval mode)."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # default init of the conv layers
    model = ConvTasNet(config)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, _AffineNorm):
                module.gamma.copy_(1.0 + 0.2 * torch.randn(module.gamma.shape, generator=generator))
                module.beta.copy_(0.1 * torch.randn(module.beta.shape, generator=generator))
            elif isinstance(module, torch.nn.PReLU):
                module.weight.copy_(0.05 + 0.4 * torch.rand(module.weight.shape, generator=generator))
    return model.eval()
