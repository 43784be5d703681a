"""``compile_manifest.json``: what `compile` made for each stage of an export and each pack (one
HEF of several stages joined as networks), as a typed file (like the export's ``manifest.json``).
Written by the grid side, read by the Hailo backends."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..files import sha256_file, write_text_atomically
from ..plan.options import PlanRecord

COMPILE_MANIFEST = "compile_manifest.json"
FORMAT = "convtasnet-hailo-compile-manifest"
VERSION = 5  # 2: packs; 3: execution mode, multi-context flags; 4: dfc_version; 5: written after every job
#: (entries "pending" until their job finishes)


@dataclasses.dataclass(frozen=True)
class StageArtifacts:
    """One stage's (or pack's) compile outcome: its optimized HAR and HEF (with the HEF's sha256;
    a stage of a pack has only the HAR: its HEF is the pack's)."""

    status: str
    har_success: bool = False
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
    #: the HEF's network group is multi-context (read from the HEF with HailoRT where compiled;
    #: None: not known there)
    multi_context: bool | None = None


@dataclasses.dataclass(frozen=True)
class PackArtifacts:
    """One joined HEF: its stages (one network each, in order) and its compile outcome."""

    stages: tuple[str, ...]
    artifacts: StageArtifacts


@dataclasses.dataclass(frozen=True)
class CompileManifest:
    hw_arch: str
    tile_w: int
    block_chan: int | None
    variant: str
    stages: dict[str, StageArtifacts]
    packs: dict[str, PackArtifacts] = dataclasses.field(default_factory=dict)
    execution_mode: str = ""  # the export's packing mode (plan.packing.ExecutionMode)
    plan: PlanRecord | None = None  # the export's plan record (None: a grid's covering manifest)
    #: the Dataflow Compiler that made the HEFs (``hailo_sdk_client.__version__``; compile.versions)
    dfc_version: str | None = None

    def multi_context_packs(self) -> list[str]:
        """Joined packs whose HEF is known to be multi-context (activated_packs cannot run them)."""
        return sorted(name for name, pack in self.packs.items() if pack.artifacts.multi_context)

    def write(self, directory: Path) -> Path:
        path = Path(directory) / COMPILE_MANIFEST
        data = {
            "format": FORMAT,
            "format_version": VERSION,
            **dataclasses.asdict(self),
            "plan": self.plan.to_json() if self.plan is not None else None,
        }
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
        typed = lambda info: StageArtifacts(**{k: v for k, v in info.items() if k in fields})  # noqa: E731
        stages = {name: typed(info) for name, info in data["stages"].items()}
        packs = {
            name: PackArtifacts(tuple(info["stages"]), typed(info["artifacts"]))
            for name, info in (data.get("packs") or {}).items()
        }
        return CompileManifest(
            data["hw_arch"],
            data["tile_w"],
            data.get("block_chan"),
            data.get("variant", ""),
            stages,
            packs,
            data.get("execution_mode", ""),
            PlanRecord.from_json(data["plan"]) if data.get("plan") is not None else None,
            data.get("dfc_version"),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(
            f"{path} is not a readable compile manifest ({exc}); run `convtasnet-hailo compile` again"
        ) from None


#: The fields of an artifacts record that name files: recorded relative to the manifest's folder,
#: which the reader resolves them against (``within``), so the folder can be moved (compiled on one
#: machine, run on another) and an --export-dir given relative to the working directory works.
PATH_FIELDS = ("hef_path", "har_path", "log", "hef_log")
#: The status of a stage or pack whose job has not finished (yet): the skeleton a compile writes first.
PENDING = "pending"


def _inside(out_dir: Path, path: str) -> str:
    """``path`` (as the job wrote it, relative to the working directory or absolute) relative to
    ``out_dir`` when it lies there; unchanged otherwise (the reader refuses it then)."""
    absolute, root = Path(os.path.abspath(path)), Path(os.path.abspath(out_dir))
    return absolute.relative_to(root).as_posix() if root in absolute.parents else path


def row_artifacts(out_dir: Path, row: dict) -> StageArtifacts:
    """A summary row (``dfc.pending.summary_row``) as the manifest records it: paths relative to
    ``out_dir``, the HEF's sha256."""
    fields = {f.name for f in dataclasses.fields(StageArtifacts)} - {"hef_sha256"}
    recorded = {
        k: _inside(out_dir, row[k]) if k in PATH_FIELDS else row[k] for k in fields if row.get(k) not in (None, "")
    }
    recorded.setdefault("status", row["status"])
    return StageArtifacts(**recorded, hef_sha256=sha256_file(Path(row["hef_path"])) if row.get("hef_path") else None)


def record_rows(out_dir: Path, rows: list[dict]) -> None:
    """Each finished job's row written into ``out_dir``'s manifest at once (a stage's or a pack's
    entry, by its name), so a compile killed part way leaves a true record; the DFC version is
    that of every finished entry. Torch-free (``python -m convtasnet_hailo.dfc.worker --pending``)."""
    manifest = read_compile_manifest(out_dir)
    if manifest is None:
        raise UserError(f"{out_dir} holds no {COMPILE_MANIFEST}; run `convtasnet-hailo compile` again")
    stages, packs = dict(manifest.stages), dict(manifest.packs)
    for row in rows:
        name, artifacts = row["stage"], row_artifacts(out_dir, row)
        if name in packs:
            packs[name] = PackArtifacts(packs[name].stages, artifacts)
        else:
            stages[name] = artifacts
    entries = list(stages.values()) + [p.artifacts for p in packs.values()]
    versions = sorted({a.sdk_version for a in entries if a.sdk_version and a.status != PENDING})
    dataclasses.replace(manifest, stages=stages, packs=packs, dfc_version=", ".join(versions) or None).write(out_dir)


ARTIFACT_KINDS = {"hef": "HEF", "har": "optimized HAR"}


def within(directory: Path, recorded: str, what: str) -> Path:
    """A path a manifest in ``directory`` records, refused unless it stays inside ``directory``
    (symlinks followed): an untrusted manifest never makes the runtime read other files."""
    root = Path(os.path.realpath(directory))
    path = Path(recorded) if Path(recorded).is_absolute() else Path(directory) / recorded
    real = Path(os.path.realpath(path))
    if real != root and root not in real.parents:
        raise UserError(
            f"{what}: {recorded} lies outside {directory}; a manifest there may only name files inside "
            "it (recompile into this folder)"
        )
    return path


def _recorded(directory: Path, kind: str) -> dict[str, Path]:
    """stage -> artifact as `compile` (hashes checked) or a grid's covering manifest records it."""
    compiled = read_compile_manifest(directory)
    found: dict[str, Path] = {}
    if compiled is not None:
        for name, artifacts in compiled.stages.items():
            recorded = artifacts.hef_path if kind == "hef" else artifacts.har_path
            if not recorded:
                continue
            found[name] = _checked(
                within(directory, recorded, f"stage {name}"),
                artifacts.hef_sha256 if kind == "hef" else None,
                f"stage {name}",
            )
    elif kind == "hef" and (directory / "covering_manifest.json").is_file():
        stages = json.loads((directory / "covering_manifest.json").read_text()).get("stages") or {}
        found = {
            name: within(directory, info["hef"], f"stage {name}")
            for name, info in stages.items()
            if isinstance(info, dict) and isinstance(info.get("hef"), str) and info["hef"]
        }
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
                p for p in directory.glob(f"{stage}_t*.{kind}") if not p.name.endswith("_parsed.har")
            )
            if hits:
                found[stage] = hits[0]
    missing = [s for s in stages if s not in found or not found[s].is_file()]
    if missing:
        raise UserError(
            f"stage {missing[0]} has no {what} in {directory} ({len(missing)} of {len(stages)} missing); "
            "run `convtasnet-hailo compile` for this export"
        )
    return {s: found[s] for s in stages}


@dataclasses.dataclass(frozen=True)
class HefFile:
    """A HEF to configure and the stages it runs, one network each, in its network order."""

    path: Path
    stages: tuple[str, ...]
    dfc_version: str | None = None  # as compile_manifest.json records it (None: not recorded)


def _checked(path: Path, sha256: str | None, what: str) -> Path:
    if sha256 and path.is_file() and sha256_file(path) != sha256:
        raise UserError(
            f"{what}: {path.name} changed since it was compiled (sha256 differs from {COMPILE_MANIFEST}); recompile"
        )
    return path


def hef_files(directory: Path, stages: list[str]) -> list[HefFile]:
    """The HEFs that run ``stages``: the joined packs `compile` recorded (hashes checked), and a
    HEF of its own for every other stage (``stage_artifacts``), in plan order."""
    directory = Path(directory)
    compiled = read_compile_manifest(directory) if directory.is_dir() else None
    packs = [
        (name, pack)
        for name, pack in (compiled.packs if compiled else {}).items()
        if pack.artifacts.hef_path and set(pack.stages) <= set(stages)
    ]
    in_pack = {stage: (name, pack) for name, pack in packs for stage in pack.stages}
    alone = stage_artifacts(directory, [s for s in stages if s not in in_pack], "hef")
    dfc = compiled.dfc_version if compiled else None
    files, seen = [], set()
    for stage in stages:
        if stage in in_pack:
            name, pack = in_pack[stage]
            if name not in seen:
                seen.add(name)
                path = _checked(
                    within(directory, pack.artifacts.hef_path, f"pack {name}"),
                    pack.artifacts.hef_sha256,
                    f"pack {name}",
                )
                if not path.is_file():
                    raise UserError(f"pack {name}: its HEF {path} is missing; run `convtasnet-hailo compile` again")
                files.append(HefFile(path, pack.stages, dfc or pack.artifacts.sdk_version))
        else:
            recorded = compiled.stages.get(stage) if compiled else None
            files.append(HefFile(alone[stage], (stage,), dfc or (recorded.sdk_version if recorded else None)))
    return files
