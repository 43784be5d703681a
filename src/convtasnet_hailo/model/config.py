"""Typed configuration of an Asteroid ConvTasNet, read from and written to Asteroid ``model_args``."""

from __future__ import annotations

import dataclasses
import enum
import warnings
from collections.abc import Mapping
from typing import Any

from ..errors import UserError

#: The layer norms' epsilon (Asteroid's EPS), added to the variance before the square root.
NORM_EPS = 1e-8


class NormType(str, enum.Enum):
    """Normalization layers of the TDConvNet masker (Asteroid ``norm_type``)."""

    GLN = "gLN"  # global: mean/var over channels and the whole utterance
    CLN = "cLN"  # channel-wise: per-frame LayerNorm over channels
    CGLN = "cgLN"  # cumulative global: statistics over channels and frames up to t


class MaskAct(str, enum.Enum):
    """Mask nonlinearity (Asteroid ``mask_act``); softmax runs over the source axis."""

    RELU = "relu"
    SIGMOID = "sigmoid"
    SOFTMAX = "softmax"
    LINEAR = "linear"


class EncoderActivation(str, enum.Enum):
    """Activation after the encoder (Asteroid ``encoder_activation``; None means linear)."""

    LINEAR = "linear"
    RELU = "relu"


#: Filterbank names Asteroid writes for a free (learned) filterbank.
FREE_FILTERBANK_NAMES = ("free", "FreeFB")

_ASTEROID_ONLY_KEYS = ("fb_name", "in_chan", "out_chan")


def _enum_value(enum_cls: type[enum.Enum], key: str, value: Any) -> enum.Enum:
    try:
        return enum_cls(value)
    except (ValueError, TypeError):
        allowed = ", ".join(repr(m.value) for m in enum_cls)
        raise UserError(f"unsupported {key}={value!r}: this toolkit supports {allowed}") from None


_INT_OPTIONS = (
    "n_src",
    "n_filters",
    "kernel_size",
    "stride",
    "bn_chan",
    "hid_chan",
    "skip_chan",
    "conv_kernel_size",
    "n_blocks",
    "n_repeats",
    "sample_rate",
    "in_chan",
    "out_chan",
)


def _check_option_types(args: dict[str, Any]) -> None:
    """Types before arithmetic: counts are integers (a float that is one is taken), ``causal`` is
    a boolean (the string 'false' would read as true), names are strings."""
    for key in _INT_OPTIONS:
        value = args.get(key)
        if isinstance(value, float) and value.is_integer():
            args[key] = int(value)
        elif value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise UserError(f"model option {key}={value!r:.40} must be an integer")
    causal = args.get("causal")
    if causal is not None and not isinstance(causal, bool) and causal not in (0, 1):
        raise UserError(f"model option causal={causal!r:.40} must be true or false (a boolean, not a string)")
    if "causal" in args:
        args["causal"] = bool(causal)  # None (unset) as Asteroid's default, False
    for key in ("fb_name", "norm_type", "mask_act", "encoder_activation"):
        value = args.get(key)
        if value is not None and not isinstance(value, str):
            raise UserError(f"model option {key}={value!r:.40} must be a name (a string)")


