"""The stateful streaming graph: one ONNX per causal model that runs one hop and returns its caches.

Inputs: ``samples`` (hop,) float32, the hop's audio; ``valid_samples`` (1,) int64, how many of
them are real (the hop, or fewer at a zero-padded last partial hop); and one tensor per piece of
history (:class:`CacheSpec`). Outputs: ``sources`` (n_src, hop) float32 and each cache's next value
(``<name>_next``), to be fed back at the next hop. Every cache starts at its ``initial`` value.
Each dilated depthwise conv's past is a ring of whole hops instead (:class:`RingSpec`): the graph
outputs the hop's (W, C) input frames of the conv and reads, as ``<name>_lag<j>``, what it output
j hops before, for each lag its taps reach (zeros before the stream); a driver keeps the last
``length`` outputs, so the graph neither copies nor slices a cache of rows.

Alignment: the encoder keeps ``delay`` = ceil(L/S)*S - S past samples, so hop k (from 0) makes
encoder frames k*W - delay/S .. k*W - delay/S + W - 1 (W = hop/S) and emits output samples
k*hop - delay .. (k+1)*hop - delay - 1. Frames before the stream's start (the first hops') and
frames past the real input (a partial last hop) are masked: they enter no dilated conv (the
reference's zero padding), no cgLN sum and no overlap-add, so every emitted sample with an index
>= 0 is the offline model's. The driver drops the first ``delay`` samples, and at the end appends
``decoder_tail_next`` (the overlap-add tail) and trims to the input's length (Asteroid's pad_x_to_y).

The steady graph (``steady_file``, optional in a record): the same hop for a whole hop whose frames
all lie inside the stream, i.e. every hop but the first and a partial last one (``frame_index``
>= 0 and ``valid_samples`` = hop). It computes no mask and takes no ``valid_samples``; its caches
are the graph's, so a driver may switch between the two at any such hop. At a hop's few frames a
graph's node count is what costs: the masks are some twenty of its nodes (docs/streaming.md).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..model.config import ConvTasNetConfig, NormType
from ..records import SHA256_HEX, RecordError, field, inside, items, read_json
from .stateful_graph import depthwise_lags

#: The record's format name and version (``StatefulRecord.to_json``).
RECORD_FORMAT = "convtasnet-hailo stateful graph"
RECORD_VERSION = 2
#: Versions this toolkit reads: 1 kept each depthwise conv's past as a cache (no rings).
READ_VERSIONS = (1, 2)
#: The record's file name beside the ONNX when written as a folder (:func:`write_stateful`).
RECORD_NAME = "stateful.json"
SAMPLES_INPUT, VALID_INPUT, SOURCES_OUTPUT = "samples", "valid_samples", "sources"
NEXT_SUFFIX = "_next"
LAG_INFIX = "_lag"
DTYPES = ("float32", "float64")
#: The longest ring a record may ask a driver to keep, in hops.
MAX_RING = 4096


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
class RingSpec:
    """A dilated depthwise conv's past input frames, kept by the driver as whole hops: output
    ``name`` is the hop's (W, C) frames; input ``name + '_lag<j>'`` for each ``lags`` j is the
    output of j hops before (zeros before the stream). The driver keeps the last ``length``
    outputs (a power of two above every lag, so the bindings of ``length`` hops repeat)."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    lags: tuple[int, ...]
    length: int
    holds: str

    def lag_name(self, lag: int) -> str:
        return f"{self.name}{LAG_INFIX}{lag}"


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
    #: the steady graph (no masks; whole hops inside the stream) and its sha256, or None
    steady_file: str | None = None
    steady_sha256: str | None = None
    #: the depthwise convs' past frames as rings of hops (inputs after the caches', outputs too)
    rings: tuple[RingSpec, ...] = ()

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
            **({"steady_file": self.steady_file, "steady_sha256": self.steady_sha256} if self.steady_file else {}),
            "rings": [dict(dataclasses.asdict(r), shape=list(r.shape), lags=list(r.lags)) for r in self.rings],
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
    name, where = _named(data, where, "cache")
    shape = tuple(items(field(data, "shape", list, where), int, f"{where}.shape"))
    if not shape or any(d < 1 for d in shape):
        raise RecordError(f"{where}.shape {list(shape)} is not a shape of positive sizes")
    dtype = field(data, "dtype", str, where)
    if dtype not in DTYPES:
        raise RecordError(f"{where}.dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    return CacheSpec(
        name, shape, dtype, float(field(data, "initial", float, where)), field(data, "holds", str, where, "")
    )


