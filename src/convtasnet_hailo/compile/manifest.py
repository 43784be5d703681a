"""``compile_manifest.json``: what `compile` made for each stage of an export, as a typed file
(like the export's ``manifest.json``). Written by the grid side, read by the Hailo backends."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..files import write_text_atomically

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
