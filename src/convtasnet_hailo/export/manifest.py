"""The export manifest (``manifest.json``): what each ONNX file is and how the host drives it.

Readable without torch or onnx (the compile driver and the runtime read it), so this module
imports only the standard library and the toolkit's light modules. Read as untrusted input:
typed fields, stage files only inside the export folder (``records``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..files import sha256_file, write_text_atomically
from ..guard import regular_file
from ..plan.options import PlanRecord
from ..plan.packing import Packing
from ..records import SHA256_HEX, RecordError, field, inside, items, read_json
from .stateful import StatefulRecord

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
    plan: PlanRecord
    stages: tuple[StageEntry, ...]
    host_steps: tuple[dict[str, Any], ...] = ()
    created_by: str = ""
    packing: Packing | None = None  # the stages' HEFs and network groups (None: exports before packing)
    #: the plan for the device side (``plan.serialize``): {"file", "sha256", "arrays", "arrays_sha256"}
    device_plan: dict[str, str] | None = None
    #: the stateful streaming graph written beside the stages (``export --stateful``), or None
    stateful: StatefulRecord | None = None

    @property
    def tile_w(self) -> int:
        return self.plan.tile_w

    def stage(self, name: str) -> StageEntry:
        for entry in self.stages:
            if entry.name == name:
                return entry
        raise UserError(f"stage {name} is missing from the export manifest; re-export for this plan")

    def to_json(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "format_version": MANIFEST_VERSION,
            "created_by": self.created_by,
            "model": self.model,
            "plan": self.plan.to_json(),
            "stages": [dataclasses.asdict(s) for s in self.stages],
            "host_steps": list(self.host_steps),
            **({"packing": self.packing.to_json()} if self.packing is not None else {}),
            **({"device_plan": self.device_plan} if self.device_plan is not None else {}),
            **({"stateful": self.stateful.to_json()} if self.stateful is not None else {}),
        }

    def write(self, directory: Path) -> Path:
        path = directory / MANIFEST_NAME
        write_text_atomically(path, json.dumps(self.to_json(), indent=1) + "\n")
        return path


#: The largest dimension, halo, stride or span a manifest port may hold (far above any export's).
MAX_PORT = 1 << 24


def _ints(data: Any, where: str, low: int = 0) -> tuple[int, ...]:
    values = tuple(items(data, int, where))
    for index, value in enumerate(values):
        if not low <= value <= MAX_PORT:
            raise RecordError(f"{where}[{index}] is {value}, outside {low}..{MAX_PORT}")
    return values


def _count(data: Any, key: str, where: str, low: int, high: int = MAX_PORT) -> int:
    value = field(data, key, int, where, low)
    if not low <= value <= high:
        raise RecordError(f"{where}.{key} is {value}, outside {low}..{high}")
    return value


def _port(data: Any, where: str) -> PortEntry:
    halo = _ints(field(data, "halo", list, where, [0, 0]), f"{where}.halo")
    if len(halo) != 2:
        raise RecordError(f"{where}.halo has {len(halo)} values, not 2")
    return PortEntry(
        field(data, "name", str, where),
        _ints(field(data, "shape", list, where), f"{where}.shape", low=1),
        halo,
        _count(data, "stride", where, 1),
        _count(data, "span", where, 1),
    )


def _stage(data: Any, where: str, directory: Path) -> StageEntry:
    name = field(data, "name", str, where)
    where = f"stage {name}"
    file = field(data, "file", str, where)
    inside(directory, file, f"{where}: file")  # never a file outside the export folder
    digest = field(data, "sha256", str, where)
    if not SHA256_HEX.fullmatch(digest):
        raise RecordError(f"{where}.sha256 {digest[:20]!r} is not a sha256 (64 hex digits)")
    return StageEntry(
        name,
        file,
        digest,
        field(data, "role", str, where, ""),
        tuple(_port(p, f"{where}.inputs[{i}]") for i, p in enumerate(field(data, "inputs", list, where))),
        tuple(_port(p, f"{where}.outputs[{i}]") for i, p in enumerate(field(data, "outputs", list, where))),
        tuple(items(field(data, "host_before", list, where, []), str, f"{where}.host_before")),
        tuple(items(field(data, "host_after", list, where, []), str, f"{where}.host_after")),
        _count(data, "macs_per_frame", where, 0, 1 << 50),
        field(data, "block", (dict, type(None)), where, None),
    )


def _manifest(data: Any, directory: Path) -> Manifest:
    if field(data, "format", str, "the manifest", "") != MANIFEST_FORMAT:
        raise RecordError(f"format is {data.get('format')!r}")
    if data.get("format_version") != MANIFEST_VERSION:
        raise RecordError(f"format_version {data.get('format_version')} (this toolkit reads {MANIFEST_VERSION})")
    plan = PlanRecord.from_json(field(data, "plan", dict, "the manifest"))
    stages = tuple(
        _stage(s, f"stages[{i}]", directory) for i, s in enumerate(field(data, "stages", list, "the manifest"))
    )
    host_steps = tuple(items(field(data, "host_steps", list, "the manifest", []), dict, "host_steps"))
    packing = field(data, "packing", (dict, type(None)), "the manifest", None)
    try:
        packing = Packing.from_json(packing) if packing else None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RecordError(f"packing is not a packing record ({type(exc).__name__}: {exc})") from None
    device_plan = field(data, "device_plan", (dict, type(None)), "the manifest", None)
    if device_plan is not None:
        for key in ("file", "sha256", "arrays", "arrays_sha256"):
            field(device_plan, key, str, "device_plan")
        for key in ("file", "arrays"):
            inside(directory, device_plan[key], f"device_plan.{key}")
    return Manifest(
        field(data, "model", dict, "the manifest"),
        plan,
        stages,
        host_steps,
        field(data, "created_by", str, "the manifest", ""),
        packing,
        device_plan,
        _stateful(data),
    )


def _stateful(data: Any) -> StatefulRecord | None:
    """The stateful graph's record the manifest carries (None: exported without ``--stateful``)."""
    record = field(data, "stateful", (dict, type(None)), "the manifest", None)
    return None if record is None else StatefulRecord.from_json(record)


