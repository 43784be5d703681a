"""The stateful streaming graph: one ONNX per causal model that runs one hop and returns its caches.

Inputs: ``samples`` (hop,) float32, the hop's audio; ``valid_samples`` (1,) int64, how many of
them are real (the hop, or fewer at a zero-padded last partial hop); and one tensor per piece of
history (:class:`CacheSpec`). Outputs: ``sources`` (n_src, hop) float32 and each cache's next value
(``<name>_next``), to be fed back at the next hop. Every cache starts at its ``initial`` value.

Alignment: the encoder keeps ``delay`` = ceil(L/S)*S - S past samples, so hop k (from 0) makes
encoder frames k*W - delay/S .. k*W - delay/S + W - 1 (W = hop/S) and emits output samples
k*hop - delay .. (k+1)*hop - delay - 1. Frames before the stream's start (the first hops') and
frames past the real input (a partial last hop) are masked: they enter no dilated conv (the
reference's zero padding), no cgLN sum and no overlap-add, so every emitted sample with an index
>= 0 is the offline model's. The driver drops the first ``delay`` samples, and at the end appends
``decoder_tail_next`` (the overlap-add tail) and trims to the input's length (Asteroid's pad_x_to_y).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..model.config import ConvTasNetConfig, EncoderActivation, NormType
from ..records import SHA256_HEX, RecordError, field, inside, items, read_json

#: The record's format name and version (``StatefulRecord.to_json``).
RECORD_FORMAT = "convtasnet-hailo stateful graph"
RECORD_VERSION = 1
#: The record's file name beside the ONNX when written as a folder (:func:`write_stateful`).
RECORD_NAME = "stateful.json"
SAMPLES_INPUT, VALID_INPUT, SOURCES_OUTPUT = "samples", "valid_samples", "sources"
NEXT_SUFFIX = "_next"
DTYPES = ("float32", "float64")


@dataclasses.dataclass(frozen=True)
class CacheSpec:
    """One piece of history: input ``name``, output ``name + '_next'``, every element ``initial`` at
    the stream's start. ``holds`` says what it keeps, for people writing a binding."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    initial: float
    holds: str

    @property
    def next_name(self) -> str:
        return self.name + NEXT_SUFFIX


@dataclasses.dataclass(frozen=True)
class StatefulRecord:
    """What a driver of the stateful graph needs: the file, the hop, the delay, the caches in the
    graph's input order (after ``samples`` and ``valid_samples``), and the MACs one hop computes."""

    onnx_file: str
    sha256: str
    hop: int
    sample_rate: int
    n_src: int
    delay: int
    opset: int
    macs_per_hop: int
    caches: tuple[CacheSpec, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": RECORD_FORMAT,
            "format_version": RECORD_VERSION,
            "onnx_file": self.onnx_file,
            "sha256": self.sha256,
            "hop": self.hop,
            "sample_rate": self.sample_rate,
            "n_src": self.n_src,
            "delay": self.delay,
            "opset": self.opset,
            "macs_per_hop": self.macs_per_hop,
            "inputs": {SAMPLES_INPUT: [self.hop], VALID_INPUT: [1]},
            "outputs": {SOURCES_OUTPUT: [self.n_src, self.hop]},
            "caches": [dict(dataclasses.asdict(c), shape=list(c.shape)) for c in self.caches],
        }

    @classmethod
    def from_json(cls, data: Any) -> StatefulRecord:
        """The record ``data`` describes, every field checked (:class:`UserError` naming the field)."""
        try:
            return _record(data)
        except RecordError as exc:
            raise UserError(
                f"not a readable stateful-graph record ({exc}); re-export with `export --stateful`"
            ) from None


