"""The op types a stage may hold, each defined once for every consumer.

Hailo-friendly ops: Conv2d with (1, K) kernels (plain, strided, depthwise, dilated), PReLU, ReLU,
Sigmoid, elementwise add and multiply, and (with ``--device-norms``, cLN models) the per-frame
layer norm over channels. The float-only plans (``builder.FLOAT_ONLY_FLAGS``) add the per-tile mean
and sum of squares over time (``--gln-in-stages``), multiplies by per-tile values and masks, and
the concatenation of a tile with its neighbours' edges and the cut of a tile's edges
(``--halo-edges``). Each op says, in one class:
- what it reads and writes (``reads``, ``output``) and its shape rule (``out_channels``);
- its receptive field along time (``span``: the halo a stage input feeding it needs);
- its cost (``macs_per_frame``) and what it stores on the device (``weight_count``);
- what the allocator sees of it (``structure``: ops and shapes, no weights);
- how torch_proxy runs it (``torch_module`` / ``torch_forward``);
- how ONNX expresses it (``onnx_nodes``).
A new op type is one new class here (and its place in :data:`Op`).
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

Channels = Mapping[str, int]


class StageOp(abc.ABC):
    """The interface every op type implements (see the module docstring)."""

    output: str

    @property
    @abc.abstractmethod
    def reads(self) -> tuple[str, ...]:
        """Values the op reads, in argument order."""

    def out_channels(self, channels: Channels) -> int:
        """Channels of ``output`` given the channels of every value read (elementwise by default)."""
        return channels[self.reads[0]]

    @property
    def span(self) -> int:
        """Input frames one output frame depends on (1: pointwise)."""
        return 1

    def macs_per_frame(self, channels: Channels) -> int:
        """Multiply-accumulates per output frame (elementwise ops count one per channel)."""
        return self.out_channels(channels)

    def weight_count(self) -> int:
        """Parameters the op keeps on the device."""
        return 0

    def structure(self) -> tuple:
        """What the allocator sees: the op type and its shapes, not its weights."""
        return (type(self).__name__,)

    def renamed(self, mapping: Mapping[str, str]) -> StageOp:
        """The same op reading and writing renamed values (names not in ``mapping`` stay)."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        for key in ("input", "a", "b", "output"):
            if key in fields:
                fields[key] = mapping.get(fields[key], fields[key])
        return type(self)(**fields)

    def torch_module(self) -> Any:
        """A torch module holding the op's parameters, or None."""
        return None

    @abc.abstractmethod
    def torch_forward(self, module: Any, *inputs: Any) -> Any:
        """The op on torch tensors (batch, C, 1, W)."""

    @abc.abstractmethod
    def onnx_nodes(self, name: str, channels: Channels) -> tuple[list, list]:
        """ONNX ``(nodes, initializers)`` named after ``name`` (stable across runs)."""

    def output_node(self, name: str) -> str:
        """The name of the node of :meth:`onnx_nodes` that writes ``output``."""
        return name


class _OneInput(StageOp):
    """An op reading one value, ``input``."""

    input: str

    @property
    def reads(self) -> tuple[str, ...]:
        return (self.input,)


