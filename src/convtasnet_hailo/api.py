"""The Python API: open a pipeline from a checkpoint or an export folder, separate arrays or
files, stream hops, run parity. What the command line does, as functions (examples/ uses them).

>>> from convtasnet_hailo import open_pipeline
>>> with open_pipeline(export_dir="export", backend="onnxruntime") as pipeline:   # doctest: +SKIP
...     sources = pipeline.separate_file("mixture.wav")                          # (n_src, T)

From an export folder without a checkpoint this needs neither torch nor onnx (the device side);
from a checkpoint it needs the [host] extra.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from .backends.setup import BackendOptions
from .errors import UserError
from .pipeline import Run, RunSpec, open_run
from .plan.options import PlanOptions

__all__ = ["Pipeline", "Streamer", "open_pipeline", "run_parity"]


class Streamer:
    """Hop-by-hop separation: ``push(hop samples)`` returns the output samples that became final,
    (n_src, n); ``finish(last samples)`` returns the rest, so that everything pushed comes back."""

    def __init__(self, run: Run, executor, scratch: Path | None = None) -> None:
        self._run, self._executor, self._scratch = run, executor, scratch
        self.hop = executor.hop  # samples per push
        self.delay = executor.delay  # samples the output lags the input (the encoder window's overlap)
        self.sample_rate = executor.plan.config.sample_rate

    def push(self, samples: np.ndarray) -> np.ndarray:
        return self._executor.push(np.asarray(samples, np.float32))

    def finish(self, samples: np.ndarray | None = None) -> np.ndarray:
        return self._executor.finish(samples)

    def close(self) -> None:
        """Frees the backend and removes the scratch folder the streamer's stages were exported to."""
        self._run.close()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def __enter__(self) -> "Streamer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Pipeline:
    """An open model on a backend: :func:`open_pipeline` makes one. Close it (or use ``with``)."""

    def __init__(self, run: Run) -> None:
        self._run = run

    @property
    def sample_rate(self) -> int:
        return self._run.plan.config.sample_rate

    @property
    def n_src(self) -> int:
        return self._run.plan.config.n_src

    @property
    def plan(self):
        """The stage plan it runs (``plan.stage_plan.StagePlan``)."""
        return self._run.plan

    def separate(self, wav: np.ndarray, rate: int | None = None) -> np.ndarray:
        """(T,) float samples at ``rate`` (default: the model's) -> (n_src, T') at the model's rate."""
        wav = np.asarray(wav, np.float32).reshape(-1)
        if rate is not None and rate != self.sample_rate:
            from .audio.io import resample

            wav = resample(wav, rate, self.sample_rate)
        if len(wav) < self._run.plan.config.kernel_size:
            raise UserError(f"{len(wav)} samples: fewer than one encoder window ({self._run.plan.config.kernel_size})")
        return self._run.separator()(wav)

    def separate_file(self, path: str | Path) -> np.ndarray:
        """A WAV/FLAC file (stereo downmixed, other rates resampled) -> (n_src, T) at the model's rate."""
        from .audio.io import load_audio

        return self.separate(load_audio(path, self.sample_rate).wav)

    def write_sources(self, sources: np.ndarray, out_dir: str | Path, stem: str, subtype: str = "FLOAT") -> list[Path]:
        """``out_dir/<stem>_s<i>.wav`` for each source (PCM scaled down together where it would clip)."""
        from .audio.io import pcm_safe_gain, save_audio

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        gain = pcm_safe_gain(sources, subtype)
        paths = [out_dir / f"{stem}_s{i}.wav" for i in range(1, len(sources) + 1)]
        for path, track in zip(paths, sources):
            save_audio(path, track * gain, self.sample_rate, subtype)
        return paths

    def close(self) -> None:
        self._run.close()

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _source(model: str | None, export_dir: str | Path | None):
    from .pipeline.sources import trained_or_exported

    return trained_or_exported(model, export_dir)


def open_pipeline(model: str | None = None, *, export_dir: str | Path | None = None, backend: str = "torch_proxy",
                  hef_dir: str | Path | None = None, tile_w: int = 128, options: PlanOptions = PlanOptions(),
                  hop_ms: float | None = None) -> Pipeline | Streamer:
    """A model ready to separate: ``model`` (an Asteroid checkpoint or hub id; default the shipped
    demo model), or, without it, the model an ``export_dir`` was made from (its plan, no torch).
    ``backend``: torch_proxy, onnxruntime (``export_dir``'s stages, or its own export), hailo_runtime
    or hailo_emulator (``hef_dir``). With ``hop_ms``, a :class:`Streamer` instead (causal models)."""
    source = _source(model, export_dir)
    backend_options = BackendOptions(backend, Path(export_dir) if export_dir and backend != "torch_proxy" else None,
                                     Path(hef_dir) if hef_dir else None)
    if hop_ms is not None:
        return _streamer(source, backend_options, hop_ms)
    return Pipeline(open_run(RunSpec(source=source, options=options, backend=backend_options, tile_w=tile_w),
                             report=lambda _: None))


def _streamer(source, backend: BackendOptions, hop_ms: float) -> Streamer:
    import tempfile

    from .plan.cost_model import DeviceModel
    from .stream.workflow import StreamRequest, open_streamer

    scratch = Path(tempfile.mkdtemp(prefix="convtasnet-stream-"))
    request = StreamRequest(source=source, out=scratch, hop_ms=hop_ms, backend=backend, device=DeviceModel())
    try:
        run, executor, _ = open_streamer(request, report=lambda _: None)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return Streamer(run, executor, scratch)


def run_parity(model: str | None = None, *, path: str = "full-chain", backend: str = "torch_proxy",
               tile_widths: tuple[int, ...] | None = None, seconds: tuple[float, ...] | None = None,
               runs_dir: str | Path = "module_runs", random_preset: str = "tiny", seed: int = 0) -> bool:
    """The stitched path against the reference model, stage by stage (`parity`); True when every
    case is within the contract. Without ``model``, seeded random weights of ``random_preset``."""
    from .model.source import model_or_random
    from .parity.workflow import ParityRequest, run_parity_command
    from .plan.options import PlanPath

    request = ParityRequest(PlanPath(path), BackendOptions(backend), tile_widths, None, seconds, PlanOptions(),
                            Path(runs_dir), seed)
    return run_parity_command(model_or_random(model, random_preset, seed), request, report=lambda _: None) == 0
