"""The Python API: a class per task, as sherpa-onnx's and Asteroid's are.

:class:`Separator` separates whole recordings (long ones in overlapping segments, as the
`separate` command does); :class:`StreamingSeparator` takes a causal model hop by hop (push, then
finish). Each opens from a checkpoint (``from_checkpoint``), an export folder (``from_export``: no
torch) or the shipped demo model (``demo``), on a backend given by its config
(:class:`TorchProxy`, :class:`OnnxRuntime`, :class:`HailoRuntime`, :class:`HailoEmulator`,
:class:`HailoQuant`) or its name.

>>> from convtasnet_hailo import Separator
>>> with Separator.from_export("export", backend="onnxruntime") as separator:   # doctest: +SKIP
...     sources = separator.separate_file("mixture.wav")                         # (n_src, T)

Errors name the parameter that is wrong (a :class:`~convtasnet_hailo.errors.UserError`).
"""

from __future__ import annotations

import dataclasses
import threading
import warnings
from pathlib import Path

import numpy as np

from .errors import UserError
from .plan.options import PlanOptions
from .runtime import Run, RunSpec, open_run
from .runtime.backend_setup import BackendOptions
from .separation.segments import SegmentPolicy

__all__ = [
    "Separator",
    "StreamingSeparator",
    "TorchProxy",
    "OnnxRuntime",
    "HailoRuntime",
    "HailoEmulator",
    "HailoQuant",
    "load_audio",
    "read_librimix",
    "score",
    "open_pipeline",
    "run_parity",
]

#: The tile width `separate` uses by default (a stage call covers this many latent frames).
SEPARATE_TILE_W = 128


@dataclasses.dataclass(frozen=True)
class TorchProxy:
    """Each stage in PyTorch (the host; needs torch)."""

    def options(self) -> BackendOptions:
        return BackendOptions("torch_proxy")


@dataclasses.dataclass(frozen=True)
class OnnxRuntime:
    """Each stage's ONNX file in onnxruntime: an export's (``export_dir``), or exported into a
    temporary folder for the run."""

    export_dir: str | Path | None = None

    def options(self) -> BackendOptions:
        return BackendOptions("onnxruntime", _path(self.export_dir))


@dataclasses.dataclass(frozen=True)
class HailoRuntime:
    """The HEFs in ``hef_dir`` on a Hailo device, through HailoRT (``hailo_platform``)."""

    hef_dir: str | Path
    io_format: str = "float32"
    batch_size: int = 8

    def options(self) -> BackendOptions:
        return BackendOptions(
            "hailo_runtime",
            hef_dir=_required(self.hef_dir, "HailoRuntime(hef_dir=...)"),
            io_format=self.io_format,
            batch_size=self.batch_size,
        )


@dataclasses.dataclass(frozen=True)
class HailoEmulator:
    """The HARs in ``hef_dir`` in the Dataflow Compiler's emulator (``context``: quantized or native)."""

    hef_dir: str | Path
    context: str = "quantized"

    def options(self) -> BackendOptions:
        return BackendOptions(
            "hailo_emulator", hef_dir=_required(self.hef_dir, "HailoEmulator(hef_dir=...)"), context=self.context
        )


@dataclasses.dataclass(frozen=True)
class HailoQuant:
    """The device's integer arithmetic emulated, as the `noise` folder ``noise_dir`` advised."""

    noise_dir: str | Path

    def options(self) -> BackendOptions:
        return BackendOptions("hailo_quant", noise_dir=_required(self.noise_dir, "HailoQuant(noise_dir=...)"))


BackendConfig = TorchProxy | OnnxRuntime | HailoRuntime | HailoEmulator | HailoQuant
#: A backend named without settings.
_BY_NAME = {"torch_proxy": TorchProxy, "onnxruntime": OnnxRuntime}


def _path(value: str | Path | None) -> Path | None:
    return None if value is None else Path(value)


def _required(value: str | Path | None, parameter: str) -> Path:
    if value is None or str(value) == "":
        raise UserError(f"{parameter} is required: the folder the backend reads")
    return Path(value)


def _backend(backend: BackendConfig | str, export_dir: Path | None = None) -> BackendOptions:
    """A config, or a name (``"onnxruntime"``); an export's stages for onnxruntime when opened
    from an export and no other folder was given."""
    if isinstance(backend, str):
        if backend not in _BY_NAME:
            raise UserError(
                f"backend={backend!r}: by name, use {' or '.join(_BY_NAME)}; the Hailo backends need "
                "their folder: backend=HailoRuntime(hef_dir=...), HailoEmulator(hef_dir=...) or "
                "HailoQuant(noise_dir=...)"
            )
        backend = _BY_NAME[backend]()
    if not hasattr(backend, "options"):
        raise UserError(
            f"backend={backend!r}: pass a backend config (TorchProxy(), OnnxRuntime(), "
            "HailoRuntime(hef_dir=...), ...) or a name"
        )
    if isinstance(backend, OnnxRuntime) and backend.export_dir is None and export_dir is not None:
        backend = OnnxRuntime(export_dir)
    options = backend.options()
    if export_dir is not None and options.name in ("hailo_runtime", "hailo_emulator"):
        options = dataclasses.replace(options, export_dir=export_dir)
    return options


