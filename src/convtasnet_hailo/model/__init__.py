"""The baseline ConvTasNet (Asteroid-compatible) and checkpoint loading. The configuration types
import without torch (the device side reads them from an export); ``ConvTasNet`` imports torch
when first asked for."""

from .config import FULL_SIZE_8K, FULL_SIZE_16K, ConvTasNetConfig, EncoderActivation, MaskAct, NormType

__all__ = [
    "ConvTasNet",
    "ConvTasNetConfig",
    "EncoderActivation",
    "MaskAct",
    "NormType",
    "FULL_SIZE_8K",
    "FULL_SIZE_16K",
]


def __getattr__(name: str):
    if name == "ConvTasNet":
        from .convtasnet import ConvTasNet

        return ConvTasNet
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