def _named(data: Any, where: str, kind: str) -> tuple[str, str]:
    """A cache's or ring's name (an identifier) and how errors about it name it."""
    name = field(data, "name", str, where)
    if not name.isidentifier():
        raise RecordError(f"{kind} {name!r}: the name is not an identifier")
    return name, f"{kind} {name!r}"


def _ring(data: Any, where: str) -> RingSpec:
    name, where = _named(data, where, "ring")
    shape = tuple(items(field(data, "shape", list, where), int, f"{where}.shape"))
    lags = tuple(items(field(data, "lags", list, where), int, f"{where}.lags"))
    length = field(data, "length", int, where)
    if len(shape) != 2 or min(shape) < 1 or field(data, "dtype", str, where) != "float32":
        raise RecordError(f"{where}: shape {list(shape)} and dtype must be (frames, channels) float32")
    if not lags or list(lags) != sorted(set(lags)) or lags[0] < 1 or not lags[-1] < length <= MAX_RING:
        raise RecordError(f"{where}: lags {list(lags)} must rise from 1 and stay below length {length} (<= {MAX_RING})")
    if length & (length - 1):
        raise RecordError(f"{where}: length {length} is not a power of two")
    return RingSpec(name, shape, "float32", lags, length, field(data, "holds", str, where, ""))


def _record(data: Any) -> StatefulRecord:
    if field(data, "format", str, "the record") != RECORD_FORMAT:
        raise RecordError(f"format is {data.get('format')!r}, not {RECORD_FORMAT!r}")
    if field(data, "format_version", int, "the record") not in READ_VERSIONS:
        raise RecordError(f"format_version {data['format_version']} (this toolkit reads {READ_VERSIONS})")
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
    rings = tuple(_ring(r, f"rings[{i}]") for i, r in enumerate(field(data, "rings", list, "the record", [])))
    names = [c.name for c in caches] + [c.next_name for c in caches]
    names += [r.name for r in rings] + [r.lag_name(j) for r in rings for j in r.lags]
    if len(set(names)) != len(names) or {SAMPLES_INPUT, VALID_INPUT, SOURCES_OUTPUT} & set(names):
        raise RecordError("cache names repeat or take an input's or output's name")
    digest = field(data, "sha256", str, "the record")
    steady = field(data, "steady_file", (str, type(None)), "the record", None) or None
    steady_digest = field(data, "steady_sha256", (str, type(None)), "the record", None) if steady else None
    for key, value in [("sha256", digest)] + ([("steady_sha256", steady_digest)] if steady else []):
        if not SHA256_HEX.fullmatch(value or ""):
            raise RecordError(f"{key} {str(value)[:20]!r} is not a sha256 (64 hex digits)")
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
        steady,
        steady_digest,
        rings,
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


def ring_layout(config: ConvTasNetConfig, hop: int) -> tuple[RingSpec, ...]:
    """The depthwise convs' rings of ``config``'s stateful graph at ``hop``, block by block."""
    frames, rings = hop // config.stride, []
    for block in range(config.n_tcn_blocks):
        lags = tuple(sorted({j for j, _ in depthwise_lags(config, block, frames) if j}))
        if lags:
            rings.append(
                RingSpec(
                    f"block{block}_frames",
                    (frames, config.hid_chan),
                    "float32",
                    lags,
                    1 << lags[-1].bit_length(),  # the power of two above the longest lag
                    f"the depthwise conv's input frames of the hop (dilation {config.dilation(block)})",
                )
            )
    return tuple(rings)


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


