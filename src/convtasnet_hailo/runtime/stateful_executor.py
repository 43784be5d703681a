"""Runs the stateful streaming graph (``export/stateful.py``) on onnxruntime, hop by hop.

One session, one call per hop: the hop's samples and every cache go in, the hop's final output
samples and the next caches come out. Every input and output is bound once to a numpy array
(onnxruntime's IO binding), the caches in two sets that the calls take turns reading and
writing, so a call neither allocates nor copies a cache (with ``session.run`` the feeds and
fetches of some thirty tensors cost about 40 us a call on this machine). The interface is the per-hop
executor's (``push`` / ``finish`` / ``delay`` / ``hop``), so ``stream_file`` drives either.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..export.stateful import (
    SAMPLES_INPUT,
    SOURCES_OUTPUT,
    VALID_INPUT,
    StatefulRecord,
    initial_caches,
    read_stateful,
    stateful_file,
)
from ..model.config import ConvTasNetConfig

log = logging.getLogger(__name__)

_ORT_TYPES = {"float32": "tensor(float)", "float64": "tensor(double)"}


def _expected_ports(record: StatefulRecord, steady: bool = False) -> tuple[dict, dict]:
    inputs = {SAMPLES_INPUT: ("tensor(float)", (record.hop,))}
    if not steady:
        inputs[VALID_INPUT] = ("tensor(int64)", (1,))
    outputs = {SOURCES_OUTPUT: ("tensor(float)", (record.n_src, record.hop))}
    for cache in record.caches:
        inputs[cache.name] = outputs[cache.next_name] = (_ORT_TYPES[cache.dtype], tuple(cache.shape))
    for ring in record.rings:
        for lag in ring.lags:
            inputs[ring.lag_name(lag)] = ("tensor(float)", tuple(ring.shape))
        outputs[ring.name] = ("tensor(float)", tuple(ring.shape))
    return inputs, outputs


def check_session(session, record: StatefulRecord, path: Path, steady: bool = False) -> None:
    """The graph's inputs and outputs are exactly the record's: names, order, types and shapes
    (``steady``: the steady graph's, without ``valid_samples``)."""
    want_in, want_out = _expected_ports(record, steady)
    have_in = {p.name: (p.type, tuple(p.shape)) for p in session.get_inputs()}
    have_out = {p.name: (p.type, tuple(p.shape)) for p in session.get_outputs()}
    for what, want, have in (("inputs", want_in, have_in), ("outputs", want_out, have_out)):
        if list(want.items()) != list(have.items()):
            wrong = sorted(set(want.items()) ^ set(have.items()), key=str)
            raise UserError(
                f"{path} does not match its record ({what} differ: {wrong[:3]}); re-export with `export --stateful`"
            )


def _optimized(graph: bytes, options) -> bytes:
    """``graph`` as onnxruntime optimizes it for this machine, serialized (its "offline mode"),
    for the session to load already fused: measured here, a hop of the demo model then takes 7 to
    9% less time than when the same fusions are made while loading (docs/benchmarks.md,
    "Streaming plans on this CPU"). The file lives in a private folder only while it is read."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="convtasnet-stateful-") as folder:
        path = Path(folder) / "optimized.onnx"
        options.optimized_model_filepath = str(path)
        try:
            ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        finally:
            options.optimized_model_filepath = ""
        return path.read_bytes()


class _Buffers:
    """The arrays a stateful graph's calls read and write: the hop's samples, the valid count, the
    sources, two sets of caches (each call reads one set and writes the other), every cache
    starting at its initial value, and each ring's ``length`` hops of frames (zeros: the frames
    before the stream). ``period`` hops later every call reads and writes the same arrays again;
    ``value`` wraps one as the OrtValue bound to it (kept here, as long as the bindings live)."""

    def __init__(self, record: StatefulRecord) -> None:
        self.samples = np.zeros(record.hop, np.float32)
        self.valid = np.array([record.hop], np.int64)
        self.sources = np.zeros((record.n_src, record.hop), np.float32)
        self.caches = (initial_caches(record.caches), initial_caches(record.caches))
        self.rings = [[np.zeros(r.shape, np.float32) for _ in range(r.length)] for r in record.rings]
        self.period = max([2, *(r.length for r in record.rings)])  # powers of two: each divides the longest
        self._values: dict[int, object] = {}

    def value(self, array: np.ndarray):
        import onnxruntime as ort

        if id(array) not in self._values:
            self._values[id(array)] = ort.OrtValue.ortvalue_from_numpy(array)
        return self._values[id(array)]


class StatefulExecutor:
    """Streams with the stateful graph ``onnx_path`` described by ``record``.

    ``push(samples)`` takes any whole number of hops (shape (k*hop,)) and returns the output samples
    that became final, shape (n_src, n); after the first ``delay`` samples every hop returns a
    whole hop. ``finish(samples)`` takes the last fewer-than-a-hop samples and returns the rest, so
    that everything returned is the offline model's output for the whole input (its length).
    Where the record names a steady graph, it runs every hop whose frames all lie inside the
    stream (all but the first and a partial last one), on the same caches.
    """

    def __init__(self, onnx_path: str | Path, record: StatefulRecord, threads: int = 1) -> None:
        import onnxruntime as ort

        from ..backends.onnxruntime_backend import session_options

        self.record, self.hop = record, record.hop
        options = session_options(threads)
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.session = self._session(Path(onnx_path), options)
        self.steady_session = None
        if record.steady_file:
            path = stateful_file(Path(onnx_path).parent, record, steady=True)
            self.steady_session = self._session(path, options, steady=True)
        log.debug(
            "stateful graph %s: hop %d, %d caches, %d thread(s), steady graph %s",
            onnx_path,
            record.hop,
            len(record.caches),
            threads,
            record.steady_file or "none",
        )
        self._buffers = _Buffers(record)
        self._bindings = [self._bind(self.session, hop, True) for hop in range(self._buffers.period)]
        steady = self.steady_session  # None: every hop runs the graph
        self._steady = [self._bind(steady, hop, False) for hop in range(self._buffers.period)] if steady else []
        self._frame_index = [c.name for c in record.caches].index("frame_index")
        self._turn = 0  # the next call's hop modulo the period: which bindings run it
        self.samples_in = 0
        self.samples_out = 0  # output samples returned (index of the next one)
        self.calls = 0
        self.steady_calls = 0  # of them, the steady graph's
        self._position = -record.delay  # index of the next sample the graph emits

    def _session(self, path: Path, options, steady: bool = False):
        import onnxruntime as ort

        # From bytes, not a path: onnxruntime then follows no external-data reference out of the folder.
        graph = _optimized(path.read_bytes(), options)
        session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        check_session(session, self.record, path, steady)
        return session

    def _bind(self, session, hop: int, valid: bool):
        """``session`` as it runs hop ``hop`` (modulo the period): reading the caches of set
        ``hop % 2`` and writing the next ones into the other set, reading each ring's entries of
        its lags' hops before and writing its own. Every input and output is bound to a numpy
        array of its own (an OrtValue on a CPU shares the array's memory), so a call allocates
        and copies nothing; taking turns of the period's bindings moves every cache and ring on.
        ``valid``: the graph takes ``valid_samples``."""
        binding, buffers = session.io_binding(), self._buffers
        current, following = hop % 2, 1 - hop % 2
        binding.bind_ortvalue_input(SAMPLES_INPUT, buffers.value(buffers.samples))
        if valid:
            binding.bind_ortvalue_input(VALID_INPUT, buffers.value(buffers.valid))
        binding.bind_ortvalue_output(SOURCES_OUTPUT, buffers.value(buffers.sources))
        for cache, now, after in zip(
            self.record.caches, buffers.caches[current], buffers.caches[following], strict=True
        ):
            binding.bind_ortvalue_input(cache.name, buffers.value(now))
            binding.bind_ortvalue_output(cache.next_name, buffers.value(after))
        for ring, entries in zip(self.record.rings, buffers.rings, strict=True):
            for lag in ring.lags:
                binding.bind_ortvalue_input(ring.lag_name(lag), buffers.value(entries[(hop - lag) % ring.length]))
            binding.bind_ortvalue_output(ring.name, buffers.value(entries[hop % ring.length]))
        return binding

    @property
    def caches(self) -> list[np.ndarray]:
        """Every cache's value now (after the last call), in the record's order: the graph's next input."""
        return self._buffers.caches[self._turn % 2]

    @classmethod
    def from_folder(cls, directory: str | Path, threads: int = 1) -> StatefulExecutor:
        """The graph ``export_stateful`` wrote to ``directory`` (its sha256 checked)."""
        path, record = read_stateful(directory)
        return cls(path, record, threads)

    @property
    def delay(self) -> int:
        """Samples by which the output lags the input (the encoder window's overlap in whole strides)."""
        return self.record.delay

    @property
    def n_src(self) -> int:
        return self.record.n_src

    def _step(self, block: np.ndarray, valid: int) -> np.ndarray:
        """One graph call on ``block`` (hop,) with ``valid`` real samples; returns the hop's
        (n_src, hop) samples (a copy: the buffer is the next call's), the caches moved on."""
        buffers = self._buffers
        buffers.samples[:] = block
        buffers.valid[0] = valid
        caches = buffers.caches[self._turn % 2]
        steady = valid == self.hop and caches[self._frame_index][0] >= 0  # every frame inside the stream
        if steady and self.steady_session is not None:
            self.steady_session.run_with_iobinding(self._steady[self._turn])
            self.steady_calls += 1
        else:
            self.session.run_with_iobinding(self._bindings[self._turn])
        self._turn = (self._turn + 1) % buffers.period
        self.calls += 1
        return buffers.sources.copy()

    def _keep(self, samples: np.ndarray) -> np.ndarray:
        """The part of freshly emitted ``samples`` (n_src, n) at output indices >= 0."""
        first = self._position
        self._position += samples.shape[-1]
        return samples[:, max(-first, 0) :] if first < 0 else samples

    def push(self, samples: np.ndarray) -> np.ndarray:
        samples = np.ascontiguousarray(np.asarray(samples, np.float32).reshape(-1))
        if samples.size % self.hop:
            raise UserError(f"push {samples.size} samples: a multiple of the hop ({self.hop}) is needed")
        if samples.size == self.hop:  # a live loop's every call: no list, no join
            self.samples_in += self.hop
            out = self._keep(self._step(samples, self.hop))
            self.samples_out += out.shape[-1]
            return out
        pieces = [self._keep(self._step(samples[i : i + self.hop], self.hop)) for i in range(0, samples.size, self.hop)]
        self.samples_in += samples.size
        out = np.concatenate(pieces, axis=-1) if pieces else np.zeros((self.n_src, 0), np.float32)
        self.samples_out += out.shape[-1]
        return out

    def finish(self, samples: np.ndarray | None = None) -> np.ndarray:
        """The end of the input: the last ``samples`` (fewer than a hop) as a zero-padded hop whose
        frames past the real input are masked, then the overlap-add tail, then zeros or a trim to
        the input's length (Asteroid's pad_x_to_y)."""
        last = np.zeros(0, np.float32) if samples is None else np.asarray(samples, np.float32).reshape(-1)
        if last.size >= self.hop:
            raise UserError(f"finish takes the last {last.size} samples: fewer than a hop ({self.hop}); push the rest")
        length = self.samples_in + last.size
        pieces = []
        if last.size:
            padded = np.zeros(self.hop, np.float32)
            padded[: last.size] = last
            pieces.append(self._keep(self._step(padded, last.size)))
        names = [c.name for c in self.record.caches]
        if "decoder_tail" in names:
            pieces.append(self._keep(self.caches[names.index("decoder_tail")].copy()))
        rest = np.concatenate(pieces, axis=-1) if pieces else np.zeros((self.n_src, 0), np.float32)
        out = np.zeros((self.n_src, max(length - self.samples_out, 0)), np.float32)
        keep = min(out.shape[-1], rest.shape[-1])
        out[:, :keep] = rest[:, :keep]
        self.samples_in, self.samples_out = length, self.samples_out + out.shape[-1]
        return out


@dataclasses.dataclass(frozen=True)
class ModelOnly:
    """What a caller reading ``executor.plan.config`` (the Python API's streaming separator) finds
    on a stateful stream: the model's config. The stateful graph runs no stage plan."""

    config: ConvTasNetConfig


class StatefulStream(StatefulExecutor):
    """The stateful executor as a streaming run drives it (``runtime.streaming.open_stream``):
    the model's ``config``, frames per hop (``tile_w``), graph calls (``stage_calls``), and the
    timing split the stitched streamers keep: no device time, so all of it is host time."""

    def __init__(self, onnx_path: str | Path, record: StatefulRecord, config: ConvTasNetConfig) -> None:
        if (config.sample_rate, config.n_src) != (record.sample_rate, record.n_src):
            raise UserError(
                f"{onnx_path}: the stateful graph is for {record.n_src} source(s) at {record.sample_rate} Hz, "
                f"the model has {config.n_src} at {config.sample_rate} Hz; re-export with `export --stateful`"
            )
        super().__init__(onnx_path, record, threads=1)
        self.config = config
        self.plan = ModelOnly(config)
        self.host_seconds: list[float] = []  # per hop, filled by the timing loop (stream.realtime)

    @property
    def tile_w(self) -> int:
        return self.hop // self.config.stride

    @property
    def stage_calls(self) -> int:
        return self.calls

    @property
    def device_seconds(self) -> float:
        """Seconds spent in device calls so far: none, the graph runs on the host."""
        return 0.0