def _checkpoint_source(checkpoint: str | Path):
    from .runtime.sources import ModelChoice, resolve

    if checkpoint is None or str(checkpoint) == "":
        raise UserError("checkpoint is required: an Asteroid ConvTasNet checkpoint (.pth) or a hub id")
    return resolve(ModelChoice(model=str(checkpoint)))


def _export_source(export_dir: str | Path):
    from .runtime.sources import exported_source

    return exported_source(Path(export_dir))


def mono_samples(wav, parameter: str = "wav") -> np.ndarray:
    """``wav`` as (T,) float32: 1-D only (a (T, C) array is refused: average its channels first),
    integer PCM scaled as soundfile reads it, NaN and Inf refused."""
    array = np.asarray(wav)
    if array.ndim != 1:
        raise UserError(
            f"{parameter} has shape {array.shape}: pass mono samples, shape (T,) (for a (T, C) array "
            "as soundfile.read returns it, average the channels: wav.mean(axis=1))"
        )
    if np.issubdtype(array.dtype, np.integer):
        info = np.iinfo(array.dtype)
        if info.min == 0:
            raise UserError(f"{parameter} is {array.dtype}: pass float samples in [-1, 1] or signed PCM integers")
        array = array.astype(np.float64) / -float(info.min)
    elif not np.issubdtype(array.dtype, np.floating):
        raise UserError(f"{parameter} is {array.dtype}: pass float samples in [-1, 1] or signed PCM integers")
    samples = array.astype(np.float32)
    if not np.isfinite(samples).all():
        raise UserError(
            f"{parameter} holds NaN or Inf at sample {int(np.argmin(np.isfinite(samples)))}: pass finite samples"
        )
    return samples