@dataclasses.dataclass(frozen=True, eq=False)
class Conv(_OneInput):
    """Conv2d on (batch, C, 1, W) with a (1, K) kernel; no padding, or ``pad_left`` zero frames
    before the input (a causal conv inside a receptive-field window, ``plan.rf_windows``: output
    width = input width).

    ``weight``: (C_out, C_in / groups, 1, K) float32; ``bias``: (C_out,) or None.
    """

    input: str
    output: str
    weight: np.ndarray
    bias: np.ndarray | None = None
    stride: int = 1
    dilation: int = 1
    groups: int = 1
    pad_left: int = 0

    @property
    def in_channels(self) -> int:
        return self.weight.shape[1] * self.groups

    @property
    def kernel(self) -> int:
        return self.weight.shape[3]

    @property
    def is_pointwise(self) -> bool:
        """A plain 1x1 conv (channel blocks may split it)."""
        return self.kernel == 1 and self.groups == 1 and self.stride == 1

    def out_channels(self, channels: Channels | None = None) -> int:
        return self.weight.shape[0]

    @property
    def span(self) -> int:
        return (self.kernel - 1) * self.dilation + 1

    def macs_per_frame(self, channels: Channels | None = None) -> int:
        return int(self.weight.size)

    def weight_count(self) -> int:
        return int(self.weight.size + (0 if self.bias is None else self.bias.size))

    def structure(self) -> tuple:
        return (
            "Conv",
            self.weight.shape,
            self.dilation,
            self.stride,
            self.groups,
            self.bias is not None,
            self.pad_left,
        )

    def torch_module(self) -> Any:
        import torch

        conv = torch.nn.Conv2d(
            self.in_channels,
            self.out_channels(),
            kernel_size=(1, self.kernel),
            stride=(1, self.stride),
            dilation=(1, self.dilation),
            groups=self.groups,
            bias=self.bias is not None,
        )
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(self.weight))
            if self.bias is not None:
                conv.bias.copy_(torch.from_numpy(self.bias))
        return conv

    def torch_forward(self, module: Any, x: Any) -> Any:
        if self.pad_left:
            import torch

            x = torch.nn.functional.pad(x, (self.pad_left, 0))
        return module(x)

    def onnx_nodes(self, name: str, channels: Channels) -> tuple[list, list]:
        from onnx import helper, numpy_helper

        inputs = [self.input, f"{name}.weight"]
        initializers = [numpy_helper.from_array(self.weight.astype(np.float32), f"{name}.weight")]
        if self.bias is not None:
            inputs.append(f"{name}.bias")
            initializers.append(numpy_helper.from_array(self.bias.astype(np.float32), f"{name}.bias"))
        node = helper.make_node(
            "Conv",
            inputs,
            [self.output],
            name=name,
            kernel_shape=[1, self.kernel],
            strides=[1, self.stride],
            dilations=[1, self.dilation],
            group=self.groups,
            pads=[0, self.pad_left, 0, 0],
        )  # [H begin, W begin, H end, W end]
        return [node], initializers


@dataclasses.dataclass(frozen=True)
class PRelu(_OneInput):
    """PReLU with one shared slope (Asteroid uses single-parameter PReLU); ONNX: LeakyRelu."""

    input: str
    output: str
    slope: float

    def weight_count(self) -> int:
        return 1

    def torch_module(self) -> Any:
        import torch

        prelu = torch.nn.PReLU(num_parameters=1)
        with torch.no_grad():
            prelu.weight.fill_(self.slope)
        return prelu

    def torch_forward(self, module: Any, x: Any) -> Any:
        return module(x)

    def onnx_nodes(self, name: str, channels: Channels) -> tuple[list, list]:
        from onnx import helper

        # One shared slope is exactly LeakyRelu (the same single multiply below zero). ONNX Runtime
        # fuses Conv + LeakyRelu into one kernel and never fuses a PRelu node: faster stages, outputs
        # bit-identical (docs/benchmarks.md, "Host speed").
        return [helper.make_node("LeakyRelu", [self.input], [self.output], name=name, alpha=float(self.slope))], []


class _ParameterFree(StageOp):
    """An op without parameters whose ONNX form is one node of type ``onnx_op`` on its reads."""

    onnx_op: ClassVar[str]

    def onnx_nodes(self, name: str, channels: Channels) -> tuple[list, list]:
        from onnx import helper

        return [helper.make_node(self.onnx_op, list(self.reads), [self.output], name=name)], []


class _Unary(_OneInput, _ParameterFree):
    """A parameter-free op on one value."""


class _Binary(_ParameterFree):
    a: str
    b: str

    @property
    def reads(self) -> tuple[str, ...]:
        return (self.a, self.b)


@dataclasses.dataclass(frozen=True)
class Relu(_Unary):
    input: str
    output: str
    onnx_op: ClassVar[str] = "Relu"

    def torch_forward(self, module: Any, x: Any) -> Any:
        import torch

        return torch.relu(x)


@dataclasses.dataclass(frozen=True)
class Sigmoid(_Unary):
    input: str
    output: str
    onnx_op: ClassVar[str] = "Sigmoid"

    def torch_forward(self, module: Any, x: Any) -> Any:
        import torch

        return torch.sigmoid(x)


@dataclasses.dataclass(frozen=True)
class Add(_Binary):
    """Elementwise ``a + b`` (Hailo's ew_add), in that order."""

    a: str
    b: str
    output: str
    onnx_op: ClassVar[str] = "Add"

    def torch_forward(self, module: Any, a: Any, b: Any) -> Any:
        return a + b


