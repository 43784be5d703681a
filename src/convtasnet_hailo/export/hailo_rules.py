"""What the Hailo parser accepts, in one place, each entry with its source (docs/hailo_facts.md).

Limits marked "unconfirmed" have no primary source: they default to no limit and are
configurable (``convtasnet-hailo check --max-...``).
"""

from __future__ import annotations

import dataclasses

#: ONNX op types the plan's stages use and the Hailo parser accepts -> the source of that fact.
ALLOWED_OPS: dict[str, str] = {
    "Conv": "docs/hailo_facts.md, Ops and shapes: Conv2d with a (1, K) kernel on H=1 tensors "
    "(Hailo's own Whisper port uses Conv2d kernel (1,3) on (1, 80, 1, 1000))",
    "Relu": "docs/hailo_facts.md, Ops and shapes: ReLU is supported",
    "Sigmoid": "docs/hailo_facts.md, Ops and shapes: Sigmoid is supported",
    "Add": "docs/hailo_facts.md, Ops and shapes: elementwise add (ew_add) is supported",
    "Mul": "docs/hailo_facts.md, Ops and shapes: elementwise multiply (ew_mult) is supported",
    "LeakyRelu": "the model's single-slope PReLU, exported as the identical LeakyRelu(alpha=slope) "
    "(plan.ops.PRelu). Leaky activations are what Darknet YOLOv3/v4 use, and Hailo's Model "
    "Zoo compiles tiny-YOLOv4 to HEF (hailo_model_zoo README, v1.4); PReLU itself is "
    "unconfirmed (docs/hailo_facts.md, Ops and shapes)",
}

#: Ops allowed only inside a per-frame layer norm over channels (``plan.ops.ChannelNorm``, nodes
#: named with ``CHANNEL_NORM_MARK``; ReduceMean over axis 1 only): the LayerNorm pattern Hailo's
#: ``layer_norm_decomposition`` serves in its transformer configs (docs/hailo_facts.md, "Model script
#: commands"). Unconfirmed for (1, W) layouts: a `--device-norms` export is a candidate to compile.
LAYER_NORM_OPS: dict[str, str] = {
    "ReduceMean": "per-frame mean over channels (axis 1) of a layer norm (unconfirmed, layer_norm_decomposition)",
    "Sub": "centring of a per-frame layer norm (unconfirmed)",
    "Sqrt": "standard deviation of a per-frame layer norm (unconfirmed)",
    "Div": "scaling of a per-frame layer norm (unconfirmed)",
}

#: Ops known to fail in the parser -> the error it raises (docs/hailo_facts.md, "Errors seen").
FORBIDDEN_OPS: dict[str, str] = {
    "Reshape": "UnsupportedShuffleLayerError",
    "Flatten": "UnsupportedShuffleLayerError",
    "Transpose": "UnsupportedShuffleLayerError (layout change inside the net)",
    "Slice": 'UnsupportedSliceLayerError ("Slice on axis 1 is not supported")',
    "Gather": "UnsupportedOperationError",
    "ReduceMax": "UnsupportedReduceMaxLayerError",
    "ReduceMean": "global reduction inside a stage (gLN statistics belong on the host)",
    "ConvTranspose": 'grouped deconvolution fails ("Super deconv is not supported with groups")',
}


@dataclasses.dataclass(frozen=True)
class CheckLimits:
    """Configurable limits; ``None`` means no limit.

    ``max_width`` applies to conv outputs (tile width): in the seed runbook's runs, 256-channel
    1x1 blocks compiled at latent width <= 512 and failed at 1024-2000 (docs/hailo_facts.md, "Ops and shapes"), so
    512 is the default. Kernel, dilation and channel limits are unconfirmed: no default limit.
    """

    max_width: int | None = 512
    max_kernel: int | None = None
    max_dilation: int | None = None
    max_channels: int | None = None