def read_manifest(directory: Path) -> Manifest:
    """Reads ``directory/manifest.json`` as untrusted input: every field checked against its typed
    record, every stage file a name inside ``directory``; a missing or foreign file is a
    :class:`UserError`."""
    path = Path(directory) / MANIFEST_NAME
    if Path(directory).is_file():
        raise UserError(f"{directory} is a file; pass the export folder (the one holding {MANIFEST_NAME})")
    if not path.exists():
        raise UserError(f"no {MANIFEST_NAME} in {directory}: run `convtasnet-hailo export --out {directory}` first")
    data = read_json(path, "convtasnet-hailo manifest", "re-export")
    try:
        return _manifest(data, Path(directory))
    except RecordError as exc:
        raise UserError(f"{path} is not a readable convtasnet-hailo manifest ({exc}); re-export") from None


def check_coverage(manifest: Manifest, directory: Path) -> None:
    """The manifest describes a whole plan: at least one stage, as many as the plan recorded,
    each once, and what the path delivers made by some step (the packing is judged against the
    runtime limits by `check` itself)."""
    where = f"{Path(directory) / MANIFEST_NAME}"
    if not manifest.stages:
        raise UserError(f"{where} lists no stages; an export always has some: re-export")
    names = [s.name for s in manifest.stages]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UserError(f"{where} lists stage {twice[0]} more than once; re-export")
    recorded = manifest.plan.n_stages
    if recorded is not None and recorded != len(names):
        raise UserError(
            f"{where} lists {len(names)} stage(s) and its plan recorded {recorded}: stages are missing "
            "or were added; re-export"
        )
    if not manifest.plan.monolithic:
        produced = {p.name for s in manifest.stages for p in s.outputs} | {
            n for h in manifest.host_steps for n in (h.get("outputs") or ()) if isinstance(n, str)
        }
        missing = [n for n in manifest.plan.path.outputs if n not in produced]
        if missing:
            raise UserError(
                f"{where}: no stage or host step makes {missing[0]}, what the {manifest.plan.path.value} "
                "path delivers; the stages do not cover the plan: re-export"
            )