def initial_caches(layout: tuple[CacheSpec, ...]) -> list:
    """Each cache's start value as a numpy array, in ``layout``'s order."""
    import numpy as np

    return [np.full(c.shape, c.initial, dtype=c.dtype) for c in layout]


def input_names(layout: tuple[CacheSpec, ...], rings: tuple[RingSpec, ...]) -> list[str]:
    """The graph's inputs in order (the steady graph's lack ``valid_samples``)."""
    return [SAMPLES_INPUT, VALID_INPUT, *(c.name for c in layout), *(r.lag_name(j) for r in rings for j in r.lags)]


def output_names(layout: tuple[CacheSpec, ...], rings: tuple[RingSpec, ...]) -> list[str]:
    return [SOURCES_OUTPUT, *(c.next_name for c in layout), *(r.name for r in rings)]


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
    from .stateful_graph import stateful_module

    config = model.config
    layout, rings = cache_layout(config, hop), ring_layout(config, hop)
    example = (
        torch.zeros(hop),
        torch.full((1,), hop, dtype=torch.int64),
        *(torch.from_numpy(a) for a in initial_caches(layout)),
        *(torch.zeros(r.shape) for r in rings for _ in r.lags),
    )
    graphs = {}
    for steady in (False, True):  # the steady graph's unused valid_samples is left out by the exporter
        module = stateful_module(model, hop, layout, rings, stream_delay(config), steady)
        buffer = io.BytesIO()
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer warnings about Python scalars; every shape is fixed
            torch.onnx.export(
                module,
                example,
                buffer,
                opset_version=OPSET,
                dynamo=False,
                input_names=input_names(layout, rings),
                output_names=output_names(layout, rings),
            )
        graphs[steady] = onnx.load_from_string(buffer.getvalue()).SerializeToString(deterministic=True)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    file, steady_file = stateful_file_name(hop), stateful_file_name(hop, steady=True)
    write_bytes_atomically(out_dir / file, graphs[False])
    write_bytes_atomically(out_dir / steady_file, graphs[True])
    record = StatefulRecord(
        file,
        hashlib.sha256(graphs[False]).hexdigest(),
        hop,
        config.sample_rate,
        config.n_src,
        stream_delay(config),
        OPSET,
        macs_per_hop(config, hop),
        layout,
        steady_file,
        hashlib.sha256(graphs[True]).hexdigest(),
        rings,
    )
    write_text_atomically(out_dir / RECORD_NAME, json.dumps(record.to_json(), indent=1) + "\n")
    return record


def stateful_file_name(hop: int, steady: bool = False) -> str:
    """The graph's file name for hops of ``hop`` samples (``steady``: the steady graph's)."""
    return f"convtasnet_stateful_hop{hop}{'_steady' if steady else ''}.onnx"


def read_stateful(directory: str | Path) -> tuple[Path, StatefulRecord]:
    """The ONNX file and record ``export_stateful`` wrote to ``directory``, the file's sha256 checked."""
    directory = Path(directory)
    record = StatefulRecord.from_json(
        read_json(directory / RECORD_NAME, "stateful-graph record", "re-export with `export --stateful`")
    )
    return stateful_file(directory, record), record


def stateful_file(directory: str | Path, record: StatefulRecord, steady: bool = False) -> Path:
    """The graph file ``record`` names inside ``directory`` (never outside it), its sha256 checked;
    for a record carried by another file (a manifest) as well as ``stateful.json``. ``steady``: the
    steady graph's (the record must name one)."""
    from ..files import sha256_file

    name, digest = (record.steady_file, record.steady_sha256) if steady else (record.onnx_file, record.sha256)
    try:
        path = inside(Path(directory), name, "the stateful graph's file")
    except RecordError as exc:
        raise UserError(f"{directory}: {exc}; re-export with `export --stateful`") from None
    if not path.is_file() or sha256_file(path) != digest:
        raise UserError(
            f"{path} is missing or not the file its record names (sha256 differs); re-export with `export --stateful`"
        )
    return path
