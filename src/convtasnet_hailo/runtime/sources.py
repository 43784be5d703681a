"""Which model a run takes when it may come from an export folder instead of a checkpoint: the
model the export recorded, without its weights (the run reads the export's device plan)."""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from ..model.config import ConvTasNetConfig
from ..model.source import ModelSource, model_or_random, random_source, trained_model


def exported_source(export_dir: Path) -> ModelSource:
    """The model an export was made from, as the export recorded it, without its weights: the run
    takes the plan from the export's device plan (no torch)."""
    from ..export.manifest import read_manifest

    manifest = read_manifest(export_dir)
    info = manifest.model
    try:
        config = ConvTasNetConfig.from_model_args(info["model_config"])
    except (KeyError, TypeError) as exc:
        raise UserError(f"{Path(export_dir) / 'manifest.json'} records no model configuration ({exc}); re-export") \
            from None
    return ModelSource(None, f"{info.get('model_source', 'a model')} (from the export {export_dir})",
                       info.get("model_seed") if info.get("model_random") else None, info.get("model_path"),
                       info.get("model_sha256"), Path(export_dir), config)


def trained_or_exported(spec: str | None, export_dir: str | Path | None = None) -> ModelSource:
    """``spec``; else, with an export folder, the model it was exported from, read from it (no
    torch); else the shipped demo model: audio commands need trained weights."""
    if not spec and export_dir:
        return exported_source(Path(export_dir))
    return trained_model(spec)


def model_or_export(spec: str | None, preset: str, seed: int, export_dir: str | Path | None) -> ModelSource:
    """``spec``; else the trained model an export folder was made from (no torch); else, as for an
    export of random weights, the seeded random preset."""
    if spec or not export_dir:
        return model_or_random(spec, preset, seed)
    exported = exported_source(Path(export_dir))
    return random_source(preset, seed) if exported.random_seed is not None else exported