def _cache(data: Any, where: str) -> CacheSpec:
    name = field(data, "name", str, where)
    where = f"cache {name!r}"
    if not name.isidentifier():
        raise RecordError(f"{where}: the name is not an identifier")
    shape = tuple(items(field(data, "shape", list, where), int, f"{where}.shape"))
    if not shape or any(d < 1 for d in shape):
        raise RecordError(f"{where}.shape {list(shape)} is not a shape of positive sizes")
    dtype = field(data, "dtype", str, where)
    if dtype not in DTYPES:
        raise RecordError(f"{where}.dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    return CacheSpec(
        name, shape, dtype, float(field(data, "initial", float, where)), field(data, "holds", str, where, "")
    )


def _record(data: Any) -> StatefulRecord:
    if field(data, "format", str, "the record") != RECORD_FORMAT:
        raise RecordError(f"format is {data.get('format')!r}, not {RECORD_FORMAT!r}")
    if field(data, "format_version", int, "the record") != RECORD_VERSION:
        raise RecordError(f"format_version {data['format_version']} (this toolkit reads {RECORD_VERSION})")
    ints = {
        key: field(data, key, int, "the record")
        for key in ("hop", "sample_rate", "n_src", "delay", "opset", "macs_per_hop")
    }
    if (
        min(ints["hop"], ints["sample_rate"], ints["n_src"], ints["opset"]) < 1
        or min(ints["delay"], ints["macs_per_hop"]) < 0
    ):
        raise RecordError(f"hop, sample_rate, n_src, opset, delay or macs_per_hop out of range: {ints}")
    caches = tuple(_cache(c, f"caches[{i}]") for i, c in enumerate(field(data, "caches", list, "the record")))
    names = [c.name for c in caches] + [c.next_name for c in caches]
    if len(set(names)) != len(names) or {SAMPLES_INPUT, VALID_INPUT, SOURCES_OUTPUT} & set(names):
        raise RecordError("cache names repeat or take an input's or output's name")
    digest = field(data, "sha256", str, "the record")
    if not SHA256_HEX.fullmatch(digest):
        raise RecordError(f"sha256 {digest[:20]!r} is not a sha256 (64 hex digits)")
    return StatefulRecord(
        field(data, "onnx_file", str, "the record"),
        digest,
        ints["hop"],
        ints["sample_rate"],
        ints["n_src"],
        ints["delay"],
        ints["opset"],
        ints["macs_per_hop"],
        caches,
    )


# -- the layout ---------------------------------------------------------------------------------


def stream_delay(config: ConvTasNetConfig) -> int:
    """Samples the output lags the input: the encoder window's overlap in whole strides."""
    return math.ceil(config.kernel_size / config.stride) * config.stride - config.stride


def check_stateful(config: ConvTasNetConfig, hop: int) -> None:
    """Refuses (one line) a model that cannot stream exactly, or a hop that is not whole strides."""
    if config.norm_type is NormType.GLN or not config.causal:
        raise UserError(
            f"this model is not causal ({config.norm_type.value}"
            f"{', causal=False' if not config.causal else ''}): gLN and non-causal convs read the whole "
            "utterance or future frames, so no stateful graph computes it exactly. Use a causal model "
            "(cLN or cgLN, causal=True), or `separate` for offline separation"
        )
    if not isinstance(hop, int) or hop < config.stride or hop % config.stride:
        raise UserError(f"hop of {hop} samples: use a multiple of the encoder stride ({config.stride} samples)")


