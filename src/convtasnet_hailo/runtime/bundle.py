"""The device bundle: one folder holding everything the Pi needs to run a model, and the one source
of truth for every setting there (tile width, hop, stream plan, chip, HEFs).

::

    device/
      bundle.json                 # Bundle (this module): format "convtasnet-hailo-bundle", version 1
      manifest.json               # the export's manifest, as export wrote it
      device_plan.json, device_plan.npz
      <stage>.onnx ...            # every stage: the CPU fallback (--backend onnxruntime)
      hailo/<arch>/*.hef          # the compile's HEFs
      hailo/<arch>/compile_manifest.json

No calibration arrays (.npy), HARs or logs, and no file over 50 MB. A bundle is read as untrusted
input (it travels by USB stick or scp): every file it holds is listed in ``bundle.json`` with its
sha256, every name stays inside the folder, every number is range-checked, and any departure is one
line naming the file and the fix. Torch-free: the device side imports it.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import os
import shutil
import tarfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from .._version import __version__
from ..errors import UserError
from ..files import sha256_file, write_text_atomically, written_atomically
from ..records import SHA256_HEX, RecordError, field, inside, read_json

log = logging.getLogger(__name__)

BUNDLE_FILE = "bundle.json"
BUNDLE_FORMAT = "convtasnet-hailo-bundle"
BUNDLE_VERSION = 1
#: No file of a bundle is larger (a HEF of a full-size stage is a few MB; a 4 GB calibration
#: array is what this keeps out).
MAX_FILE_BYTES = 50 * 1024 * 1024
HW_ARCHS = ("hailo8", "hailo8l", "hailo10h")
LINKS = ("gen2", "gen3")
JOBS = ("separate", "stream")
STREAM_PLANS = ("per-hop", "rf-windows")
#: The kinds of file a bundle holds; anything else (.npy, .har, .log, .pth, .pkl, ...) is refused.
KINDS = (".json", ".npz", ".onnx", ".hef")
COMPILE_MANIFEST = "compile_manifest.json"
#: A Python pickle begins with PROTO (0x80) and a protocol number 2..5: never loaded here, and
#: refused so that nothing downstream ever meets one in a bundle.
_PICKLE_HEADS = tuple(bytes([0x80, n]) for n in range(2, 6))
_ZIP_HEAD = b"PK\x03\x04"
#: Ranges every number of bundle.json is checked against (inclusive).
_RANGES = {
    "sample_rate": (1000, 384_000),
    "n_src": (1, 64),
    "tile_w": (1, 1 << 20),
    "hop_ms": (0.01, 60_000.0),
}


@dataclasses.dataclass(frozen=True)
class BundleModel:
    """The model the bundle runs: a name for people, the checkpoint's sha256, and what the audio side needs."""

    name: str
    sha256: str | None
    sample_rate: int
    n_src: int
    causal: bool


@dataclasses.dataclass(frozen=True)
class HailoRTNeed:
    """What the HEFs need: the DFC that compiled them and the oldest HailoRT (major.minor) that
    reads HEFs of that DFC (``dfc.versions``); None where the compile did not record its DFC."""

    major_minor: str | None
    dfc: str | None


@dataclasses.dataclass(frozen=True)
class BundleSettings:
    """What the build chose, for :func:`assemble_bundle`: the job (``separate`` runs the export's
    tile width; ``stream`` a hop of ``hop_ms`` with ``stream_plan``), the chip and its PCIe link,
    and the model's name (default: from the export's manifest)."""

    hw_arch: str
    link: str
    job: str = "separate"
    hop_ms: float | None = None
    stream_plan: str | None = None
    model_name: str | None = None