@dataclasses.dataclass(frozen=True)
class TileMean(_Unary):
    """Per tile and channel, the mean over the tile's frames: (B, C, 1, W) -> (B, C, 1, 1). ONNX's
    GlobalAveragePool; the first half of gLN's statistics when they are taken inside the stages
    (``--gln-in-stages``; ``plan.gln_in_stages``)."""

    input: str
    output: str
    onnx_op: ClassVar[str] = "GlobalAveragePool"

    def torch_forward(self, module: Any, x: Any) -> Any:
        return x.mean(dim=-1, keepdim=True)


@dataclasses.dataclass(frozen=True)
class TileSumSquare(_Unary):
    """Per tile and channel, the sum of squares over the tile's frames: (B, C, 1, W) -> (B, C, 1, 1).
    ONNX's ReduceSumSquare over the time axis, one pass without an x * x tensor; the second half of
    gLN's statistics inside the stages (``plan.gln_in_stages``)."""

    input: str
    output: str

    def torch_forward(self, module: Any, x: Any) -> Any:
        return (x * x).sum(dim=-1, keepdim=True)

    def onnx_nodes(self, name: str, channels: Channels) -> tuple[list, list]:
        from onnx import helper

        return [helper.make_node("ReduceSumSquare", [self.input], [self.output], name=name, axes=[3], keepdims=1)], []


@dataclasses.dataclass(frozen=True)
class Mul(_Binary):
    """Elementwise ``a * b`` (Hailo's ew_mult); ``b`` may be per tile (B, C, 1, 1) or a mask
    (B, 1, 1, W), broadcast as ONNX and torch broadcast."""

    a: str
    b: str
    output: str
    onnx_op: ClassVar[str] = "Mul"

    def torch_forward(self, module: Any, a: Any, b: Any) -> Any:
        return a * b


@dataclasses.dataclass(frozen=True)
class Concat(StageOp):
    """Values joined along time (W), in order: a tile between its neighbours' edge frames
    (``--halo-edges``, ``plan.halo_edges``). Shape: (B, C, 1, W_k) each -> (B, C, 1, sum W_k)."""

    inputs: tuple[str, ...]
    output: str

    @property
    def reads(self) -> tuple[str, ...]:
        return self.inputs

    def macs_per_frame(self, channels: Channels) -> int:
        return 0  # a copy

    def renamed(self, mapping: Mapping[str, str]) -> Concat:
        return Concat(tuple(mapping.get(n, n) for n in self.inputs), mapping.get(self.output, self.output))

    def torch_forward(self, module: Any, *values: Any) -> Any:
        import torch

        return torch.cat(values, dim=-1)

    def onnx_nodes(self, name: str, channels: Channels) -> tuple[list, list]:
        from onnx import helper

        return [helper.make_node("Concat", list(self.inputs), [self.output], name=name, axis=3)], []


@dataclasses.dataclass(frozen=True)
class TileEdge(_OneInput):
    """Each tile's first (``side`` "head") or last ("tail") ``frames`` frames, the whole tile when it
    is narrower: (B, C, 1, W) -> (B, C, 1, min(frames, W)). The producing stage's copy of what the
    next stage's neighbours need as halo edges (``--halo-edges``), cut while the tile is in cache;
    ONNX Slice on the time axis."""

    input: str
    output: str
    side: str
    frames: int

    def macs_per_frame(self, channels: Channels) -> int:
        return 0  # a copy

    def structure(self) -> tuple:
        return ("TileEdge", self.side, self.frames)

    def torch_forward(self, module: Any, x: Any) -> Any:
        return x[..., : self.frames] if self.side == "head" else x[..., max(0, x.shape[-1] - self.frames) :]

    def onnx_nodes(self, name: str, channels: Channels) -> tuple[list, list]:
        from onnx import helper, numpy_helper

        starts, ends = ([0], [self.frames]) if self.side == "head" else ([-self.frames], [np.iinfo(np.int64).max])
        initializers = [
            numpy_helper.from_array(np.array(v, np.int64), f"{name}.{key}")
            for key, v in (("starts", starts), ("ends", ends), ("axes", [3]))
        ]
        node = helper.make_node(
            "Slice", [self.input, f"{name}.starts", f"{name}.ends", f"{name}.axes"], [self.output], name=name
        )
        return [node], initializers