def cache_layout(config: ConvTasNetConfig, hop: int) -> tuple[CacheSpec, ...]:
    """The caches of ``config``'s stateful graph at ``hop``, in input order (empty ones left out)."""
    check_stateful(config, hop)
    delay, cgln = stream_delay(config), config.norm_type is NormType.CGLN
    caches = [
        CacheSpec(
            "frame_index",
            (1,),
            "float64",
            float(-(delay // config.stride)),
            "index of the hop's first encoder frame (negative: frames before the stream, masked); "
            "cgLN's frame count is this plus one",
        )
    ]
    if delay:
        caches.append(CacheSpec("encoder_overlap", (1, 1, delay), "float32", 0.0, "the last delay input samples"))
    sums = "cgLN running [sum, sum of squares] over channels and all earlier frames"
    if cgln:
        caches.append(CacheSpec("bottleneck_cgln", (2, 1), "float64", 0.0, sums))
    for block in range(config.n_tcn_blocks):
        if cgln:
            caches.append(CacheSpec(f"block{block}_cgln1", (2, 1), "float64", 0.0, sums))
        past = (config.conv_kernel_size - 1) * config.dilation(block)
        if past:
            caches.append(
                CacheSpec(
                    f"block{block}_depthwise",
                    (past, config.hid_chan),
                    "float32",
                    0.0,
                    f"the depthwise conv's last {past} input frames (dilation {config.dilation(block)})",
                )
            )
        if cgln:
            caches.append(CacheSpec(f"block{block}_cgln2", (2, 1), "float64", 0.0, sums))
    tail = config.kernel_size - config.stride
    if tail:
        caches.append(
            CacheSpec(
                "decoder_tail",
                (config.n_src, tail),
                "float32",
                0.0,
                "the overlap-add tail: the next L - S output samples so far",
            )
        )
    return tuple(caches)


def depthwise_taps(config: ConvTasNetConfig, block: int, frames: int):
    """(W, P + 1) int64: for output frame t, the rows of [past frames; the hop's W frames; ones]
    its taps read (t + p * dilation for tap p), then the ones row's (the bias)."""
    import torch

    dilation = config.dilation(block)
    past = (config.conv_kernel_size - 1) * dilation
    rows = [torch.arange(frames) + tap * dilation for tap in range(config.conv_kernel_size)]
    return torch.stack([*rows, torch.full((frames,), past + frames)], dim=1).to(torch.int64)


def macs_per_hop(config: ConvTasNetConfig, hop: int) -> int:
    """Multiply-accumulates of one hop: encoder, 1x1 convs, depthwise convs, mask head, mask
    multiply and decoder (norms, PReLUs and activations not counted)."""
    per_frame = config.n_filters * config.kernel_size + config.n_filters * config.bn_chan
    per_block = (
        config.bn_chan * config.hid_chan
        + config.hid_chan * config.conv_kernel_size
        + config.hid_chan * config.bn_chan
        + config.hid_chan * config.skip_chan
    )
    per_frame += config.n_tcn_blocks * per_block + config.mask_in_chan * config.n_src * config.n_filters
    per_frame += config.n_src * config.n_filters * (1 + config.kernel_size)
    return per_frame * (hop // config.stride)


# -- the graph ----------------------------------------------------------------------------------


def stateful_module(model, hop: int):
    """A torch module running ``model`` (a causal :class:`ConvTasNet`) one hop at a time.

    ``forward(samples (hop,) float32, valid_samples (1,) int64, *caches)`` -> ``(sources (n_src, hop),
    *next caches)``, the caches in :func:`cache_layout`'s order.
    """
    import torch

    config = model.config
    layout = cache_layout(config, hop)

    class StatefulStep(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model.eval()
            _add_constants(self, model, hop)

        def forward(self, samples, valid_samples, *caches):
            state = dict(zip((c.name for c in layout), caches, strict=True))
            step = _HopStep(self, state, valid_samples >= self.needed)
            sources = step.run(samples)
            return (sources, *(step.next[c.name] for c in layout))

    return StatefulStep()


def _add_constants(module, model, hop: int) -> None:
    """The graph's constants, laid out for products on frames as rows: the encoder's framing and
    filters, each depthwise conv's tap rows and weights, the 1x1 convs' biases with the residual
    convs' folded in, the skip convs side by side."""
    import torch

    config, frames = model.config, hop // model.config.stride
    module.register_buffer("offsets", torch.arange(frames, dtype=torch.float64), persistent=False)
    # frame j of the hop is complete in the real input when j*S + L - delay <= valid_samples
    needed = torch.arange(frames, dtype=torch.int64) * config.stride + config.kernel_size - stream_delay(config)
    module.register_buffer("needed", needed, persistent=False)
    # the encoder as one product: frame j is samples j*S .. j*S + L - 1 of the overlap and the hop
    starts = torch.arange(frames, dtype=torch.int64).view(-1, 1) * config.stride
    module.register_buffer("framing", starts + torch.arange(config.kernel_size), persistent=False)
    module.register_buffer("encoder_weight", model.encoder.filterbank._filters[:, 0, :].t().detach())
    # the residual stream runs without the residual convs' biases (each residual product adds onto
    # it, Gemm's C); the biases summed so far enter each block's input conv through its bias instead
    shift = torch.zeros(config.bn_chan, dtype=torch.float64)
    for index, block in enumerate(model.masker.TCN):
        layers = block.shared_block
        conv_in, conv = layers[0], layers[3][0]
        weight_in = conv_in.weight[:, :, 0].detach()
        bias_in = conv_in.bias.detach().double() + weight_in.double() @ shift
        module.register_buffer(f"in_bias{index}", bias_in.float())
        module.register_buffer(f"res_weight{index}", block.res_conv.weight[:, :, 0].t().detach().contiguous())
        shift = shift + block.res_conv.bias.detach().double()
        module.register_buffer(f"taps{index}", depthwise_taps(config, index, frames), persistent=False)
        taps = torch.cat([conv.weight[:, 0, :].t(), conv.bias.view(1, -1)]).detach()  # (P + 1, C): taps, bias
        module.register_buffer(f"depthwise{index}", taps.contiguous())
    module.register_buffer("residual_bias", shift.float())
    if config.skip_chan:  # the skip convs side by side: (skip, blocks * hid), and their biases summed
        skips = [block.skip_conv for block in model.masker.TCN]
        module.register_buffer("skip_weight", torch.cat([c.weight[:, :, 0] for c in skips], dim=1).detach())
        module.register_buffer("skip_bias", sum(c.bias for c in skips).detach())


class _HopStep:
    """One hop through the model: reads ``state`` (the caches by name), fills ``next``.

    Frames are rows here, (W, C): the 1x1 convs are matrix products and cLN normalizes the last
    axis, the pattern onnxruntime fuses into one LayerNormalization kernel; the graph then has a
    few nodes per block, which is what costs at a hop's few frames. Each norm keeps the reference's
    formula; the skip convs run as one product over the blocks' joined hidden frames (their sum
    accumulated inside it rather than block by block, a float32 rounding difference).
    """

    def __init__(self, module, state: dict, complete) -> None:
        import torch

        self.module, offsets = module, module.offsets
        self.model, self.config, self.state, self.next = module.model, module.model.config, state, {}
        index = state["frame_index"]
        self.next["frame_index"] = index + offsets.shape[0]
        self.positions = index + offsets  # (W,) float64, absolute frame indices
        self.valid = ((self.positions >= 0) & complete).to(torch.float32).view(-1, 1)  # (W, 1)
        self.ones = torch.ones(1, self.config.hid_chan)  # the depthwise convs' bias row

    def _history(self, name: str, new, size: int, dim: int = -1):
        """``new`` after the cache ``name``'s last ``size`` entries along ``dim``; the cache moves on."""
        import torch

        if not size:
            return new
        joined = torch.cat([self.state[name], new], dim=dim)  # the cache has the shape it joins with
        self.next[name] = joined.narrow(dim, joined.shape[dim] - size, size)
        return joined

    def _norm(self, norm, x, name: str):
        """(W, C) -> (W, C): cLN per frame; cgLN with the running sums of ``name``."""
        import torch

        from ..model.config import NORM_EPS

        if self.config.norm_type is NormType.CLN:
            centred = x - x.mean(dim=-1, keepdim=True)
            normed = centred / torch.sqrt(centred.pow(2).mean(dim=-1, keepdim=True) + NORM_EPS)
            return normed * norm.gamma + norm.beta
        chan = x.shape[-1]
        masked = x * self.valid
        sums = torch.stack([masked.sum(-1), masked.pow(2).sum(-1)]).to(torch.float64)  # (2, W)
        running = self.state[name] + torch.cumsum(sums, dim=-1)
        self.next[name] = running[:, -1:]
        count = (chan * torch.clamp(self.positions + 1, min=1)).to(torch.float32)
        mean = (running[0].to(torch.float32) / count).view(-1, 1)
        var = (running[1].to(torch.float32) / count).view(-1, 1) - mean.pow(2)
        return (x - mean) / (var + NORM_EPS).sqrt() * norm.gamma + norm.beta

    def _block(self, index: int, block, output):
        """(W, bn) residual stream (less the residual biases so far) -> the block's hidden frames
        (W, hid), the input of its residual and skip convs."""
        import torch.nn.functional as F

        layers, module = block.shared_block, self.module
        hidden = F.linear(output, layers[0].weight[:, :, 0], getattr(module, f"in_bias{index}"))
        hidden = self._norm(layers[2], _prelu(layers[1], hidden), f"block{index}_cgln1")
        hidden = self._depthwise(index, layers[3][0], hidden * self.valid)  # its Chop is the cache's job here
        return self._norm(layers[5], _prelu(layers[4], hidden), f"block{index}_cgln2")

    def _depthwise(self, index: int, conv, hidden):
        """The dilated causal depthwise conv on frames as rows, (W, C) -> (W, C): the cache's past
        frames, the hop's and a row of ones joined; for each output frame its taps' rows gathered
        (W, P + 1, C; the ones row for the bias), weighted and summed over the taps."""
        import torch

        past = (self.config.conv_kernel_size - 1) * conv.dilation[0]
        parts = [self.state[f"block{index}_depthwise"], hidden, self.ones] if past else [hidden, self.ones]
        joined = torch.cat(parts)
        if past:
            self.next[f"block{index}_depthwise"] = joined[-past - 1 : -1]
        gathered = joined[getattr(self.module, f"taps{index}")]  # (W, P + 1, C)
        return (gathered * getattr(self.module, f"depthwise{index}")).sum(1)

    def run(self, samples):
        """(hop,) -> (n_src, hop): the hop's output samples, final (the overlap-add tail kept)."""
        import torch
        import torch.nn.functional as F

        from ..model.convtasnet import mask_activation

        config, model = self.config, self.model
        wav = self._history("encoder_overlap", samples.view(1, 1, -1), stream_delay(config)).view(-1)
        tf_rep = torch.matmul(wav[self.module.framing], self.module.encoder_weight)  # (W, L) @ (L, N)
        if config.encoder_activation is EncoderActivation.RELU:
            tf_rep = torch.relu(tf_rep)
        tf_rep = tf_rep * self.valid  # (W, N); masked frames do not exist
        masker = model.masker
        output = _pointwise(masker.bottleneck[1], self._norm(masker.bottleneck[0], tf_rep, "bottleneck_cgln"))
        hiddens, module = [], self.module
        for index, block in enumerate(masker.TCN):
            hiddens.append(self._block(index, block, output))
            if index + 1 < len(masker.TCN) or not config.skip_chan:  # with skips the last residual is unused
                output = torch.addmm(output, hiddens[-1], getattr(module, f"res_weight{index}"))
        if config.skip_chan:  # every block's skip conv at once: one product over the joined hidden frames
            output = F.linear(torch.cat(hiddens, dim=-1), module.skip_weight, module.skip_bias)
        else:
            output = output + module.residual_bias
        score = _pointwise(masker.mask_net[1], _prelu(masker.mask_net[0], output))
        masks = mask_activation(score.view(-1, config.n_src, config.n_filters), config.mask_act)  # (W, n_src, N)
        return self._decode((masks * tf_rep.unsqueeze(1)).permute(1, 2, 0))

    def _decode(self, spec):
        """(n_src, N, W) masked frames -> (n_src, hop) final samples; the tail goes to the cache."""
        import torch
        import torch.nn.functional as F

        decoder = self.model.decoder.filterbank
        wav = F.conv_transpose1d(spec, decoder._filters, stride=decoder.stride)[:, 0]  # (n_src, hop + L - S)
        tail = self.config.kernel_size - self.config.stride
        hop = wav.shape[-1] - tail
        if tail:
            wav = torch.cat([wav[:, :tail] + self.state["decoder_tail"], wav[:, tail:]], dim=-1)
            self.next["decoder_tail"] = wav[:, hop:]
        return wav[:, :hop]


def _prelu(prelu, x):
    """Asteroid's PReLU has one slope: LeakyRelu with it (the same values; one kernel without the
    broadcast PRelu takes); a per-channel PReLU stays itself."""
    import torch.nn.functional as F

    if prelu.weight.numel() == 1:
        return F.leaky_relu(x, float(prelu.weight.detach()[0]))
    return prelu(x)


def _pointwise(conv, x):
    """A 1x1 Conv1d on frames as rows: (W, C_in) -> (W, C_out), one matrix product plus bias."""
    import torch.nn.functional as F

    return F.linear(x, conv.weight[:, :, 0], conv.bias)


def initial_caches(layout: tuple[CacheSpec, ...]) -> list:
    """Each cache's start value as a numpy array, in ``layout``'s order."""
    import numpy as np

    return [np.full(c.shape, c.initial, dtype=c.dtype) for c in layout]


def export_stateful(model, hop: int, out_dir: str | Path) -> StatefulRecord:
    """Writes ``model``'s stateful graph for hops of ``hop`` samples to ``out_dir`` (one ONNX file,
    static shapes, the exporter's opset) and its record beside it (``stateful.json``); returns the record."""
    import hashlib
    import io
    import warnings

    import onnx
    import torch

    from ..files import write_bytes_atomically, write_text_atomically
    from .onnx_graph import OPSET

    config = model.config
    layout = cache_layout(config, hop)
    module = stateful_module(model, hop)
    example = (
        torch.zeros(hop),
        torch.full((1,), hop, dtype=torch.int64),
        *(torch.from_numpy(a) for a in initial_caches(layout)),
    )
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about Python scalars; every shape is fixed
        torch.onnx.export(
            module,
            example,
            buffer,
            opset_version=OPSET,
            dynamo=False,
            input_names=[SAMPLES_INPUT, VALID_INPUT, *(c.name for c in layout)],
            output_names=[SOURCES_OUTPUT, *(c.next_name for c in layout)],
        )
    data = onnx.load_from_string(buffer.getvalue()).SerializeToString(deterministic=True)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    file = stateful_file_name(hop)
    write_bytes_atomically(out_dir / file, data)
    record = StatefulRecord(
        file,
        hashlib.sha256(data).hexdigest(),
        hop,
        config.sample_rate,
        config.n_src,
        stream_delay(config),
        OPSET,
        macs_per_hop(config, hop),
        layout,
    )
    write_text_atomically(out_dir / RECORD_NAME, json.dumps(record.to_json(), indent=1) + "\n")
    return record


def stateful_file_name(hop: int) -> str:
    """The graph's file name for hops of ``hop`` samples."""
    return f"convtasnet_stateful_hop{hop}.onnx"


def read_stateful(directory: str | Path) -> tuple[Path, StatefulRecord]:
    """The ONNX file and record ``export_stateful`` wrote to ``directory``, the file's sha256 checked."""
    directory = Path(directory)
    record = StatefulRecord.from_json(
        read_json(directory / RECORD_NAME, "stateful-graph record", "re-export with `export --stateful`")
    )
    return stateful_file(directory, record), record


def stateful_file(directory: str | Path, record: StatefulRecord) -> Path:
    """The graph file ``record`` names inside ``directory`` (never outside it), its sha256 checked;
    for a record carried by another file (a manifest) as well as ``stateful.json``."""
    from ..files import sha256_file

    try:
        path = inside(Path(directory), record.onnx_file, "the stateful graph's file")
    except RecordError as exc:
        raise UserError(f"{directory}: {exc}; re-export with `export --stateful`") from None
    if not path.is_file() or sha256_file(path) != record.sha256:
        raise UserError(
            f"{path} is missing or not the file its record names (sha256 differs); re-export with `export --stateful`"
        )
    return path
