"""The Python API: a class per task, as sherpa-onnx's and Asteroid's are.

:class:`Separator` separates whole recordings (long ones in overlapping segments, as the
`separate` command does); :class:`StreamingSeparator` takes a causal model hop by hop (push, then
finish). Each opens from a checkpoint (``from_checkpoint``), an export folder (``from_export``: no
torch), a device bundle (``from_bundle``: every setting from it, no torch) or the shipped demo
model (``demo``), on a backend given by its config
(:class:`TorchProxy`, :class:`OnnxRuntime`, :class:`HailoRuntime`, :class:`HailoEmulator`,
:class:`HailoQuant`) or its name.

>>> from convtasnet_hailo import Separator
>>> with Separator.from_export("export", backend="onnxruntime") as separator:   # doctest: +SKIP
...     sources = separator.separate_file("mixture.wav")                         # (n_src, T)

Errors name the parameter that is wrong (a :class:`~convtasnet_hailo.errors.UserError`).
"""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path

import numpy as np

from . import _API
from . import api_parameters as checks
from .api_parameters import (
    SEPARATE_TILE_W,
    BackendConfig,
    HailoEmulator,
    HailoRuntime,
    OnnxRuntime,
    TorchProxy,
    backend_options,
)
from .api_parameters import (
    HailoQuant as HailoQuant,  # offered by the package root
)
from .errors import UserError
from .plan.options import PlanOptions
from .runtime import Run, RunSpec, open_run
from .runtime.backend_setup import BackendOptions
from .separation.segments import SegmentPolicy

__all__ = list(_API)  # declared once, at the package root (which imports this module lazily)


def _checkpoint_source(checkpoint: str | Path):
    from .runtime.sources import ModelChoice, resolve

    if checkpoint is None or str(checkpoint) == "":
        raise UserError("checkpoint is required: an Asteroid ConvTasNet checkpoint (.pth) or a hub id")
    return resolve(ModelChoice(model=str(checkpoint)))


def _export_source(export_dir: str | Path):
    from .runtime.sources import exported_source

    return exported_source(Path(export_dir))


def _bundle_run(bundle_dir: str | Path, backend: str | None, given: dict):
    """A device bundle's backend options (``runtime.settings.bundle_backend``: hailo_runtime where
    it has HEFs and HailoRT imports, else onnxruntime) and its settings, ``given`` checked
    against them (one that disagrees is refused)."""
    from .runtime.bundle import read_bundle
    from .runtime.settings import bundle_backend, fixed_by_bundle, reconcile

    if backend is not None and not isinstance(backend, str):
        raise UserError(f"backend={backend!r}: a bundle runs on 'hailo_runtime' or 'onnxruntime' (or None: chosen)")
    bundle = read_bundle(bundle_dir)
    values = reconcile({k: v for k, v in given.items() if v is not None}, fixed_by_bundle(bundle))
    name = bundle_backend(bundle, backend)
    hef_dir = bundle.hef_dir if name == "hailo_runtime" else None
    return BackendOptions(name, export_dir=bundle.export_dir, hef_dir=hef_dir), values