@dataclasses.dataclass(frozen=True)
class Bundle:
    """A checked bundle (:func:`read_bundle`).

    ``files``: relative posix path -> sha256 of every file but bundle.json."""

    directory: Path
    model: BundleModel
    job: str
    tile_w: int | None
    hop_ms: float | None
    stream_plan: str | None
    hw_arch: str
    link: str
    hailort: HailoRTNeed | None
    execution_mode: str
    files: Mapping[str, str]
    toolkit_version: str
    created: str

    @property
    def export_dir(self) -> Path:
        """The export inside the bundle (its manifest, device plan and stage ONNX): the folder itself."""
        return self.directory

    @property
    def hef_dir(self) -> Path:
        return self.directory / "hailo" / self.hw_arch

    @property
    def has_hefs(self) -> bool:
        return any(name.endswith(".hef") for name in self.files)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": BUNDLE_FORMAT,
            "format_version": BUNDLE_VERSION,
            "model": dataclasses.asdict(self.model),
            "job": self.job,
            "tile_w": self.tile_w,
            "hop_ms": self.hop_ms,
            "stream_plan": self.stream_plan,
            "hw_arch": self.hw_arch,
            "link": self.link,
            "hailort": dataclasses.asdict(self.hailort) if self.hailort is not None else None,
            "execution_mode": self.execution_mode,
            "files": dict(sorted(self.files.items())),
            "toolkit_version": self.toolkit_version,
            "created": self.created,
        }


def _number(data: Any, key: str, kind, where: str, nullable: bool = False) -> Any:
    value = field(data, key, (kind, type(None)) if nullable else kind, where)
    if value is None:
        return None
    low, high = _RANGES[key]
    if not low <= value <= high:
        raise RecordError(f"{where}.{key} is {value!r:.40}, outside {low}..{high}")
    return value


def _choice(data: Any, key: str, choices: tuple[str, ...], where: str, nullable: bool = False) -> Any:
    value = field(data, key, (str, type(None)) if nullable else str, where)
    if value is not None and value not in choices:
        raise RecordError(f"{where}.{key} is {value!r:.40}, not one of {', '.join(choices)}")
    return value


def _sha(value: Any, where: str) -> str:
    if not isinstance(value, str) or not SHA256_HEX.fullmatch(value):
        raise RecordError(f"{where} {value!r:.20} is not a sha256 (64 lower-case hex digits)")
    return value


def _model(data: Any) -> BundleModel:
    record = field(data, "model", dict, "bundle")
    sha = field(record, "sha256", (str, type(None)), "model")
    return BundleModel(
        field(record, "name", str, "model"),
        _sha(sha, "model.sha256") if sha is not None else None,
        _number(record, "sample_rate", int, "model"),
        _number(record, "n_src", int, "model"),
        field(record, "causal", bool, "model"),
    )


def _hailort(data: Any) -> HailoRTNeed | None:
    record = field(data, "hailort", (dict, type(None)), "bundle")
    if record is None:
        return None
    return HailoRTNeed(
        field(record, "major_minor", (str, type(None)), "hailort"), field(record, "dfc", (str, type(None)), "hailort")
    )


def _file_names(data: Any) -> dict[str, str]:
    listed = field(data, "files", dict, "bundle")
    for name, digest in listed.items():
        if PurePosixPath(name).as_posix() != name or "\\" in name or name.startswith("./") or name == BUNDLE_FILE:
            raise RecordError(f"files lists {name!r:.60}, not a plain relative posix path of the bundle")
        if PurePosixPath(name).suffix not in KINDS:
            raise RecordError(f"files lists {name!r:.60}: a bundle holds only {', '.join(KINDS)} files")
        _sha(digest, f"files[{name!r:.60}]")
    return dict(listed)


def _job_fields(data: Any) -> tuple[str, int | None, float | None, str | None]:
    job = _choice(data, "job", JOBS, "bundle")
    tile_w = _number(data, "tile_w", int, "bundle", nullable=True)
    hop_ms = _number(data, "hop_ms", float, "bundle", nullable=True)
    plan = _choice(data, "stream_plan", STREAM_PLANS, "bundle", nullable=True)
    if job == "separate" and tile_w is None:
        raise RecordError("job separate without a tile_w")
    if job == "stream" and (hop_ms is None or plan is None):
        raise RecordError("job stream without a hop_ms and a stream_plan")
    return job, tile_w, float(hop_ms) if hop_ms is not None else None, plan


def bundle_from_json(data: Any, directory: Path) -> Bundle:
    """The typed record of ``data`` (bundle.json's content), every field type- and range-checked
    (:class:`RecordError` otherwise); the files are not looked at."""
    if field(data, "format", str, "bundle", "") != BUNDLE_FORMAT:
        raise RecordError(f"format is {data.get('format')!r:.40}, not {BUNDLE_FORMAT!r}")
    if data.get("format_version") != BUNDLE_VERSION:
        raise RecordError(f"format_version {data.get('format_version')!r:.20} (this toolkit reads {BUNDLE_VERSION})")
    job, tile_w, hop_ms, plan = _job_fields(data)
    return Bundle(
        Path(directory),
        _model(data),
        job,
        tile_w,
        hop_ms,
        plan,
        _choice(data, "hw_arch", HW_ARCHS, "bundle"),
        _choice(data, "link", LINKS, "bundle"),
        _hailort(data),
        field(data, "execution_mode", str, "bundle", ""),
        _file_names(data),
        field(data, "toolkit_version", str, "bundle", ""),
        field(data, "created", str, "bundle", ""),
    )


