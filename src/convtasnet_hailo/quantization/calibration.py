"""Calibration data from real stitched tiles: the exact tensors each stage sees at run time.

The plan runs over the given audio through ``torch_proxy``; of every stage input's tiles a
seeded uniform sample of ``count`` is kept as they stream past (in scratch files beside the
output: memory is one batch of tiles, however many inputs, tiles or audio), converted to NHWC
float32 (the layout the DFC calibrates with: ONNX [N, C, 1, W] -> [N, 1, W, C]) and saved as
``<tensor>.npy``. A tensor read by several stages (channel blocks) is stored once. Needs torch: runs in the main
environment; the SDK side only loads the .npy files.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from ..files import write_text_atomically, written_atomically
from ..hailo.layout import nchw_to_nhwc
from ..plan.stage_plan import StagePlan
from ..plan.stages import Stage
from ..progress import Progress
from ..records import RecordError, field, inside
from ..runtime.engine import open_backend_named, stitched_executor, window_executor

log = logging.getLogger(__name__)

INDEX_NAME = "calibration.json"
#: The seed of the tile draw: fixed, so `compile` and `noise` calibrate on the same tiles.
SEED = 0


def _tile_keys(first: int, n: int) -> np.ndarray:
    """Seeded pseudo-random keys of tiles ``first .. first + n - 1`` (splitmix64 of SEED and the
    position): the same on every machine, and the same for two inputs at the same position."""
    with np.errstate(over="ignore"):
        z = np.arange(first, first + n, dtype=np.uint64) + np.uint64(SEED + 1) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


class _TileSample:
    """A uniform sample of ``count`` tiles without replacement, kept while they stream past: the
    ``count`` smallest keys (bottom-k). The tiles themselves wait in ``count`` fixed-size slots of a
    scratch file, not in memory: memory is the keys and one batch, whatever the count or the audio."""

    def __init__(self, count: int, scratch: Path) -> None:
        self.count, self.seen, self.scratch = count, 0, scratch
        self.keys = np.empty(0, np.uint64)
        self.positions = np.empty(0, np.int64)
        self.slots = np.empty(0, np.int64)
        self.tile_shape: tuple[int, ...] | None = None
        self.dtype: np.dtype | None = None
        self._handle = None

    def add(self, batch: np.ndarray) -> None:
        if self._handle is None:
            self.tile_shape, self.dtype = tuple(batch.shape[1:]), batch.dtype
            self._handle = open(self.scratch, "w+b")
        keys = np.concatenate([self.keys, _tile_keys(self.seen, len(batch))])
        positions = np.concatenate([self.positions, np.arange(self.seen, self.seen + len(batch))])
        self.seen += len(batch)
        old = len(self.keys)
        keep = np.arange(len(keys)) if len(keys) <= self.count else np.argpartition(keys, self.count - 1)[: self.count]
        kept_old = keep[keep < old]
        free = sorted(set(range(self.count if len(keys) > self.count else len(keys))) - set(self.slots[kept_old]))
        slots = np.empty(len(keep), np.int64)
        slots[keep < old] = self.slots[kept_old]
        slots[keep >= old] = free[: int(np.count_nonzero(keep >= old))]
        for index, slot in zip(keep[keep >= old], slots[keep >= old], strict=True):
            self._write_slot(int(slot), batch[index - old])
        self.keys, self.positions, self.slots = keys[keep], positions[keep], slots

    def _write_slot(self, slot: int, tile: np.ndarray) -> None:
        data = np.ascontiguousarray(tile, self.dtype).tobytes()
        self._handle.seek(slot * len(data))
        self._handle.write(data)

    def _ordered_slots(self) -> np.ndarray:
        return self.slots[np.argsort(self.positions)]

    def _read(self, slots: np.ndarray) -> np.ndarray:
        size = int(np.prod(self.tile_shape)) * self.dtype.itemsize
        self._handle.flush()
        tiles = np.empty((len(slots), *self.tile_shape), self.dtype)
        for k, slot in enumerate(slots):
            self._handle.seek(int(slot) * size)
            tiles[k] = np.frombuffer(self._handle.read(size), self.dtype).reshape(self.tile_shape)
        return tiles

    def drawn(self) -> np.ndarray:
        """The sample (``min(count, seen)`` tiles), in the order the tiles came (all in memory:
        :meth:`write` streams it instead)."""
        return self._read(self._ordered_slots())

    def write(self, path: Path, chunk: int = 64) -> Path:
        """The sample, in the order the tiles came, saved NHWC at ``path`` (``np.save``'s format),
        ``chunk`` tiles in memory at a time; the scratch file is removed."""
        # Tiles at the same position get the same key, so a stage's inputs stay paired: the DFC,
        # like the emulator, feeds input k of each file together.
        ordered = self._ordered_slots()
        n, _, height, width = (len(ordered), *self.tile_shape)
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False}
        header["shape"] = (n, height, width, self.tile_shape[0])
        with written_atomically(path) as temporary, open(temporary, "wb") as handle:
            np.lib.format.write_array_header_1_0(handle, header)
            for first in range(0, n, chunk):
                handle.write(nchw_to_nhwc(self._read(ordered[first : first + chunk])).tobytes())
        self.close()
        return path

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        self.scratch.unlink(missing_ok=True)


class _RecordingBackend:
    """Wraps a backend and keeps a bounded sample of the tiles each stage input receives (their
    scratch files in ``scratch``)."""

    name = "recording"

    def __init__(self, inner, recorded_by: dict[str, str], count: int, scratch: Path):
        self.inner = inner
        self.recorded_by = recorded_by  # tensor -> the one stage whose runs record it
        self.count, self.scratch = count, scratch
        self.samples: dict[str, _TileSample] = {}

    def prepare(self, plan, tile_w):
        self.inner.prepare(plan, tile_w)

    def run_stage(self, stage: Stage, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        for name, batch in inputs.items():
            if self.recorded_by.get(name) == stage.name:  # written out: the executor reuses input buffers
                if name not in self.samples:
                    self.samples[name] = _TileSample(self.count, self.scratch / f".{name}.slots")
                self.samples[name].add(batch)
        return self.inner.run_stage(stage, inputs)


def _record_windows(plan: StagePlan, recorder: _RecordingBackend, audio: list[np.ndarray]) -> None:
    """Each recording streamed hop by hop through the window executor (one window per span and hop)."""
    hop = plan.options.rf_hop_frames * plan.config.stride
    progress = Progress(log, "calibration", len(audio), "recordings")
    for wav in audio:
        executor = window_executor(plan, recorder, hop)
        wav = np.asarray(wav, np.float32)
        whole = len(wav) // hop * hop
        for first in range(0, whole, hop):
            executor.push(wav[first : first + hop])
        executor.finish(wav[whole:])
        progress.step()
    progress.finish()


def fingerprint(audio: list[np.ndarray], count: int, tile_w: int, seed: int, plan: StagePlan) -> str:
    digest = hashlib.sha256(f"bottomk:{count}:{tile_w}:{seed}:{plan.options.block_chan}:{plan.path.value}".encode())
    for wav in audio:
        digest.update(np.ascontiguousarray(wav, np.float32).tobytes())
    return digest.hexdigest()


def _reusable(index_path: Path, key: str, wanted: set[str]) -> dict[str, Path] | None:
    """The files of an earlier calibration of the same fingerprint, or None (none, another one, or
    an index that is not one: it is rebuilt). Names are read only inside the folder."""
    if not index_path.is_file():
        return None
    try:
        index = json.loads(index_path.read_text())
        files = {
            name: inside(index_path.parent, file, "calibration file")
            for name, file in field(index, "files", dict, "calibration.json").items()
        }
    except (ValueError, RecordError):  # UnicodeDecodeError is a ValueError
        return None
    if index.get("fingerprint") == key and wanted <= set(files) and all(p.is_file() for p in files.values()):
        return files
    return None


def make_calibration(
    plan: StagePlan,
    tile_w: int,
    audio: list[np.ndarray],
    out_dir: Path,
    count: int = 64,
    tensors: set[str] | None = None,
) -> dict[str, Path]:
    """Writes ``<tensor>.npy`` for every stage input of ``plan`` (a full-chain plan: the decoder
    and masker paths' stages are among its stages) and returns tensor -> file. ``tensors``
    limits it to the inputs of the stages that will be compiled.

    Reuses an existing folder made from the same audio, count, tile width and plan."""
    from ..plan.options import PlanPath

    if plan.path is not PlanPath.FULL_CHAIN:
        raise ValueError("calibration runs the full-chain plan (it holds every path's stages)")

    out_dir.mkdir(parents=True, exist_ok=True)
    key = fingerprint(audio, count, tile_w, SEED, plan)
    wanted = tensors if tensors is not None else {port.name for stage in plan.stages for port in stage.inputs}
    index_path = out_dir / INDEX_NAME
    files = _reusable(index_path, key, wanted)
    if files is not None:
        return files
    samples = _record_tiles(plan, tile_w, audio, wanted, count, out_dir)
    try:
        available = min((sample.seen for sample in samples.values()), default=0)
        if available < count:
            log.warning(
                f"calibration: the audio gives {available} tile(s) per input at tile_w {tile_w}, fewer than "
                f"--calib-count {count}; pass more --calib audio for a better quantization"
            )
        files = {name: sample.write(out_dir / f"{name}.npy") for name, sample in samples.items()}
    finally:
        for sample in samples.values():
            sample.close()
    write_text_atomically(
        index_path,
        json.dumps(
            {
                "fingerprint": key,
                "count": count,
                "tile_w": tile_w,
                "seed": SEED,
                "files": {n: p.name for n, p in files.items()},
            },
            indent=1,
        ),
    )
    return files


def _record_tiles(
    plan: StagePlan, tile_w: int, audio: list[np.ndarray], wanted: set[str], count: int, scratch: Path
) -> dict[str, _TileSample]:
    """A sample of ``count`` of the tiles each ``wanted`` stage input receives while torch_proxy
    runs ``plan`` over the audio (waiting in scratch files in ``scratch``)."""
    # A tensor that several stages read (the encoder output, channel blocks) is recorded from the
    # first of them only: every tensor then sees each tile position once, in the same order, so
    # position k of one input file belongs with position k of the others.
    recorded_by: dict[str, str] = {}
    for stage in plan.stages:
        for port in stage.inputs:
            if port.name in wanted:
                recorded_by.setdefault(port.name, stage.name)
    recorder = _RecordingBackend(open_backend_named("torch_proxy"), recorded_by, count, scratch)
    if plan.rf_window:  # receptive-field spans see the windows a stream gives them
        _record_windows(plan, recorder, audio)
    else:
        executor = stitched_executor(plan, recorder, tile_w)
        progress = Progress(log, "calibration", len(audio), "recordings")
        for wav in audio:
            executor.run({"wav": np.asarray(wav, np.float32)[None, None]})
            progress.step()
        progress.finish()
    return recorder.samples
