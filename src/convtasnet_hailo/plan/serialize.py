"""A stage plan on disk, for the device side: ``device_plan.json`` (every stage, port, op and host
step, with its parameters) and ``device_plan.npz`` (the arrays: weights, gamma/beta), written by
`export` beside the stage files. Reading it needs neither torch nor onnx.

Read as untrusted input: only the plan's own types are built (a fixed registry, never a name
looked up elsewhere), the arrays are loaded with ``allow_pickle=False``, and both files are
checked against the hashes the manifest records before they are read.
"""

from __future__ import annotations

import dataclasses
import enum
import io
import json
import types
import typing
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from ..files import write_bytes_atomically, write_text_atomically
from ..model.config import ConvTasNetConfig, EncoderActivation, MaskAct, NormType
from ..records import RecordError
from . import host_steps, ops, stages
from .options import PlanOptions, PlanPath
from .stage_plan import StagePlan

PLAN_FILE, ARRAYS_FILE = "device_plan.json", "device_plan.npz"
FORMAT = "convtasnet-hailo/device-plan"
VERSION = 1


def _registry() -> dict[str, type]:
    kinds: dict[str, type] = {}
    for module in (ops, stages, host_steps):
        for name, value in vars(module).items():
            if isinstance(value, type) and dataclasses.is_dataclass(value) and value.__module__ == module.__name__:
                kinds[name] = value
    return kinds


TYPES = _registry()
ENUMS = {kind.__name__: kind for kind in (stages.InputKind, NormType, MaskAct, EncoderActivation, PlanPath)}


