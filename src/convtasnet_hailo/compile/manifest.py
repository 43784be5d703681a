"""``compile_manifest.json``: what `compile` made for each stage of an export, as a typed file
(like the export's ``manifest.json``). Written by the grid side, read by the Hailo backends."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..files import sha256_file, write_text_atomically

COMPILE_MANIFEST = "compile_manifest.json"
FORMAT = "convtasnet-hailo-compile-manifest"
VERSION = 1


@dataclasses.dataclass(frozen=True)
class StageArtifacts:
    """One stage's compile outcome: its optimized HAR and HEF (with the HEF's sha256)."""

    status: str
    hef_success: bool = False
    hef_path: str | None = None
    hef_sha256: str | None = None
    har_path: str | None = None
    exception_type: str | None = None
    failure_head: str | None = None
    seconds_parse: float | None = None
    seconds_optimize: float | None = None
    seconds_compile: float | None = None
    sdk_version: str | None = None
    log: str | None = None
    hef_log: str | None = None


@dataclasses.dataclass(frozen=True)
class CompileManifest:
    hw_arch: str
    tile_w: int
    block_chan: int | None
    variant: str
    stages: dict[str, StageArtifacts]

    def write(self, directory: Path) -> Path:
        path = Path(directory) / COMPILE_MANIFEST
        data = {"format": FORMAT, "format_version": VERSION, **dataclasses.asdict(self)}
        write_text_atomically(path, json.dumps(data, indent=1, default=str) + "\n")
        return path


def read_compile_manifest(directory: Path) -> CompileManifest | None:
    """The manifest in ``directory``, None when there is none; an unreadable one is an error."""
    path = Path(directory) / COMPILE_MANIFEST
    if not path.is_file():
        return None
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        fields = {f.name for f in dataclasses.fields(StageArtifacts)}
        stages = {name: StageArtifacts(**{k: v for k, v in info.items() if k in fields})
                  for name, info in data["stages"].items()}
        return CompileManifest(data["hw_arch"], data["tile_w"], data.get("block_chan"), data.get("variant", ""),
                               stages)
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path} is not a readable compile manifest ({exc}); run `convtasnet-hailo compile` again")


ARTIFACT_KINDS = {"hef": "HEF", "har": "optimized HAR"}


def _recorded(directory: Path, kind: str) -> dict[str, Path]:
    """stage -> artifact as `compile` (hashes checked) or a grid's covering manifest records it."""
    compiled = read_compile_manifest(directory)
    found: dict[str, Path] = {}
    if compiled is not None:
        for name, artifacts in compiled.stages.items():
            recorded = artifacts.hef_path if kind == "hef" else artifacts.har_path
            if not recorded:
                continue
            path = Path(recorded)
            if kind == "hef" and artifacts.hef_sha256 and path.is_file() and sha256_file(path) != artifacts.hef_sha256:
                raise UserError(f"stage {name}: {path.name} changed since it was compiled (sha256 differs from "
                                f"{COMPILE_MANIFEST}); recompile")
            found[name] = path
    elif kind == "hef" and (directory / "covering_manifest.json").is_file():
        stages = json.loads((directory / "covering_manifest.json").read_text()).get("stages") or {}
        found = {name: Path(info["hef"]) for name, info in stages.items() if info.get("hef")}
    return found


def stage_artifacts(directory: Path, stages: list[str], kind: str) -> dict[str, Path]:
    """stage -> its HEF (``kind="hef"``) or optimized HAR (``"har"``) in ``directory``: from
    ``compile_manifest.json`` (written by `compile`), a grid's ``covering_manifest.json``, or
    ``<stage>.hef`` / ``<stage>_t*.<kind>`` files. A stage without one is an error naming it."""
    what = ARTIFACT_KINDS[kind]
    directory = Path(directory)
    if not directory.is_dir():
        raise UserError(f"--hef-dir {directory} is not a folder")
    found = _recorded(directory, kind)
    for stage in stages:
        if stage not in found:
            hits = sorted(directory.glob(f"{stage}.{kind}")) or sorted(
                p for p in directory.glob(f"{stage}_t*.{kind}") if not p.name.endswith("_parsed.har"))
            if hits:
                found[stage] = hits[0]
    missing = [s for s in stages if s not in found or not found[s].is_file()]
    if missing:
        raise UserError(f"stage {missing[0]} has no {what} in {directory} ({len(missing)} of {len(stages)} missing); "
                        "run `convtasnet-hailo compile` for this export")
    return {s: found[s] for s in stages}