class _Closable:
    """A run used under a lock (one call at a time; other threads wait) that refuses use once closed."""

    def __init__(self, run: Run) -> None:
        self._run: Run | None = run
        self._lock = threading.Lock()

    def _open_run(self) -> Run:
        if self._run is None:
            raise UserError(f"this {type(self).__name__} is closed: open a new one")
        return self._run

    def close(self) -> None:
        """Frees the backend (and any temporary export), after a call in progress in another
        thread ends. Later calls are refused; a second close does nothing."""
        with self._lock:
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
    `separate` command does, so its output equals the command's.

    Thread safety: a separator may be shared by threads. Each holds a lock around its run, so
    concurrent ``separate`` calls run one at a time (each gets its own input's sources) and
    ``close`` waits for a call in progress. For parallel work open one separator per thread."""

    def __init__(self, run: Run, segment: SegmentPolicy = SegmentPolicy()) -> None:
        super().__init__(run)
        self._policy = segment
        self._inputs: set[Path] = set()

    @classmethod
    def from_checkpoint(
        cls,
        checkpoint: str | Path,
        *,
        backend: BackendConfig | str = "torch_proxy",
        tile_w: int = SEPARATE_TILE_W,
        options: PlanOptions = PlanOptions(),
        segment: str | float = "auto",
        overlap_seconds: float = 2.0,
    ) -> Separator:
        """An Asteroid checkpoint (or hub id) on ``backend``, cut for tiles of ``tile_w`` frames."""
        options_ = backend_options(backend)  # a wrong backend is refused before the model loads
        policy, tile_w = checks.segment_policy(segment, overlap_seconds), checks.tile_w(tile_w)
        with checks.named_as_parameters():
            spec = RunSpec(source=_checkpoint_source(checkpoint), options=options, backend=options_, tile_w=tile_w)
            return cls(open_run(spec), policy)

    @classmethod
    def from_export(
        cls,
        export_dir: str | Path,
        *,
        backend: BackendConfig | str = "onnxruntime",
        segment: str | float = "auto",
        overlap_seconds: float = 2.0,
    ) -> Separator:
        """The model an export folder was made from, with its plan and tile width (no torch)."""
        options_ = backend_options(backend, Path(export_dir))
        policy = checks.segment_policy(segment, overlap_seconds)
        with checks.named_as_parameters():
            return cls(open_run(RunSpec(source=_export_source(export_dir), backend=options_)), policy)

    @classmethod
    def from_bundle(
        cls,
        bundle_dir: str | Path,
        *,
        backend: str | None = None,
        segment: str | float = "auto",
        overlap_seconds: float = 2.0,
    ) -> Separator:
        """The device bundle ``build`` wrote (``BUILD/device``), every setting from it (no torch).
        ``backend``: None (hailo_runtime where the bundle has HEFs and HailoRT imports, else
        onnxruntime, said in one log line), ``"hailo_runtime"`` or ``"onnxruntime"`` (its CPU stages)."""
        policy = checks.segment_policy(segment, overlap_seconds)
        with checks.named_as_parameters():
            options_, _ = _bundle_run(bundle_dir, backend, {})
            return cls(open_run(RunSpec(source=_export_source(options_.export_dir), backend=options_)), policy)

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

    def separate(self, wav, rate: int | None = None, *, channel_axis: int | None = None) -> np.ndarray:
        """``wav`` at ``rate`` (default: the model's) -> (n_src, T') at the model's rate.

        ``wav``: mono (T,), or (T, C) with ``channel_axis=1`` (as ``soundfile.read`` returns it)
        or (C, T) with ``channel_axis=0``, its channels averaged; float samples in [-1, 1] or
        int8/int16/int32 PCM (divided by 2**(bits-1), as soundfile reads it). NaN, Inf, other
        dtypes and fewer samples than one encoder window are refused (a UserError naming it)."""
        from .audio.arrays import mono_samples, rate_value

        samples = mono_samples(wav, "wav", channel_axis)
        config = self._open_run().plan.config
        if rate is not None and rate_value(rate) != config.sample_rate:
            from .audio.io import resample

            samples = resample(samples, rate_value(rate), config.sample_rate)
        if len(samples) < config.kernel_size:
            raise UserError(
                f"wav has {len(samples)} samples at the model's rate: fewer than one encoder window "
                f"({config.kernel_size}); pass a longer recording"
            )
        segment = self._policy.segment_seconds(len(samples) / config.sample_rate)
        with self._lock:
            return _separate(self._open_run().separator(), samples, segment, self._policy.overlap_seconds)

    def separate_file(self, path: str | Path) -> np.ndarray:
        """A WAV/FLAC file (stereo averaged, other rates resampled) -> (n_src, T) at the model's rate."""
        from .audio.io import load_audio as read

        self._inputs.add(Path(os.path.realpath(path)))
        return self.separate(read(path, self.sample_rate).wav)

    def write_sources(self, sources, out_dir: str | Path, stem: str, subtype: str = "FLOAT") -> list[Path]:
        """``out_dir/<stem>_s<i>.wav`` for each of ``sources`` (n_src, T) (PCM scaled down together
        where it would clip). ``stem`` is a file name stem, not a path (no folder separator, no
        ``..``); no file this separator read is overwritten (by name, symlink or hard link); all
        is checked before the first file is written."""
        from .audio.arrays import file_stem, sources_matrix
        from .audio.io import SUBTYPES, pcm_safe_gain, save_audio

        rate, tracks = self.sample_rate, sources_matrix(sources, self.n_src)
        stem = file_stem(stem)
        if subtype not in SUBTYPES:
            raise UserError(f"subtype={subtype!r}: choose one of {', '.join(SUBTYPES)}")
        out_dir = checks.output_folder(out_dir)
        paths = [out_dir / f"{stem}_s{i}.wav" for i in range(1, len(tracks) + 1)]
        for path in paths:
            if any(checks.same_file(path, read) for read in self._inputs):
                raise UserError(
                    f"write_sources would overwrite {path}, an input this separator read: pass another stem or out_dir"
                )
        gain = pcm_safe_gain(tracks, subtype)
        for path, track in zip(paths, tracks, strict=True):
            save_audio(path, track * gain, rate, subtype)
        return paths


def _separate(separator, samples: np.ndarray, segment: float | None, overlap_seconds: float) -> np.ndarray:
    """(T,) -> (n_src, T): whole, or in overlapping segments of ``segment`` seconds."""
    from .runtime.separator import separate_segmented

    if segment is None:
        return separator(samples)
    rate = separator.config.sample_rate
    return separate_segmented(separator, samples, round(segment * rate), round(overlap_seconds * rate))


class StreamingSeparator(_Closable):
    """A causal model hop by hop: ``push(samples)`` (a whole number of hops, mono) returns the
    output samples that became final, (n_src, n); ``finish(last samples)`` (fewer than a hop)
    returns the rest, so that everything pushed comes back, equal to the offline model's output
    on every sample. A second ``finish()`` returns (n_src, 0); ``push`` after ``finish`` or
    ``close`` is refused.

    A hop that is refused (NaN or Inf, beyond +-32768, stereo, not a whole number of hops) is not
    taken: the stream stays usable and goes on as if it had not been pushed. A hop whose output the
    model cannot compute (it overflows) ends the stream: later calls are refused.

    Thread safety: a lock serializes ``push``, ``finish`` and ``close``; hops pushed from several
    threads are taken in the order the lock is acquired (the caller orders them)."""

    def __init__(self, run: Run, executor) -> None:
        super().__init__(run)
        self._executor, self._ended = executor, ""
        config = run.spec.source.config  # the model's: the executor may hold no plan (stateful graph)
        self.hop = executor.hop  # samples per push
        self.delay = executor.delay  # samples the output lags the input (the encoder window's overlap)
        self.sample_rate, self.n_src = config.sample_rate, config.n_src

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
        """A causal checkpoint streamed in hops of ``hop_ms``; ``plan``: auto, per-hop, rf-windows or stateful."""
        options_ = backend_options(backend)
        checks.number(hop_ms, "hop_ms", "a hop length in milliseconds, above 0 (e.g. 8 or 16)", positive=True)
        with checks.named_as_parameters():
            return cls._open(_checkpoint_source(checkpoint), hop_ms, options_, plan, options)

    @classmethod
    def from_export(
        cls, export_dir: str | Path, *, hop_ms: float = 16.0, backend: BackendConfig | str = "onnxruntime"
    ) -> StreamingSeparator:
        """The streaming export ``export_dir`` (made for this hop), without torch."""
        options_ = backend_options(backend, Path(export_dir))
        checks.number(hop_ms, "hop_ms", "a hop length in milliseconds, above 0 (e.g. 8 or 16)", positive=True)
        with checks.named_as_parameters():
            return cls._open(_export_source(export_dir), hop_ms, options_, "auto", PlanOptions())

    @classmethod
    def from_bundle(
        cls, bundle_dir: str | Path, *, backend: str | None = None, hop_ms: float | None = None
    ) -> StreamingSeparator:
        """The device bundle ``build`` wrote, streamed at its hop and on its stream plan (no torch);
        ``backend`` as :meth:`Separator.from_bundle`; ``hop_ms`` given must be the bundle's."""
        with checks.named_as_parameters():
            options_, values = _bundle_run(bundle_dir, backend, {"hop_ms": hop_ms})
            source = _export_source(options_.export_dir)
            return cls._open(source, values["hop_ms"], options_, values["plan"], PlanOptions())

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
        """``samples``: mono, a whole number of hops (k * hop,) -> (n_src, n) final output samples."""
        block = self._block(samples)
        if block.size % self.hop:
            raise UserError(
                f"samples has {block.size} values: push a whole number of hops ({self.hop} samples each); "
                "the last fewer than a hop go to finish()"
            )
        with self._lock:
            self._live("push")
            return self._checked(self._executor.push(block))

    def finish(self, samples=None) -> np.ndarray:
        """The end of the stream: the last ``samples`` (fewer than a hop) -> (n_src, n), the rest of
        the output. A second ``finish()`` returns (n_src, 0); one with samples is refused."""
        last = None if samples is None else self._block(samples)
        if last is not None and last.size >= self.hop:
            raise UserError(
                f"samples has {last.size} values: finish() takes the last fewer than a hop ({self.hop}); "
                "push the whole hops first"
            )
        with self._lock:
            if self._ended == "finish()" and (last is None or last.size == 0):
                self._open_run()
                return np.zeros((self.n_src, 0), np.float32)
            self._live("finish")
            self._ended = "finish()"
            return self._checked(self._executor.finish(last))

    def _block(self, samples) -> np.ndarray:
        from .audio.arrays import mono_samples

        return mono_samples(samples, "samples", channels=False)

    def _live(self, call: str) -> None:
        self._open_run()
        if self._ended:
            raise UserError(f"{call} after {self._ended}: the stream has ended; open a new StreamingSeparator")

    def _checked(self, out: np.ndarray) -> np.ndarray:
        if not np.isfinite(out).all():
            self._ended = "an output the model could not compute"
            raise UserError(
                "samples: the model's output for them holds NaN/Inf (it overflows on this input); the stream "
                "cannot go on: open a new StreamingSeparator"
            )
        return out


def load_audio(path: str | Path, rate: int) -> np.ndarray:
    """A WAV/FLAC file as mono float32 (T,) at ``rate`` (stereo averaged, other rates resampled)."""
    from .audio.io import load_audio as read

    return read(path, rate, allow_silent=True).wav


def read_librimix(metadata: str | Path) -> list:
    """The mixtures of a LibriMix-format metadata CSV (``audio.librimix.MixtureEntry``: mixture_id,
    mixture_path, source_paths; relative paths resolved against the CSV's folder)."""
    from .audio.librimix import read_metadata

    return read_metadata(metadata)


def score(estimates, references, mixture):
    """SI-SNR and SI-SNR improvement of ``estimates`` (n_src, T) against ``references`` (n_src, T)
    and ``mixture`` (T,), under the best permutation (``metrics.separation.SeparationScore``:
    ``mean_si_snri`` ...). A silent reference (``metrics.separation.is_silent``) gets NaN scores,
    is named (``silent_references``) and left out of the means, as is any non-finite score.
    Shapes that differ, NaN or Inf are refused in one line."""
    from .audio.arrays import as_array, mono_samples, sources_matrix
    from .metrics.separation import score_separation

    mix, refs = mono_samples(mixture, "mixture"), as_array(references, "references")
    refs = sources_matrix(refs, refs.shape[0] if refs.ndim == 2 else 1, "references")
    estimated = sources_matrix(estimates, len(refs), "estimates")
    if not refs.shape[1] == estimated.shape[1] == len(mix):
        raise UserError(
            f"estimates has shape {estimated.shape}, references {refs.shape} and mixture {mix.shape}: pass "
            "one length T for all three"
        )
    return score_separation(estimated, refs, mix)


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