class _Closable:
    """A run that refuses use once closed."""

    _run: Run | None

    def _open_run(self) -> Run:
        if self._run is None:
            raise UserError(f"this {type(self).__name__} is closed: open a new one")
        return self._run

    def close(self) -> None:
        """Frees the backend (and any temporary export). Later calls are refused."""
        if self._run is not None:
            self._run.close()
            self._run = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Separator(_Closable):
    """Whole recordings in, sources out: (T,) -> (n_src, T). Inputs longer than the ``segment``
    policy's threshold (``"auto"``: over 120 s) are separated in overlapping segments, as the
    `separate` command does, so its output equals the command's. One call at a time per
    separator: concurrent calls from threads wait for each other."""

    def __init__(self, run: Run, segment: SegmentPolicy = SegmentPolicy()) -> None:
        self._run, self._policy, self._lock = run, segment, threading.Lock()
        self._inputs: set[Path] = set()

    @classmethod
    def from_checkpoint(
        cls,
        checkpoint: str | Path,
        *,
        backend: BackendConfig | str = "torch_proxy",
        tile_w: int = SEPARATE_TILE_W,
        options: PlanOptions = PlanOptions(),
        segment: str = "auto",
        overlap_seconds: float = 2.0,
    ) -> Separator:
        """An Asteroid checkpoint (or hub id) on ``backend``, cut for tiles of ``tile_w`` frames."""
        backend_options = _backend(backend)  # a wrong backend is refused before the model loads
        spec = RunSpec(source=_checkpoint_source(checkpoint), options=options, backend=backend_options, tile_w=tile_w)
        return cls(open_run(spec), SegmentPolicy(segment, overlap_seconds))

    @classmethod
    def from_export(
        cls,
        export_dir: str | Path,
        *,
        backend: BackendConfig | str = "onnxruntime",
        segment: str = "auto",
        overlap_seconds: float = 2.0,
    ) -> Separator:
        """The model an export folder was made from, with its plan and tile width (no torch)."""
        backend_options = _backend(backend, Path(export_dir))
        spec = RunSpec(source=_export_source(export_dir), backend=backend_options)
        return cls(open_run(spec), SegmentPolicy(segment, overlap_seconds))

    @classmethod
    def demo(cls, **kwargs) -> Separator:
        """The shipped two-speaker 8 kHz demo model (``from_checkpoint``'s keywords)."""
        from .assets import DEMO_MODEL

        return cls.from_checkpoint(DEMO_MODEL, **kwargs)

    @property
    def sample_rate(self) -> int:
        return self._open_run().plan.config.sample_rate

    @property
    def n_src(self) -> int:
        return self._open_run().plan.config.n_src

    @property
    def plan(self):
        """The stage plan it runs (``plan.stage_plan.StagePlan``)."""
        return self._open_run().plan

    def separate(self, wav, rate: int | None = None) -> np.ndarray:
        """(T,) samples at ``rate`` (default: the model's) -> (n_src, T') at the model's rate."""
        from .runtime.separator import separate_segmented

        samples = mono_samples(wav)
        run = self._open_run()
        config = run.plan.config
        if rate is not None and rate != config.sample_rate:
            from .audio.io import resample

            samples = resample(samples, int(rate), config.sample_rate)
        if len(samples) < config.kernel_size:
            raise UserError(f"wav has {len(samples)} samples: fewer than one encoder window ({config.kernel_size})")
        segment = self._policy.segment_seconds(len(samples) / config.sample_rate)
        with self._lock:
            separator = run.separator()
            if segment is None:
                return separator(samples)
            rate_ = config.sample_rate
            return separate_segmented(
                separator, samples, round(segment * rate_), round(self._policy.overlap_seconds * rate_)
            )

    def separate_file(self, path: str | Path) -> np.ndarray:
        """A WAV/FLAC file (stereo averaged, other rates resampled) -> (n_src, T) at the model's rate."""
        from .audio.io import load_audio as read

        self._inputs.add(Path(path).resolve())
        return self.separate(read(path, self.sample_rate).wav)

    def write_sources(self, sources: np.ndarray, out_dir: str | Path, stem: str, subtype: str = "FLOAT") -> list[Path]:
        """``out_dir/<stem>_s<i>.wav`` for each source (PCM scaled down together where it would
        clip). ``stem`` is a file name stem, not a path; no file this separator read is overwritten."""
        from .audio.io import pcm_safe_gain, save_audio

        if not stem or Path(stem).name != stem or stem in (".", ".."):
            raise UserError(f"stem={stem!r}: pass a file name stem without folders (out_dir says where)")
        out_dir = Path(out_dir)
        paths = [out_dir / f"{stem}_s{i}.wav" for i in range(1, len(sources) + 1)]
        for path in paths:
            if path.resolve() in self._inputs:
                raise UserError(
                    f"write_sources would overwrite {path}, an input this separator read: pass another stem or out_dir"
                )
        out_dir.mkdir(parents=True, exist_ok=True)
        gain = pcm_safe_gain(sources, subtype)
        for path, track in zip(paths, sources, strict=False):
            save_audio(path, track * gain, self._open_run().plan.config.sample_rate, subtype)
        return paths


class StreamingSeparator(_Closable):
    """A causal model hop by hop: ``push(samples)`` (a whole number of hops, mono) returns the
    output samples that became final, (n_src, n); ``finish(last samples)`` (fewer than a hop)
    returns the rest, so that everything pushed comes back, equal to the offline model's output
    on every sample. A hop holding NaN or Inf is refused and the stream stays usable."""

    def __init__(self, run: Run, executor) -> None:
        self._run, self._executor, self._finished = run, executor, False
        self._lock = threading.Lock()
        self.hop = executor.hop  # samples per push
        self.delay = executor.delay  # samples the output lags the input (the encoder window's overlap)
        self.sample_rate = executor.plan.config.sample_rate

    @classmethod
    def from_checkpoint(
        cls,
        checkpoint: str | Path,
        *,
        hop_ms: float = 16.0,
        backend: BackendConfig | str = "torch_proxy",
        plan: str = "auto",
        options: PlanOptions = PlanOptions(),
    ) -> StreamingSeparator:
        """A causal checkpoint streamed in hops of ``hop_ms``; ``plan``: auto, per-hop or rf-windows."""
        backend_options = _backend(backend)
        return cls._open(_checkpoint_source(checkpoint), hop_ms, backend_options, plan, options)

    @classmethod
    def from_export(
        cls, export_dir: str | Path, *, hop_ms: float = 16.0, backend: BackendConfig | str = "onnxruntime"
    ) -> StreamingSeparator:
        """The streaming export ``export_dir`` (made for this hop), without torch."""
        backend_options = _backend(backend, Path(export_dir))
        return cls._open(_export_source(export_dir), hop_ms, backend_options, "auto", PlanOptions())

    @classmethod
    def demo(cls, **kwargs) -> StreamingSeparator:
        """The shipped causal two-speaker demo model (``from_checkpoint``'s keywords)."""
        from .assets import DEMO_CAUSAL_MODEL

        return cls.from_checkpoint(DEMO_CAUSAL_MODEL, **kwargs)

    @classmethod
    def _open(cls, source, hop_ms: float, backend: BackendOptions, plan: str, options: PlanOptions):
        from .runtime.streaming import StreamSpec, open_stream

        run, executor, _ = open_stream(
            StreamSpec(source=source, hop_ms=hop_ms, backend=backend, options=options, plan_kind=plan)
        )
        return cls(run, executor)

    def push(self, samples) -> np.ndarray:
        block = mono_samples(samples, "samples")
        with self._lock:
            self._live()
            return self._executor.push(block)

    def finish(self, samples=None) -> np.ndarray:
        """The end of the stream; a second call returns nothing more, (n_src, 0)."""
        last = None if samples is None else mono_samples(samples, "samples")
        with self._lock:
            self._open_run()
            if self._finished:
                return np.zeros((self._executor.plan.config.n_src, 0), np.float32)
            out = self._executor.finish(last)
            self._finished = True
            return out

    def _live(self) -> None:
        self._open_run()
        if self._finished:
            raise UserError("push after finish(): the stream has ended; open a new StreamingSeparator")


