"""What the Python API's callers pass: the backend configs (:class:`TorchProxy` ...) and the
checks of the other parameters, each refusal one :class:`~convtasnet_hailo.errors.UserError`
line naming the parameter the caller passed (``tile_w=0``, ``hop_ms=nan``), never a CLI option
(:func:`named_as_parameters` renames those in messages of the layers the API shares with the CLI).
The arrays' own checks are :mod:`convtasnet_hailo.audio.arrays`."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import re
from pathlib import Path

import numpy as np

from .errors import UserError
from .plan.options import DEFAULT_TILE_W
from .runtime.backend_setup import BackendOptions
from .separation.segments import SegmentPolicy

#: The tile width `separate` uses by default (a stage call covers this many latent frames): the one
#: default every command shares (``plan.options.DEFAULT_TILE_W``); an export or bundle fixes its own.
SEPARATE_TILE_W = DEFAULT_TILE_W


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


def backend_options(backend: BackendConfig | str, export_dir: Path | None = None) -> BackendOptions:
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


#: CLI options named in messages of the layers the API shares with the CLI, and the parameter
#: the API's caller passed instead.
_PARAMETERS = {
    "--hop-ms": "hop_ms",
    "--plan": "plan",
    "--segment": "segment",
    "--overlap": "overlap_seconds",
    "--tile-w": "tile_w",
    "--subtype": "subtype",
    "--rf-windows": "plan='rf-windows'",
    "--max-width": "max_width",
}


@contextlib.contextmanager
def named_as_parameters():
    """A UserError from a shared layer, its CLI options renamed as the API's parameters
    ("--hop-ms 0.1 is" becomes "hop_ms=0.1 is"); an option the API has no name for stays."""

    def renamed(match: re.Match) -> str:
        if match.group(1) not in _PARAMETERS:
            return match.group(0)
        return _PARAMETERS[match.group(1)] + ("=" if match.group(2) else "")

    try:
        yield
    except UserError as exc:
        raise UserError(re.sub(r"(--[a-z][a-z0-9-]*)( (?=[^(\s]))?", renamed, str(exc))) from None


def number(value, parameter: str, what: str, *, positive: bool) -> float:
    """A finite real number, >= 0 (``positive``: > 0); bool and text refused."""
    real = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    if not real or not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise UserError(f"{parameter}={value!r}: pass {what}")
    return float(value)


def tile_w(tile_w) -> int:
    """A whole number of latent frames per stage call, at least 1 (bool refused)."""
    if isinstance(tile_w, bool) or not isinstance(tile_w, int | np.integer) or tile_w < 1:
        raise UserError(
            f"tile_w={tile_w!r}: pass a whole number of latent frames per stage call, at least 1 "
            f"(default {SEPARATE_TILE_W})"
        )
    return int(tile_w)


def segment_policy(segment, overlap_seconds) -> SegmentPolicy:
    """``segment``: "auto", "off" or seconds (a number or its text); ``overlap_seconds`` >= 0."""
    overlap = number(overlap_seconds, "overlap_seconds", "a finite number of seconds, 0 or more", positive=False)
    if not isinstance(segment, str):
        segment = repr(number(segment, "segment", '"auto", "off" or a finite number of seconds', positive=True))
    with named_as_parameters():
        return SegmentPolicy(segment, overlap)


def output_folder(out_dir: str | Path) -> Path:
    """``out_dir``, created when missing; a file there, or a folder that cannot be made, refused."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"out_dir={str(out_dir)!r} is a file: pass a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"out_dir={str(out_dir)!r}: cannot create it ({exc.strerror}); pass a writable one") from None
    return out_dir


def same_file(path: Path, read: Path) -> bool:
    """``path`` names ``read`` (its resolved name), through a symlink or as a hard link of it."""
    if Path(os.path.realpath(path)) == read:
        return True
    try:
        return os.path.samefile(path, read)
    except OSError:  # either does not exist (yet)
        return False