def _check_content(path: Path, name: str) -> None:
    """A listed file: a regular file within the size limit that is not a pickle (an .npz a zip)."""
    if path.is_symlink() or not path.is_file():
        raise RecordError(f"{name} is missing or not a regular file")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise RecordError(f"{name} is {size / 2**20:.0f} MB, over the bundle's {MAX_FILE_BYTES >> 20} MB per file")
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head[:2] in _PICKLE_HEADS:
        raise RecordError(f"{name} holds a Python pickle; a bundle never does")
    if name.endswith(".npz") and head != _ZIP_HEAD:
        raise RecordError(f"{name} is not an .npz archive (no zip header)")


def _check_files(bundle: Bundle) -> None:
    """Every listed file inside the folder with its sha256, every file of the folder listed."""
    root = bundle.directory
    for name, digest in sorted(bundle.files.items()):
        path = inside(root, name, "files entry")
        _check_content(path, name)
        if sha256_file(path) != digest:
            raise RecordError(f"{name} was changed after the bundle was made (its sha256 is not the listed one)")
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if not p.is_dir() or p.is_symlink()}
    extra = sorted(present - set(bundle.files) - {BUNDLE_FILE})
    if extra:
        raise RecordError(f"{extra[0]} is in the folder but not listed in {BUNDLE_FILE} ({len(extra)} unlisted)")
    hef_root = f"hailo/{bundle.hw_arch}/"
    for name in bundle.files:
        if name.endswith(".hef") and not name.startswith(hef_root):
            raise RecordError(f"{name} is a HEF outside {hef_root} (the bundle is for {bundle.hw_arch})")
    needed = ["manifest.json"] + ([hef_root + COMPILE_MANIFEST] if bundle.has_hefs else [])
    missing = [n for n in needed if n not in bundle.files]
    if missing:
        raise RecordError(f"{missing[0]} is not listed; every bundle holds it")


def _check_consistent(bundle: Bundle) -> None:
    """bundle.json agrees with the export's manifest and the compile's manifest it carries."""
    from ..export.manifest import read_manifest

    manifest = read_manifest(bundle.directory)
    config = manifest.model.get("model_config") or {}
    for key in ("sample_rate", "n_src", "causal"):
        if key in config and config[key] != getattr(bundle.model, key):
            raise RecordError(f"model.{key} is {getattr(bundle.model, key)}, manifest.json's model {config[key]}")
    if bundle.job == "separate" and manifest.tile_w != bundle.tile_w:
        raise RecordError(f"tile_w is {bundle.tile_w}, manifest.json's export {manifest.tile_w}")
    if bundle.has_hefs:
        from ..dfc.manifest import read_compile_manifest

        compiled = read_compile_manifest(bundle.hef_dir)
        if compiled is not None and compiled.hw_arch != bundle.hw_arch:
            raise RecordError(f"hw_arch is {bundle.hw_arch}, the HEFs' {compiled.hw_arch}")


def read_bundle(directory: str | Path) -> Bundle:
    """The bundle in ``directory``, after every check (module docstring); a :class:`UserError`
    naming the file and the fix otherwise."""
    directory = Path(directory)
    if directory.is_file():
        fix = f"extract it first (tar xzf {directory}) and pass the folder" if tarfile.is_tarfile(directory) else ""
        raise UserError(
            f"--bundle {directory} is a file; {fix or 'pass the bundle folder (the one holding bundle.json)'}"
        )
    if not (directory / BUNDLE_FILE).exists():
        raise UserError(
            f"no {BUNDLE_FILE} in {directory}: pass the device/ folder `convtasnet-hailo build --out BUILD` wrote "
            "(BUILD/device)"
        )
    fix = "copy the bundle again from the build machine (BUILD/device), or rebuild it"
    try:
        inside(directory, BUNDLE_FILE, "the bundle record")
    except RecordError as exc:
        raise UserError(f"{exc}; {fix}") from None
    data = read_json(directory / BUNDLE_FILE, "device bundle record", fix)
    try:
        bundle = bundle_from_json(data, directory)
        _check_files(bundle)
        _check_consistent(bundle)
    except RecordError as exc:
        raise UserError(f"{directory / BUNDLE_FILE}: {exc}; {fix}") from None
    return bundle


