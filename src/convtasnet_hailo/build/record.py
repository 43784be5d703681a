"""The build folder's record, ``build.json``: what was asked (:class:`BuildSettings`), each step's
state with the hash of its inputs (:class:`StepState`, what ``--resume`` compares), and what each
step found (its ``outputs``, plain JSON). Written after every step, atomically."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..files import write_text_atomically

RECORD_FILE = "build.json"
FORMAT = "convtasnet-hailo-build"
FORMAT_VERSION = 1
JOBS = ("separate", "stream")
ARCHS = ("hailo8", "hailo8l")
LINKS = ("gen2", "gen3")

#: The steps in order (the report last, written wherever the build stops).
STEPS = ("choose", "export", "split", "noise", "compile", "bundle", "report")


@dataclasses.dataclass(frozen=True)
class BuildSettings:
    """What `build` was asked: the checkpoint ``model`` (as given), the chip, the calibration
    audio (files, folders or LibriMix CSVs), the job (``separate``, or ``stream`` with ``hop_ms``),
    the target (SI-SNRi loss against float on the held-out audio, dB), the PCIe link the device
    estimate prices, calibration tiles per stage input, the share of CALIB held out (seeded)."""

    model: str
    hw_arch: str
    calib: tuple[str, ...]
    job: str = "separate"
    hop_ms: float | None = None
    target_loss_db: float = 0.3
    link: str = "gen3"
    calib_count: int = 64
    heldout_share: float = 0.25
    seed: int = 0
    strict: bool = False

    def __post_init__(self) -> None:
        if self.job not in JOBS:
            raise UserError(f"--job {self.job!r}: choose {' or '.join(JOBS)}")
        if self.hw_arch not in ARCHS:
            raise UserError(
                f"--hw-arch {self.hw_arch!r}: build prices {' and '.join(ARCHS)} (the device cost model's chips); "
                "for hailo10h use export/noise/compile"
            )
        if self.link not in LINKS:
            raise UserError(f"--link {self.link!r}: choose {' or '.join(LINKS)}")
        if (self.job == "stream") != (self.hop_ms is not None):
            raise UserError("--job stream needs --hop-ms H (and --hop-ms is for --job stream only)")
        if not 0 < self.heldout_share < 1:
            raise UserError(f"--heldout-share {self.heldout_share}: a share between 0 and 1, e.g. 0.25")

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "calib": list(self.calib)}

    @classmethod
    def from_json(cls, data: dict, where: str) -> BuildSettings:
        names = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(data, dict) or not {"model", "hw_arch", "calib"} <= set(data):
            raise UserError(f"{where}: its settings are incomplete; start a new build with another --out")
        kept = {k: v for k, v in data.items() if k in names}
        return cls(**{**kept, "calib": tuple(kept["calib"])})


@dataclasses.dataclass(frozen=True)
class StepState:
    """One step: ``done``, ``failed`` or ``pending`` (waiting for a machine with the compiler),
    the hash of its inputs, seconds taken, a one-line ``detail`` and what it found."""

    status: str
    inputs: str
    seconds: float = 0.0
    detail: str = ""
    outputs: dict = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class BuildRecord:
    """``build.json``: the settings, the model (name, sha256, config) and every step's state."""

    settings: BuildSettings
    model: dict
    steps: dict[str, StepState] = dataclasses.field(default_factory=dict)
    created: str = dataclasses.field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))

    def done(self, step: str, inputs: str) -> bool:
        state = self.steps.get(step)
        return state is not None and state.status == "done" and state.inputs == inputs

    def outputs(self, step: str) -> dict:
        state = self.steps.get(step)
        return state.outputs if state is not None else {}

    def to_json(self) -> dict:
        from .._version import __version__

        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "toolkit_version": __version__,
            "created": self.created,
            "settings": self.settings.to_json(),
            "model": self.model,
            "steps": {name: state.to_json() for name, state in self.steps.items()},
        }

    def write(self, out: Path) -> None:
        write_text_atomically(out / RECORD_FILE, json.dumps(self.to_json(), indent=1, default=str) + "\n")


def read_record(out: Path) -> BuildRecord:
    """``out``/build.json, checked: a one-line error naming the file and the fix otherwise."""
    from ..records import read_json

    path = out / RECORD_FILE
    if not path.is_file():
        raise UserError(f"--resume {out}: no {RECORD_FILE} there; pass the folder a `build` wrote")
    data = read_json(path, "build record", "start a new build with another --out")
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("format_version") != FORMAT_VERSION:
        raise UserError(f"{path} is not a build record of format {FORMAT} v{FORMAT_VERSION}; start a new build")
    steps = {}
    for name, state in (data.get("steps") or {}).items():
        if name not in STEPS or not isinstance(state, dict):
            raise UserError(f"{path}: unknown step {name!r}; start a new build with another --out")
        steps[name] = StepState(**{k: state[k] for k in ("status", "inputs", "seconds", "detail", "outputs")})
    settings = BuildSettings.from_json(data.get("settings"), str(path))
    return BuildRecord(settings, data.get("model") or {}, steps, data.get("created", ""))


def inputs_hash(*parts: Any) -> str:
    """The sha256 of a step's inputs (JSON of ``parts``: settings, hashes of files, earlier outputs)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def folder_hash(folder: Path, suffixes: tuple[str, ...] = ()) -> str:
    """The sha256 over the names and contents of ``folder``'s files (those ending in ``suffixes``)."""
    from ..files import sha256_file

    if not folder.is_dir():
        return ""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and (not suffixes or p.name.endswith(suffixes)))
    return inputs_hash([(p.relative_to(folder).as_posix(), sha256_file(p)) for p in files])
