"""The baseline ConvTasNet (Asteroid-compatible) and checkpoint loading."""

from .config import ConvTasNetConfig, EncoderActivation, MaskAct, NormType, FULL_SIZE_8K, FULL_SIZE_16K
from .convtasnet import ConvTasNet

__all__ = ["ConvTasNet", "ConvTasNetConfig", "EncoderActivation", "MaskAct", "NormType",
           "FULL_SIZE_8K", "FULL_SIZE_16K"]