class _Encoder:
    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def __call__(self, value: Any) -> Any:
        if isinstance(value, enum.Enum):
            return {"enum": type(value).__name__, "value": value.value}
        if isinstance(value, np.ndarray):
            key = f"a{len(self.arrays)}"
            self.arrays[key] = value
            return {"array": key}
        if dataclasses.is_dataclass(value):
            if type(value).__name__ not in TYPES:
                raise TypeError(f"{type(value).__name__} is not a plan type")
            return {
                "type": type(value).__name__,
                **{f.name: self(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init},
            }
        if isinstance(value, tuple):
            return {"tuple": [self(v) for v in value]}
        if isinstance(value, (str, int, float, bool)) or value is None:
            return value
        raise TypeError(f"cannot write {type(value).__name__} into a device plan")


#: The largest count or size a plan field may hold (channels, strides, frames): far above any
#: ConvTasNet's, far below what would make one allocation exhaust memory.
MAX_COUNT = 1 << 20
#: Integer fields that may be 0 (offsets and block indices); every other count is at least 1.
ZERO_ALLOWED = frozenset({"pad_left", "pad_right", "out_block", "in_block", "edge", "out_channels", "in_channels"})


def _matches(value: Any, hint: Any) -> bool:
    """Whether a decoded ``value`` has the declared type ``hint`` (floats and arrays finite)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_matches(v, args[0]) for v in value)
        return len(value) == len(args) and all(_matches(v, a) for v, a in zip(value, args, strict=True))
    if hint is type(None):
        return value is None
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)
    if hint is np.ndarray:
        return isinstance(value, np.ndarray) and value.dtype.kind == "f" and bool(np.isfinite(value).all())
    return not isinstance(hint, type) or isinstance(value, hint)


def _ints(value: Any) -> list[int]:
    if isinstance(value, tuple):
        return [n for v in value for n in _ints(v)]
    return [value] if isinstance(value, int) and not isinstance(value, bool) else []


def _checked(kind: type, fields: dict[str, Any]) -> Any:
    """``kind(**fields)`` after every field has its declared type and every count its range:
    a device plan is untrusted input (a stride of 0 would divide by zero at run time)."""
    hints = typing.get_type_hints(kind)
    known = {f.name for f in dataclasses.fields(kind) if f.init}
    for key, value in fields.items():
        if key not in known:
            raise RecordError(f"{kind.__name__} has no field {key!r}")
        if not _matches(value, hints[key]):
            raise RecordError(f"{kind.__name__}.{key} is {value!r:.40}, not {hints[key]}")
        low = 0 if key in ZERO_ALLOWED else 1
        bad = [n for n in _ints(value) if not low <= n <= MAX_COUNT]
        if bad:
            raise RecordError(f"{kind.__name__}.{key} is {bad[0]}, outside {low}..{MAX_COUNT}")
    return kind(**fields)


class _Decoder:
    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays

    def __call__(self, data: Any) -> Any:
        if isinstance(data, list):
            return [self(v) for v in data]
        if not isinstance(data, dict):
            return data
        if "tuple" in data:
            return tuple(self(v) for v in data["tuple"])
        if "array" in data:
            if data["array"] not in self.arrays:
                raise RecordError(f"array {data['array']!r} is not in {ARRAYS_FILE}")
            return self.arrays[data["array"]]
        if "enum" in data:
            if data["enum"] not in ENUMS:
                raise RecordError(f"{data['enum']!r} is not a plan enum")
            return ENUMS[data["enum"]](data["value"])
        kind = TYPES.get(data.get("type"))
        if kind is None:
            raise RecordError(f"{data.get('type')!r} is not a plan type")
        return _checked(kind, {key: self(value) for key, value in data.items() if key != "type"})


def plan_files(plan: StagePlan) -> tuple[bytes, bytes]:
    """The plan's JSON and NPZ bytes (deterministic for one plan)."""
    encode = _Encoder()
    record = {
        "format": FORMAT,
        "format_version": VERSION,
        "config": plan.config.to_json(),
        "path": plan.path.value,
        "options": plan.options.to_json(),
        "expose_internal": plan.expose_internal,
        "rf_window": plan.rf_window,
        "steps": [encode(step) for step in plan.steps],
    }
    buffer = io.BytesIO()
    np.savez(buffer, **encode.arrays)
    return (json.dumps(record, indent=None, separators=(",", ":")) + "\n").encode(), buffer.getvalue()


def write_plan(plan: StagePlan, directory: Path) -> tuple[bytes, bytes]:
    text, arrays = plan_files(plan)
    write_text_atomically(Path(directory) / PLAN_FILE, text.decode())
    write_bytes_atomically(Path(directory) / ARRAYS_FILE, arrays)
    return text, arrays


def read_plan(directory: Path, text: bytes, arrays: bytes) -> StagePlan:
    """The plan of ``directory`` from its two files' bytes (hashes already checked)."""
    where = Path(directory) / PLAN_FILE
    try:
        record = json.loads(text.decode("utf-8"))
        if record.get("format") != FORMAT or record.get("format_version") != VERSION:
            raise RecordError(f"format {record.get('format')!r} version {record.get('format_version')!r}")
        with np.load(io.BytesIO(arrays), allow_pickle=False) as npz:
            decode = _Decoder({key: npz[key] for key in npz.files})
        if not isinstance(record["steps"], list):
            raise RecordError("steps is not a list")
        steps = tuple(decode(step) for step in record["steps"])
        odd = [s for s in steps if not isinstance(s, (stages.Stage, host_steps.HostWork))]
        if odd:
            raise RecordError(f"step {odd[0]!r:.40} is not a stage or host step")
        rf_window = record["rf_window"]
        if rf_window is not None and (_ints(rf_window) != [rf_window] or not 1 <= rf_window <= MAX_COUNT):
            raise RecordError(f"rf_window is {rf_window!r:.40}, not a count in 1..{MAX_COUNT}")
        return StagePlan(
            ConvTasNetConfig.from_model_args(record["config"]),
            PlanPath(record["path"]),
            steps,
            PlanOptions.from_json(record["options"]),
            record["expose_internal"] is True,
            rf_window,
            export_dir=Path(directory),
        )
    except (RecordError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise UserError(f"{where} is not a readable device plan ({type(exc).__name__}: {exc}); re-export") from None