def verify_stage_file(directory: Path, entry: StageEntry) -> Path:
    """The stage's file, after checking it is a regular file inside ``directory`` and its sha256
    is the manifest's."""
    try:
        path = inside(Path(directory), entry.file, f"stage {entry.name}: file")
    except RecordError as exc:
        raise UserError(f"{Path(directory) / MANIFEST_NAME}: {exc}; re-export") from None
    if not path.exists():
        raise UserError(f"stage {entry.name}: {path} is missing; re-run export into {directory}")
    regular_file(path, f"stage {entry.name}:", "re-run export")
    actual = sha256_file(path)
    if actual != entry.sha256:
        raise UserError(
            f"stage {entry.name}: {path} was changed after export (sha256 {actual[:12]}... "
            f"!= manifest {entry.sha256[:12]}...); re-run export"
        )
    return path


def _ports_text(ports) -> str:
    return ", ".join(f"{name} " + "x".join(str(d) for d in shape) for name, shape in ports) or "none"


def check_stage_ports(entry: StageEntry, path: Path, inputs, outputs) -> None:
    """The ports a stage file declares are the manifest's: ``inputs``/``outputs`` are (name, shape)
    pairs in the file's order, a dimension that is not an integer (a symbolic batch) matches any.
    Two stage files swapped with their hashes updated pass the sha256 check; this one they fail."""
    for kind, found, recorded in (("inputs", inputs, entry.inputs), ("outputs", outputs, entry.outputs)):
        wanted = [(p.name, tuple(p.shape)) for p in recorded]
        given = [(name, tuple(shape)) for name, shape in found]
        same = len(given) == len(wanted) and all(
            g[0] == w[0]
            and len(g[1]) == len(w[1])
            and all(not isinstance(a, int) or a == b for a, b in zip(g[1], w[1], strict=True))
            for g, w in zip(given, wanted, strict=True)
        )
        if not same:
            raise UserError(
                f"stage {entry.name}: {path} has {kind} {_ports_text(given)}, the manifest {_ports_text(wanted)} "
                "(stage files swapped or replaced?); re-export"
            )


def check_plan_matches(manifest: Manifest, plan, where: Path) -> None:
    """The device plan's stages are the manifest's: the same names, and ports of the same names and
    channels (both files are hashed by the manifest, but an edit may update both hashes)."""
    planned = {s.name: s for s in plan.stages}
    listed = {s.name: s for s in manifest.stages}
    if set(planned) != set(listed):
        odd = sorted(set(planned) ^ set(listed))[0]
        raise UserError(f"{where}: stage {odd} is in only one of the device plan and the manifest; re-export")
    for name, stage in planned.items():
        entry = listed[name]
        for kind, ports, recorded in (
            ("inputs", stage.inputs, entry.inputs),
            ("outputs", stage.outputs, entry.outputs),
        ):
            mine = [(p.name, p.channels) for p in ports]
            theirs = [(p.name, p.shape[1] if len(p.shape) > 1 else None) for p in recorded]
            if mine != theirs:
                raise UserError(
                    f"{where}: stage {name} {kind} are {mine} in the device plan and {theirs} in the manifest "
                    "(name, channels); re-export"
                )


def read_device_plan(directory: Path, manifest: Manifest | None = None):
    """The plan an export was made from, read from its ``device_plan`` files after checking their
    sha256 against the manifest: what the device side runs without the model (no torch)."""
    from ..plan.serialize import read_plan

    manifest = manifest or read_manifest(directory)
    record = manifest.device_plan
    if record is None:
        raise UserError(
            f"the export in {directory} holds no device plan (made before it existed, or --monolithic): "
            "re-export it, or pass --model with the checkpoint it came from"
        )
    payload = []
    for key in ("file", "arrays"):
        path = inside(Path(directory), record[key], f"device_plan.{key}")
        regular_file(path, "device plan file", "re-export")
        data = path.read_bytes()
        if sha256_bytes(data) != record[f"{'sha256' if key == 'file' else 'arrays_sha256'}"]:
            raise UserError(f"{path} was changed after export (its sha256 is not the manifest's); re-export")
        payload.append(data)
    plan = read_plan(Path(directory), *payload)
    check_plan_matches(manifest, plan, Path(directory) / str(record["file"]))
    return plan
