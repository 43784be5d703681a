"""The cases a `parity` run checks (from the requested lengths or the edge lengths around each
tile width), and whether an export exposes the internal tensors parity compares."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import UserError
from ..model.config import ConvTasNetConfig
from ..plan.options import PlanPath
from ..resources import refuse_unless_fits
from .runner import DEFAULT_TILE_WIDTHS, ParityCase, default_cases, samples_for_frames


def parity_cases(
    path: PlanPath,
    config: ConvTasNetConfig,
    tile_widths: Sequence[int] | None,
    lengths: Sequence[int] | None,
    seconds: Sequence[float] | None,
) -> list[ParityCase]:
    """``lengths`` are samples for full-chain and latent frames for decoder/masker; without
    lengths, every tile width gets the edge lengths of :func:`default_cases`."""
    tile_widths = list(tile_widths or DEFAULT_TILE_WIDTHS)
    if lengths and seconds:
        raise UserError("--length and --seconds both given: pass one of them")
    if not lengths and not seconds:
        return default_cases(path, config, tile_widths)
    if seconds:
        samples = [round(s * config.sample_rate) for s in seconds]
    elif path is PlanPath.FULL_CHAIN:
        samples = list(lengths)
    else:
        samples = [samples_for_frames(config, frames) for frames in lengths]
    for wav_t in samples:
        if wav_t < config.kernel_size:
            raise UserError(
                f"length of {wav_t} samples is shorter than one encoder window "
                f"({config.kernel_size} samples): pass a longer --length/--seconds"
            )
    refuse_unless_fits(
        2 * config.forward_bytes(max(samples)),
        f"parity at {max(samples)} samples (the reference model and the stitched path side by side)",
        "pass a shorter --length/--seconds",
    )
    return [ParityCase(path, tile_w, wav_t) for tile_w in tile_widths for wav_t in samples]


def exported_with_internal_tensors(export_dir: Path | None) -> bool:
    """Whether an export folder (or its tile<W>/ subfolders) holds a plan with internal tensors exposed."""
    if export_dir is None:
        return False
    from ..export.manifest import read_manifest

    folders = [export_dir] if (export_dir / "manifest.json").is_file() else sorted(export_dir.glob("tile*"))
    return any(read_manifest(f).plan.expose_internal for f in folders if (f / "manifest.json").is_file())
