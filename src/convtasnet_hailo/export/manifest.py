"""The export manifest (``manifest.json``): what each ONNX file is and how the host drives it.

Readable without torch or onnx (the compile driver and the runtime read it), so this module
imports only the standard library.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..files import sha256_file, write_text_atomically  # noqa: F401  (sha256_file: re-exported)
from ..plan.packing import Packing

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "convtasnet-hailo/manifest"
MANIFEST_VERSION = 1


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclasses.dataclass(frozen=True)
class PortEntry:
    name: str
    shape: tuple[int, ...]  # NCHW, H=1
    halo: tuple[int, int] = (0, 0)  # extra input frames left/right (inputs only)
    stride: int = 1
    span: int = 1


@dataclasses.dataclass(frozen=True)
class StageEntry:
    name: str
    file: str
    sha256: str
    role: str
    inputs: tuple[PortEntry, ...]
    outputs: tuple[PortEntry, ...]
    host_before: tuple[str, ...]
    host_after: tuple[str, ...]
    macs_per_frame: int
    block: dict[str, Any] | None = None  # channel-block origin (parent stage, conv, ranges)


@dataclasses.dataclass(frozen=True)
class Manifest:
    """One export: the model, the plan parameters and every stage file."""

    model: dict[str, Any]  # config, source, checkpoint sha256
    plan: dict[str, Any]  # path, tile_w, block_chan, opset, monolithic
    stages: tuple[StageEntry, ...]
    host_steps: tuple[dict[str, Any], ...] = ()
    created_by: str = ""
    packing: Packing | None = None  # the stages' HEFs and network groups (None: exports before packing)

    @property
    def tile_w(self) -> int:
        return self.plan["tile_w"]

    def stage(self, name: str) -> StageEntry:
        for entry in self.stages:
            if entry.name == name:
                return entry
        raise UserError(f"stage {name} is missing from the export manifest; re-export for this plan")

    def to_json(self) -> dict[str, Any]:
        return {"format": MANIFEST_FORMAT, "format_version": MANIFEST_VERSION, "created_by": self.created_by,
                "model": self.model, "plan": self.plan, "stages": [dataclasses.asdict(s) for s in self.stages],
                "host_steps": list(self.host_steps),
                **({"packing": self.packing.to_json()} if self.packing is not None else {})}

    def write(self, directory: Path) -> Path:
        path = directory / MANIFEST_NAME
        write_text_atomically(path, json.dumps(self.to_json(), indent=1) + "\n")
        return path


def _port(data: dict) -> PortEntry:
    return PortEntry(data["name"], tuple(data["shape"]), tuple(data.get("halo", (0, 0))),
                     data.get("stride", 1), data.get("span", 1))


def read_manifest(directory: Path) -> Manifest:
    """Reads ``directory/manifest.json``; a missing or foreign file is a :class:`UserError`."""
    path = Path(directory) / MANIFEST_NAME
    if Path(directory).is_file():
        raise UserError(f"{directory} is a file; pass the export folder (the one holding {MANIFEST_NAME})")
    if not path.is_file():
        raise UserError(f"no {MANIFEST_NAME} in {directory}: run `convtasnet-hailo export --out {directory}` first")
    try:
        data = json.loads(path.read_text())
        if data.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"format is {data.get('format')!r}")
        if data.get("format_version") != MANIFEST_VERSION:
            raise ValueError(f"format_version {data.get('format_version')} (this toolkit reads {MANIFEST_VERSION})")
        stages = tuple(
            StageEntry(s["name"], s["file"], s["sha256"], s.get("role", ""),
                       tuple(_port(p) for p in s["inputs"]), tuple(_port(p) for p in s["outputs"]),
                       tuple(s.get("host_before", ())), tuple(s.get("host_after", ())),
                       s.get("macs_per_frame", 0), s.get("block"))
            for s in data["stages"]
        )
        return Manifest(data["model"], data["plan"], stages, tuple(data.get("host_steps", ())),
                        data.get("created_by", ""), Packing.from_json(data["packing"]) if data.get("packing") else None)
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path} is not a readable convtasnet-hailo manifest ({exc}); re-export") from None


def verify_stage_file(directory: Path, entry: StageEntry) -> Path:
    """The stage's file, after checking it exists and its sha256 is the manifest's."""
    path = Path(directory) / entry.file
    if not path.is_file():
        raise UserError(f"stage {entry.name}: {path} is missing; re-run export into {directory}")
    actual = sha256_file(path)
    if actual != entry.sha256:
        raise UserError(f"stage {entry.name}: {path} was changed after export (sha256 {actual[:12]}... "
                        f"!= manifest {entry.sha256[:12]}...); re-run export")
    return path