@dataclasses.dataclass(frozen=True)
class ConvTasNetConfig:
    """Hyper-parameters of an Asteroid ConvTasNet (names as in Asteroid's ``model_args``).

    ``kernel_size``/``stride`` belong to the encoder/decoder filterbank (L and S samples);
    ``conv_kernel_size`` is the depthwise kernel P of the TCN blocks.
    """

    n_src: int = 2
    n_filters: int = 512
    kernel_size: int = 16
    stride: int = 8
    bn_chan: int = 128
    hid_chan: int = 512
    skip_chan: int = 128
    conv_kernel_size: int = 3
    n_blocks: int = 8
    n_repeats: int = 3
    norm_type: NormType = NormType.GLN
    mask_act: MaskAct = MaskAct.RELU
    causal: bool = False
    sample_rate: int = 8000
    encoder_activation: EncoderActivation = EncoderActivation.LINEAR

    def __post_init__(self) -> None:
        for name in (
            "n_src",
            "n_filters",
            "kernel_size",
            "stride",
            "bn_chan",
            "hid_chan",
            "conv_kernel_size",
            "n_blocks",
            "n_repeats",
            "sample_rate",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UserError(f"model option {name}={value!r} must be a positive integer")
        from ..audio.arrays import MAX_RATE, MIN_RATE

        if not MIN_RATE <= self.sample_rate <= MAX_RATE:
            raise UserError(
                f"model option sample_rate={self.sample_rate} Hz is not an audio rate: use {MIN_RATE} to {MAX_RATE} "
                "(8000 or 16000 for ConvTasNet)"
            )
        if not isinstance(self.skip_chan, int) or self.skip_chan < 0:
            raise UserError(f"model option skip_chan={self.skip_chan!r} must be an integer >= 0")
        if not self.causal and (self.conv_kernel_size - 1) % 2:
            # Asteroid pads (P-1)*d//2 per side; with an even P the block output is one frame
            # short and the residual add fails in Asteroid itself.
            raise UserError(
                f"conv_kernel_size={self.conv_kernel_size} is even: a non-causal ConvTasNet "
                "needs an odd depthwise kernel (Asteroid's own forward fails otherwise)"
            )

    @property
    def n_tcn_blocks(self) -> int:
        return self.n_blocks * self.n_repeats

    def dilation(self, block_index: int) -> int:
        """Dilation of TCN block ``block_index`` (2**x for x in 0..n_blocks-1, per repeat)."""
        return 2 ** (block_index % self.n_blocks)

    def depthwise_padding(self, block_index: int) -> int:
        """Asteroid's padding of the depthwise conv (per side; causal chops the right side)."""
        span = (self.conv_kernel_size - 1) * self.dilation(block_index)
        return span if self.causal else span // 2

    def forward_bytes(self, samples: int) -> int:
        """A lower bound of the memory one forward pass over ``samples`` holds at once (float32):
        the input and output audio, the encoded frames, one hidden TCN tensor and the masks."""
        frames = samples // self.stride + 1
        return 4 * (
            samples * (1 + self.n_src) + frames * (self.n_filters + self.hid_chan + self.n_src * self.n_filters)
        )

    @property
    def mask_in_chan(self) -> int:
        """Channels entering the mask head: skip channels, or the residual stream without skips."""
        return self.skip_chan if self.skip_chan else self.bn_chan

    @classmethod
    def from_model_args(cls, model_args: Mapping[str, Any]) -> ConvTasNetConfig:
        """Read Asteroid ``model_args``; old files without sample_rate/causal/encoder_activation
        get Asteroid's defaults. Unknown or unsupported options raise :class:`UserError`."""
        if not isinstance(model_args, Mapping):
            raise UserError(f"model_args is a {type(model_args).__name__}, not a mapping of option names to values")
        args = {str(k): v for k, v in model_args.items()}
        _check_option_types(args)
        fb_name = args.pop("fb_name", "free")
        if fb_name not in FREE_FILTERBANK_NAMES:
            raise UserError(
                f"unsupported fb_name={fb_name!r}: only the free (learned) filterbank "
                f"({', '.join(FREE_FILTERBANK_NAMES)}) can be decomposed for Hailo"
            )
        n_filters = args.get("n_filters", cls.n_filters)
        for key in ("in_chan", "out_chan"):
            value = args.pop(key, None)
            if value is not None and value != n_filters:
                raise UserError(f"unsupported {key}={value}: must equal n_filters={n_filters} (or be null)")
        args.pop("is_pinv", None)  # Asteroid filterbank flag; False for every ConvTasNet
        if args.get("stride") is None and "kernel_size" in args:
            args["stride"] = args["kernel_size"] // 2  # Asteroid's default stride
        if args.get("encoder_activation") is None:
            args["encoder_activation"] = EncoderActivation.LINEAR.value
        if args.get("sample_rate") is None:
            args["sample_rate"] = cls.sample_rate
        if isinstance(args["sample_rate"], float) and args["sample_rate"].is_integer():
            args["sample_rate"] = int(args["sample_rate"])
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(args) - known)
        if unknown:
            raise UserError(
                f"unknown model option(s) {', '.join(unknown)} in model_args; known: "
                f"{', '.join(sorted(known | set(_ASTEROID_ONLY_KEYS)))}"
            )
        args["norm_type"] = _enum_value(NormType, "norm_type", args.get("norm_type", "gLN"))
        args["mask_act"] = _enum_value(MaskAct, "mask_act", args.get("mask_act", "sigmoid"))
        args["encoder_activation"] = _enum_value(EncoderActivation, "encoder_activation", args["encoder_activation"])
        if args.get("skip_chan") is None:
            args["skip_chan"] = 0
        if args.get("causal") and args["norm_type"] is NormType.GLN:
            warnings.warn("causal model with gLN: using cLN, as Asteroid does", stacklevel=2)
            args["norm_type"] = NormType.CLN
        return cls(**args)

    def to_model_args(self) -> dict[str, Any]:
        """Asteroid ``model_args`` (filterbank and masker arguments merged)."""
        return {
            "fb_name": "free",
            "n_filters": self.n_filters,
            "kernel_size": self.kernel_size,
            "stride": self.stride,
            "sample_rate": self.sample_rate,
            "in_chan": self.n_filters,
            "out_chan": self.n_filters,
            "bn_chan": self.bn_chan,
            "hid_chan": self.hid_chan,
            "skip_chan": self.skip_chan,
            "conv_kernel_size": self.conv_kernel_size,
            "n_blocks": self.n_blocks,
            "n_repeats": self.n_repeats,
            "n_src": self.n_src,
            "norm_type": self.norm_type.value,
            "mask_act": self.mask_act.value,
            "causal": self.causal,
            "encoder_activation": (
                None if self.encoder_activation is EncoderActivation.LINEAR else self.encoder_activation.value
            ),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            f.name: (v.value if isinstance(v, enum.Enum) else v)
            for f in dataclasses.fields(self)
            for v in [getattr(self, f.name)]
        }


#: The full-size 8 kHz model of the Conv-TasNet paper and Asteroid's recipes (5,050,545 params).
FULL_SIZE_8K = ConvTasNetConfig()
#: The 16 kHz variant (L=32, S=16), as in JorisCos/ConvTasNet_Libri2Mix_sepclean_16k.
FULL_SIZE_16K = ConvTasNetConfig(kernel_size=32, stride=16, sample_rate=16000)
#: Causal full-size 8 kHz model with per-frame norms (cLN): needs no future and no utterance statistics.
FULL_SIZE_8K_CAUSAL = ConvTasNetConfig(causal=True, norm_type=NormType.CLN)
