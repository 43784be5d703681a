"""Settings a folder fixes: a bundle (``--bundle``) or an export (``--export-dir``) was made for one
tile width, hop, stream plan, chip and plan options, and is the one source of truth for them. A
setting the user gave that disagrees is refused in one line (never silently replaced); one the
user left out is taken from the folder. The CLI and the API both come through :func:`reconcile`.

Also which backend a bundle runs on when none is named (:func:`bundle_backend`)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import UserError
from .bundle import Bundle

log = logging.getLogger(__name__)

#: The settings a folder can fix, by option name as the user types it.
OPTIONS = {
    "tile_w": "--tile-w",
    "hop_ms": "--hop-ms",
    "plan": "--plan",
    "hw_arch": "--hw-arch",
    "device": "--device",
    "link": "--link",
    "block_chan": "--block-chan",
    "fuse": "--no-fuse",
    "device_norms": "--device-norms",
    "gln_in_stages": "--gln-in-stages",
    "halo_edges": "--halo-edges",
    "skip_sums_in_stages": "--skip-sums-in-stages",
}
#: The backends a bundle runs on: its HEFs on HailoRT, or its ONNX stages on the CPU.
BUNDLE_BACKENDS = ("hailo_runtime", "onnxruntime")


@dataclasses.dataclass(frozen=True)
class Fixed:
    """What a folder fixes (``values``: setting -> value), and how a message names it (``where``)."""

    where: str
    values: Mapping[str, Any]


def _plan_values(manifest) -> dict[str, Any]:
    options = manifest.plan.options
    return {
        "tile_w": manifest.tile_w,
        "block_chan": options.block_chan,
        "fuse": options.fuse,
        "device_norms": options.device_norms,
        "gln_in_stages": options.gln_in_stages,
        "halo_edges": options.halo_edges,
        "skip_sums_in_stages": options.skip_sums_in_stages,
    }


def fixed_by_export(export_dir: Path) -> Fixed | None:
    """The tile width and plan options of the export in ``export_dir``; None for a folder of
    several exports (``tile<W>/`` inside, onnxruntime picks one by the tile width)."""
    from ..export.manifest import MANIFEST_NAME, read_manifest

    if not (Path(export_dir) / MANIFEST_NAME).is_file():
        return None
    return Fixed(f"the export {export_dir}", _plan_values(read_manifest(Path(export_dir))))


def fixed_by_bundle(bundle: Bundle) -> Fixed:
    """Everything a bundle fixes: its export's tile width and plan options, its hop and stream
    plan (a separate bundle streams per hop of its tile), its chip."""
    from ..export.manifest import read_manifest

    manifest = read_manifest(bundle.export_dir)
    values = _plan_values(manifest)
    stride_ms = 1e3 * manifest.model.get("model_config", {}).get("stride", 0) / bundle.model.sample_rate
    values["hop_ms"] = bundle.hop_ms if bundle.job == "stream" else manifest.tile_w * stride_ms
    values["plan"] = bundle.stream_plan or "per-hop"
    values["hw_arch"] = bundle.hw_arch
    values["link"] = bundle.link
    if bundle.hw_arch in ("hailo8", "hailo8l"):  # the chips the device cost model predicts
        values["device"] = bundle.hw_arch
    return Fixed(f"the bundle {bundle.directory}", values)


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def reconcile(given: Mapping[str, Any], fixed: Fixed | None) -> dict[str, Any]:
    """``given`` (the settings the user passed) checked against ``fixed``: one that differs is a
    :class:`UserError` naming the option, both values and the fix; returns ``fixed``'s values
    (``given`` unchanged when nothing is fixed)."""
    if fixed is None:
        return dict(given)
    for key, value in given.items():
        if key not in fixed.values or value is None:
            continue
        wanted = fixed.values[key]
        same = abs(float(value) - float(wanted)) < 1e-9 if key == "hop_ms" and wanted is not None else value == wanted
        if not same:
            option = OPTIONS.get(key, key)
            shown = option if isinstance(value, bool) else f"{option} {_shown(value)}"
            raise UserError(
                f"{shown} disagrees with {fixed.where}, made for {key} {_shown(wanted)}: drop {option} (the "
                "folder's setting is taken), or rebuild it for the setting you want"
            )
    return {**dict(given), **{k: v for k, v in fixed.values.items() if k in OPTIONS}}


def hailort_imports() -> str | None:
    """HailoRT's version where its Python binding (hailo_platform) imports, else None."""
    from ..dfc.versions import installed_hailort

    try:
        import hailo_platform  # type: ignore[import-not-found]  # noqa: F401
    except Exception:  # absent, or a binding that fails at import
        return None
    return installed_hailort() or "(version unknown)"


def bundle_backend(bundle: Bundle, requested: str | None) -> str:
    """The backend a bundle runs on: ``requested`` when given (hailo_runtime or onnxruntime),
    else hailo_runtime where the bundle has HEFs and HailoRT imports, else onnxruntime, said in one
    log line."""
    if requested is not None and requested not in BUNDLE_BACKENDS:
        raise UserError(
            f"--bundle runs on hailo_runtime (its HEFs) or onnxruntime (its ONNX stages on the CPU), not "
            f"--backend {requested}: drop --backend, or pass one of those"
        )
    if requested == "hailo_runtime" and not bundle.has_hefs:
        raise UserError(
            f"the bundle {bundle.directory} holds no HEFs (built without a compile): pass --backend onnxruntime, "
            "or rebuild it with the compile"
        )
    if requested is not None:
        log.info(f"backend {requested} (as asked) for the bundle {bundle.directory}")
        return requested
    version = hailort_imports() if bundle.has_hefs else None
    if version is not None:
        log.info(f"backend hailo_runtime: the bundle's {bundle.hw_arch} HEFs on HailoRT {version}")
        return "hailo_runtime"
    why = "the bundle holds no HEFs" if not bundle.has_hefs else "HailoRT (hailo_platform) does not import here"
    log.info(f"backend onnxruntime (the CPU fallback): {why}; `doctor --bundle` checks the device")
    return "onnxruntime"