def _refuse_kind(source: Path, name: str) -> None:
    suffix = PurePosixPath(name).suffix
    if suffix not in KINDS:
        raise UserError(
            f"{source} is a {suffix or 'suffix-less'} file; a device bundle holds only {', '.join(KINDS)} files "
            "(calibration arrays, HARs and logs stay in the build folder)"
        )
    size = source.stat().st_size
    if size > MAX_FILE_BYTES:
        raise UserError(
            f"{source} is {size / 2**20:.0f} MB, over the bundle's {MAX_FILE_BYTES >> 20} MB per file; "
            "a bundle holds only the device's files (re-export or recompile the stage smaller)"
        )


def _export_files(export_dir: Path) -> tuple[Any, list[str]]:
    """The export's manifest and the files the device reads from it (stages checked against their hashes)."""
    from ..export.manifest import MANIFEST_NAME, check_coverage, read_manifest, verify_stage_file

    manifest = read_manifest(export_dir)
    check_coverage(manifest, export_dir)
    for entry in manifest.stages:
        verify_stage_file(export_dir, entry)
    if manifest.device_plan is None:
        raise UserError(f"the export in {export_dir} holds no device plan: re-export it (not --monolithic)")
    names = [MANIFEST_NAME, manifest.device_plan["file"], manifest.device_plan["arrays"]]
    names += [entry.file for entry in manifest.stages]
    if manifest.stateful is not None:
        names.append(manifest.stateful.onnx_file)
        if manifest.stateful.steady_file:
            names.append(manifest.stateful.steady_file)
    return manifest, list(dict.fromkeys(names))


def _hef_files(hef_dir: Path, hw_arch: str, manifest: Any) -> tuple[list[str], HailoRTNeed]:
    """The compile's manifest and every HEF it records (hashes checked), as names under ``hef_dir``."""
    from ..dfc.manifest import read_compile_manifest, within
    from ..dfc.versions import hailort_for_dfc

    compiled = read_compile_manifest(hef_dir)
    if compiled is None:
        raise UserError(f"no {COMPILE_MANIFEST} in {hef_dir}: pass the folder `convtasnet-hailo compile` wrote")
    if compiled.hw_arch != hw_arch:
        raise UserError(f"{hef_dir} holds {compiled.hw_arch} HEFs, not {hw_arch}: pass the {hw_arch} compile")
    if compiled.plan is not None and compiled.plan != manifest.plan:
        raise UserError(f"{hef_dir} was compiled from another export (its plan differs): recompile this export")
    recorded = [a for a in compiled.stages.values()] + [p.artifacts for p in compiled.packs.values()]
    names = [COMPILE_MANIFEST]
    for artifacts in recorded:
        if not artifacts.hef_path:
            continue
        path = within(hef_dir, artifacts.hef_path, "a HEF of the compile")
        if not path.is_file() or (artifacts.hef_sha256 and sha256_file(path) != artifacts.hef_sha256):
            raise UserError(f"{path} is missing or changed since it was compiled (sha256); recompile")
        names.append(Path(os.path.relpath(path, hef_dir)).as_posix())
    if len(names) == 1:
        raise UserError(f"{hef_dir} holds no HEF: the compile made none (see its compile_summary.tsv)")
    return list(dict.fromkeys(names)), HailoRTNeed(hailort_for_dfc(compiled.dfc_version), compiled.dfc_version)


def _copy(source: Path, target: Path, name: str) -> str:
    _refuse_kind(source, name)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return sha256_file(target)


def _model_record(manifest: Any, settings: BundleSettings) -> dict[str, Any]:
    recorded = manifest.model
    config = recorded.get("model_config") or {}
    name = settings.model_name or (
        Path(recorded["model_path"]).stem if recorded.get("model_path") else str(recorded.get("model_source", ""))
    )
    return {
        "name": name or "unnamed model",
        "sha256": recorded.get("model_sha256"),
        "sample_rate": config.get("sample_rate", 8000),
        "n_src": config.get("n_src", 2),
        "causal": bool(config.get("causal", False)),
    }