def load_audio(path: str | Path, rate: int) -> np.ndarray:
    """A WAV/FLAC file as mono float32 (T,) at ``rate`` (stereo averaged, other rates resampled)."""
    from .audio.io import load_audio as read

    return read(path, rate, allow_silent=True).wav


def read_librimix(metadata: str | Path) -> list:
    """The mixtures of a LibriMix-format metadata CSV (``audio.librimix.MixtureEntry``: mixture_id,
    mixture_path, source_paths; relative paths resolved against the CSV's folder)."""
    from .audio.librimix import read_metadata

    return read_metadata(metadata)


def score(estimates: np.ndarray, references: np.ndarray, mixture: np.ndarray):
    """SI-SNR and SI-SNR improvement of ``estimates`` (n_src, T) against ``references`` (n_src, T)
    under the best permutation (``metrics.separation.SeparationScore``: ``mean_si_snri`` ...)."""
    from .metrics.separation import score_separation

    return score_separation(np.asarray(estimates), np.asarray(references), mono_samples(mixture, "mixture"))


def open_pipeline(
    model: str | None = None,
    *,
    export_dir: str | Path | None = None,
    backend: str = "torch_proxy",
    hef_dir: str | Path | None = None,
    tile_w: int = SEPARATE_TILE_W,
    options: PlanOptions = PlanOptions(),
    hop_ms: float | None = None,
) -> Separator | StreamingSeparator:
    """Deprecated: use :class:`Separator` or :class:`StreamingSeparator` (their ``from_*``)."""
    warnings.warn(
        "open_pipeline is deprecated: use Separator.from_checkpoint / from_export, or StreamingSeparator for hop_ms",
        DeprecationWarning,
        stacklevel=2,
    )
    config = {
        "torch_proxy": TorchProxy(),
        "onnxruntime": OnnxRuntime(export_dir),
        "hailo_runtime": HailoRuntime(hef_dir) if hef_dir else None,
        "hailo_emulator": HailoEmulator(hef_dir) if hef_dir else None,
    }.get(backend, backend)
    if config is None:
        raise UserError(f"backend={backend!r} needs hef_dir=...")
    if hop_ms is not None:
        return (
            StreamingSeparator.from_checkpoint(model, hop_ms=hop_ms, backend=config, options=options)
            if model or not export_dir
            else StreamingSeparator.from_export(export_dir, hop_ms=hop_ms, backend=config)
        )
    if model or not export_dir:
        from .assets import DEMO_MODEL

        return Separator.from_checkpoint(model or DEMO_MODEL, backend=config, tile_w=tile_w, options=options)
    return Separator.from_export(export_dir, backend=config)


def run_parity(
    model: str | None = None,
    *,
    path: str = "full-chain",
    backend: str = "torch_proxy",
    tile_widths: tuple[int, ...] | None = None,
    seconds: tuple[float, ...] | None = None,
    runs_dir: str | Path = "module_runs",
    random_preset: str = "tiny",
    seed: int = 0,
) -> bool:
    """The stitched path against the reference model, stage by stage (`parity`); True when every
    case is within the contract. Without ``model``, seeded random weights of ``random_preset``."""
    from .commands import parity
    from .plan.options import PlanPath
    from .runtime.sources import ModelChoice, resolve

    result = parity.run(
        parity.Request(
            source=resolve(ModelChoice(model, preset=random_preset, seed=seed)),
            path=PlanPath(path),
            backend=BackendOptions(backend),
            tile_widths=tile_widths,
            seconds=seconds,
            runs_dir=Path(runs_dir),
            seed=seed,
        )
    )
    parity.write(result)
    return result.exit_status == 0