#: ONNX node names of a ChannelNorm carry this marker: the checker allows its reduction ops there only.
CHANNEL_NORM_MARK = "/channel_norm/"


@dataclasses.dataclass(frozen=True, eq=False)
class ChannelNorm(_OneInput):
    """cLN: per frame, mean and biased variance over channels, then ``gamma``/``beta`` per
    channel. Pointwise in time, so it can sit inside a stage; on Hailo it is the per-frame
    LayerNorm that ``layer_norm_decomposition`` serves (docs/workarounds.md: unconfirmed for (1, W)
    layouts). torch_proxy runs the model's own layer; ONNX spells it out (ReduceMean over axis 1,
    Sub, Mul, ReduceMean, Add eps, Sqrt, Div, Mul gamma, Add beta)."""

    input: str
    output: str
    gamma: np.ndarray  # (C,)
    beta: np.ndarray  # (C,)

    def macs_per_frame(self, channels: Channels) -> int:
        return 6 * channels[self.input]  # centre, square, two means, scale, shift

    def weight_count(self) -> int:
        return 2 * len(self.gamma)

    def structure(self) -> tuple:
        return ("ChannelNorm", len(self.gamma))

    def torch_module(self) -> Any:
        from ..model.config import NormType
        from .host_steps import norm_layer

        return norm_layer(NormType.CLN, self.gamma, self.beta)

    def torch_forward(self, module: Any, x: Any) -> Any:
        return module(x)

    def onnx_nodes(self, name: str, channels: Channels) -> tuple[list, list]:
        from onnx import helper, numpy_helper

        from ..model.config import NORM_EPS

        n = f"{name}{CHANNEL_NORM_MARK}"
        c = channels[self.input]
        mean = lambda src, dst: helper.make_node("ReduceMean", [src], [dst], name=n + dst, axes=[1], keepdims=1)  # noqa: E731
        nodes = [
            mean(self.input, "mean"),
            helper.make_node("Sub", [self.input, "mean"], ["centred"], name=n + "centred"),
            helper.make_node("Mul", ["centred", "centred"], ["squared"], name=n + "squared"),
            mean("squared", "var"),
            helper.make_node("Add", ["var", "eps"], ["var_eps"], name=n + "var_eps"),
            helper.make_node("Sqrt", ["var_eps"], ["std"], name=n + "std"),
            helper.make_node("Div", ["centred", "std"], ["normed"], name=n + "normed"),
            helper.make_node("Mul", ["normed", "gamma"], ["scaled"], name=n + "scaled"),
            helper.make_node("Add", ["scaled", "beta"], [self.output], name=n + "out"),
        ]
        local = {"mean", "centred", "squared", "var", "eps", "var_eps", "std", "normed", "gamma", "scaled", "beta"}
        rename = lambda v: n + v if v in local else v  # noqa: E731
        for node in nodes:
            node.input[:] = [rename(v) for v in node.input]
            node.output[:] = [rename(v) for v in node.output]
        initializers = [
            numpy_helper.from_array(np.array(NORM_EPS, np.float32), n + "eps"),
            numpy_helper.from_array(self.gamma.astype(np.float32).reshape(c, 1, 1), n + "gamma"),
            numpy_helper.from_array(self.beta.astype(np.float32).reshape(c, 1, 1), n + "beta"),
        ]
        return nodes, initializers

    def output_node(self, name: str) -> str:
        return f"{name}{CHANNEL_NORM_MARK}out"


Op = Conv | PRelu | Relu | Sigmoid | Add | Mul | ChannelNorm | TileMean | TileSumSquare | Concat | TileEdge
#: Every op type, for checks that the set is closed (e.g. the ONNX allow-list).
OP_TYPES: tuple[type, ...] = (
    Conv,
    PRelu,
    Relu,
    Sigmoid,
    Add,
    Mul,
    ChannelNorm,
    TileMean,
    TileSumSquare,
    Concat,
    TileEdge,
)


def conv1d_weight(weight: np.ndarray) -> np.ndarray:
    """Conv1d weight (C_out, C_in, K) -> Conv2d weight (C_out, C_in, 1, K), float32."""
    return np.ascontiguousarray(weight[:, :, None, :], dtype=np.float32)
