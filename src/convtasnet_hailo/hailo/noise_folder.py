"""The folder `noise --out DIR` writes, read back: its report's advised precision and scheme, its
calibration tiles and the model it was made for. Every field is type-checked and every file
name confined to the folder (an edited or planted file is a one-line error)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..errors import UserError
from ..records import RecordError, field, inside, items, read_json
from . import quant_scheme as qs
from .emulation import Precision, calibrated

NOISE_REPORT = "noise_report.json"


#: The fields of ``noise_report.json`` read here, and their types (checked before use).
NOISE_REPORT_FIELDS = {
    "layers_16bit": list,
    "precision_modes": (dict, type(None)),
    "scheme": (dict, type(None)),
    "model_sha256": (str, type(None)),
    "model_seed": (int, type(None)),
    "model_config": (dict, type(None)),
    "model_source": (str, type(None)),
}


def _noise_report(noise_dir: Path) -> dict:
    """The report's fields this backend reads, each of its type (an edited file is one line)."""
    path = Path(noise_dir) / NOISE_REPORT
    if not path.exists():
        raise UserError(
            f"--noise-dir {noise_dir}: no {NOISE_REPORT}; pass the --out folder of `convtasnet-hailo noise`"
        )
    data = read_json(path, "noise report", "run `convtasnet-hailo noise` again")
    try:
        report = {key: field(data, key, kind, NOISE_REPORT, None) for key, kind in NOISE_REPORT_FIELDS.items()}
        items(report["layers_16bit"] or [], str, f"{NOISE_REPORT}.layers_16bit")
        items(list((report["precision_modes"] or {}).values()), str, f"{NOISE_REPORT}.precision_modes")
    except RecordError as error:
        raise UserError(f"{path} is not a `noise` report ({error}); run `convtasnet-hailo noise` again") from None
    return report


def check_noise_dir_model(noise_dir: Path, model_info: Mapping) -> None:
    """Refuses a `noise` folder made for another model (checkpoint hash, or random seed and config)."""
    report = _noise_report(noise_dir)
    keys = ("model_sha256",) if report.get("model_sha256") else ("model_seed", "model_config")
    if any(report.get(key) != model_info.get(key) for key in keys):
        raise UserError(
            f"--noise-dir {noise_dir} was made for another model ({report.get('model_source')}); "
            "run `convtasnet-hailo noise` on this one"
        )


def read_noise_precision(noise_dir: Path) -> Precision:
    """The advised precision `noise` chose: its layer modes (or, from an older report, its
    16-bit layers as a16_w16), every other layer a8_w8."""
    report = _noise_report(noise_dir)
    if report["precision_modes"] is not None:
        return Precision(dict(report["precision_modes"]))
    return Precision({name: "a16_w16" for name in report["layers_16bit"] or []})


def read_noise_scheme(noise_dir: Path) -> qs.Scheme:
    """The scheme `noise` advised (an older report without one: min/max, per-channel weights, no
    equalization, bias correction or fused activations, as that emulator did)."""
    data = _noise_report(noise_dir)["scheme"]
    if data is None:
        return qs.Scheme(
            qs.WeightGranularity.PER_CHANNEL, equalization=False, bias_correction=False, fuse_activations=False
        )
    try:
        return qs.Scheme.from_json(data)
    except (KeyError, ValueError, TypeError) as error:
        raise UserError(
            f"--noise-dir {noise_dir}: {NOISE_REPORT} has a bad scheme ({error}); run `convtasnet-hailo noise` again"
        ) from None


def noise_dir_files(noise_dir: Path) -> dict[str, Path]:
    """The calibration tiles `noise` kept in ``noise_dir/calib`` (names inside that folder only)."""
    index = Path(noise_dir) / "calib" / "calibration.json"
    if not index.exists():
        raise UserError(f"--noise-dir {noise_dir}: no calib/calibration.json; run `convtasnet-hailo noise` again")
    data = read_json(index, "calibration index", "run `convtasnet-hailo noise` again")
    try:
        return {
            name: inside(index.parent, file, f"calibration file of {name}")
            for name, file in field(data, "files", dict, "calibration.json").items()
        }
    except RecordError as error:
        raise UserError(f"{index} is not a calibration index ({error}); run `convtasnet-hailo noise` again") from None


def noise_dir_ranges(noise_dir: Path, plan) -> dict[str, tuple[float, float]]:
    """The ranges ``hailo_quant`` uses for ``plan`` from a `noise` folder (its scheme applied)."""
    return dict(calibrated(list(plan.stages), noise_dir_files(noise_dir), read_noise_scheme(noise_dir)).ranges)