def _record(manifest: Any, settings: BundleSettings, hailort: HailoRTNeed | None, files: dict) -> dict:
    packing = manifest.packing
    return {
        "format": BUNDLE_FORMAT,
        "format_version": BUNDLE_VERSION,
        "model": _model_record(manifest, settings),
        "job": settings.job,
        "tile_w": manifest.tile_w if settings.job == "separate" else None,
        "hop_ms": settings.hop_ms if settings.job == "stream" else None,
        "stream_plan": settings.stream_plan if settings.job == "stream" else None,
        "hw_arch": settings.hw_arch,
        "link": settings.link,
        "hailort": dataclasses.asdict(hailort) if hailort is not None else None,
        "execution_mode": packing.mode.value if packing is not None else "",
        "files": dict(sorted(files.items())),
        "toolkit_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def _prepare_out(out_dir: Path) -> Path:
    """A fresh staging folder beside ``out_dir``; ``out_dir`` itself may be absent, empty, or an
    earlier bundle (replaced), nothing else."""
    if out_dir.exists():
        if not out_dir.is_dir() or out_dir.is_symlink():
            raise UserError(f"{out_dir} is not a folder; pass a new folder for the bundle")
        if any(out_dir.iterdir()) and not (out_dir / BUNDLE_FILE).is_file():
            raise UserError(f"{out_dir} holds files and no {BUNDLE_FILE}: pass a new or empty folder for the bundle")
    staging = out_dir.with_name(f".{out_dir.name}.{os.getpid()}.partial")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    return staging


def assemble_bundle(
    export_dir: str | Path, hef_dir: str | Path | None, settings: BundleSettings, out_dir: str | Path
) -> Bundle:
    """Writes the bundle of ``export_dir`` (and the HEFs of ``hef_dir``, the compile's
    ``hailo/<arch>`` folder; None: a CPU-only bundle) into ``out_dir``: only the files the device
    reads, each at most 50 MB, bundle.json last. Staged beside ``out_dir`` and renamed into place,
    so ``out_dir`` is never half a bundle. Returns the bundle as :func:`read_bundle` reads it."""
    export_dir, out_dir = Path(export_dir), Path(out_dir)
    manifest, export_names = _export_files(export_dir)
    hef_names, hailort = ([], None) if hef_dir is None else _hef_files(Path(hef_dir), settings.hw_arch, manifest)
    probe = _record(manifest, settings, hailort, {})
    try:
        bundle_from_json(probe, out_dir)
    except RecordError as exc:
        raise UserError(f"cannot make a bundle of {export_dir}: {exc}") from None
    try:
        sources = {name: inside(export_dir, name, "export file") for name in export_names}
    except RecordError as exc:
        raise UserError(f"cannot make a bundle of {export_dir}: {exc}") from None
    sources.update({f"hailo/{settings.hw_arch}/{name}": Path(hef_dir) / name for name in hef_names})
    staging = _prepare_out(out_dir)
    try:
        files = {name: _copy(source, staging / name, name) for name, source in sources.items()}
        write_text_atomically(
            staging / BUNDLE_FILE, json.dumps(_record(manifest, settings, hailort, files), indent=1) + "\n"
        )  # last
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("bundle %s: %d files, %s", out_dir, len(files), "with HEFs" if hef_names else "CPU stages only")
    return read_bundle(out_dir)


def write_bundle_archive(bundle_dir: str | Path, tar_path: str | Path) -> Path:
    """``tar_path`` (.tar.gz) holding the checked bundle of ``bundle_dir`` under one folder named
    like it (``device/...``): relative names only, regular files only, owner and times zeroed."""
    bundle = read_bundle(bundle_dir)
    top = Path(bundle_dir).resolve().name
    if top in ("", ".", "..") or not top.isprintable():
        raise UserError(f"{bundle_dir}: the bundle folder needs a plain name for the archive")
    names = sorted([*bundle.files, BUNDLE_FILE])
    with written_atomically(tar_path) as temporary, tarfile.open(temporary, "w:gz") as archive:
        for name in names:
            info = archive.gettarinfo(str(bundle.directory / name), arcname=f"{top}/{name}")
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            info.mode = 0o644
            with open(bundle.directory / name, "rb") as handle:
                archive.addfile(info, handle)
    return Path(tar_path)
