"""Calibration data from real stitched tiles: the exact tensors each stage sees at run time.

The plan runs over the given audio through ``torch_proxy``; every stage input's tiles are
recorded, ``count`` of them are drawn (seeded), converted to NHWC float32 (the layout the DFC
calibrates with: ONNX [N, C, 1, W] -> [N, 1, W, C]) and saved as ``<tensor>.npy``. A tensor
read by several stages (channel blocks) is stored once. Needs torch: runs in the main
environment; the SDK side only loads the .npy files.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from ..compile.layout import nchw_to_nhwc
from ..files import write_text_atomically, written_atomically
from ..plan.builder import StagePlan
from ..plan.stages import Stage
from ..records import RecordError, field, inside
from ..tiling.executor import StitchedExecutor
from ..tiling.window_executor import WindowStreamingExecutor

INDEX_NAME = "calibration.json"


class _RecordingBackend:
    """Wraps a backend and keeps every batch of tiles each stage input received."""

    name = "recording"

    def __init__(self, inner, inputs_of_interest: set[str]):
        self.inner = inner
        self.wanted = inputs_of_interest
        self.tiles: dict[str, list[np.ndarray]] = {}

    def prepare(self, plan, tile_w):
        self.inner.prepare(plan, tile_w)

    def run_stage(self, stage: Stage, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        for name, batch in inputs.items():
            if name in self.wanted:
                self.tiles.setdefault(name, []).append(batch.copy())  # the executor reuses input buffers
        return self.inner.run_stage(stage, inputs)


def _record_windows(plan: StagePlan, recorder: _RecordingBackend, audio: list[np.ndarray]) -> None:
    """Each recording streamed hop by hop through the window executor (one window per span and hop)."""
    hop = plan.rf_hop_frames * plan.config.stride
    for wav in audio:
        executor = WindowStreamingExecutor(plan, recorder, hop)
        wav = np.asarray(wav, np.float32)
        whole = len(wav) // hop * hop
        for first in range(0, whole, hop):
            executor.push(wav[first:first + hop])
        executor.finish(wav[whole:])


def fingerprint(audio: list[np.ndarray], count: int, tile_w: int, seed: int, plan: StagePlan) -> str:
    digest = hashlib.sha256(f"paired:{count}:{tile_w}:{seed}:{plan.block_chan}:{plan.path.value}".encode())
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
        files = {name: inside(index_path.parent, file, "calibration file")
                 for name, file in field(index, "files", dict, "calibration.json").items()}
    except (ValueError, RecordError):  # UnicodeDecodeError is a ValueError
        return None
    if index.get("fingerprint") == key and wanted <= set(files) and all(p.is_file() for p in files.values()):
        return files
    return None


def make_calibration(plan: StagePlan, tile_w: int, audio: list[np.ndarray], out_dir: Path, count: int = 64,
                     seed: int = 0, backend=None, tensors: set[str] | None = None,
                     report=print) -> dict[str, Path]:
    """Writes ``<tensor>.npy`` for every stage input of ``plan`` (a full-chain plan: the decoder
    and masker paths' stages are among its stages) and returns tensor -> file. ``tensors``
    limits it to the inputs of the stages that will be compiled.

    Reuses an existing folder made from the same audio, count, tile width and plan."""
    from ..backends import load_backend
    from ..plan.builder import PlanPath

    if plan.path is not PlanPath.FULL_CHAIN:
        raise ValueError("calibration runs the full-chain plan (it holds every path's stages)")

    out_dir.mkdir(parents=True, exist_ok=True)
    key = fingerprint(audio, count, tile_w, seed, plan)
    wanted = tensors if tensors is not None else {port.name for stage in plan.stages for port in stage.inputs}
    index_path = out_dir / INDEX_NAME
    files = _reusable(index_path, key, wanted)
    if files is not None:
        return files
    recorder = _RecordingBackend(backend or load_backend("torch_proxy"), wanted)
    if plan.rf_window:  # receptive-field spans see the windows a stream gives them
        _record_windows(plan, recorder, audio)
    else:
        executor = StitchedExecutor(plan, recorder, tile_w)
        for wav in audio:
            executor.run({"wav": np.asarray(wav, np.float32)[None, None]})
    files = {}
    available = min((sum(len(b) for b in batches) for batches in recorder.tiles.values()), default=0)
    if available < count:
        report(f"calibration: the audio gives {available} tile(s) per input at tile_w {tile_w}, fewer than "
               f"--calib-count {count}; pass more --calib audio for a better quantization")
    for name, batches in recorder.tiles.items():
        tiles = np.concatenate(batches)
        # The same draw for every tensor of the same tile count: a stage's inputs stay paired
        # (the DFC, like the emulator, feeds input k of each file together).
        chosen = np.sort(np.random.default_rng(seed).choice(len(tiles), size=min(count, len(tiles)), replace=False))
        files[name] = out_dir / f"{name}.npy"
        with written_atomically(files[name]) as temporary, open(temporary, "wb") as handle:
            np.save(handle, nchw_to_nhwc(tiles[chosen]))
    write_text_atomically(index_path, json.dumps({"fingerprint": key, "count": count, "tile_w": tile_w, "seed": seed,
                                      "files": {n: p.name for n, p in files.items()}}, indent=1))
    return files
