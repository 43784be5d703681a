"""Run folders ``module_runs/<run_ts>/`` and the TSV/JSON files written into them.

Rows are appended as cases finish, so an interrupted run keeps the evidence it produced.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..files import write_text_atomically
from ..guard import claim, lock_folder, regular_file

log = logging.getLogger(__name__)

RUN_TS_FORMAT = "%Y%m%d_%H%M%S"

#: What ``--resume`` alone stands for: the newest run in ``--out``.
LATEST = "latest"


def new_run_dir(root: Path) -> Path:
    """Creates ``root/<run_ts>`` (``_2``, ``_3``... when two runs start in the same second)."""
    stamp = _dt.datetime.now().strftime(RUN_TS_FORMAT)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create runs folder {root}: {exc.strerror}") from None
    candidate, suffix = root / stamp, 1
    while True:
        try:
            candidate.mkdir()
            lock_folder(candidate, "a run")  # a --resume of it from another process waits for this run
            return candidate
        except FileExistsError:
            suffix += 1
            candidate = root / f"{stamp}_{suffix}"


def check_out_folder(out: Path, what: str = "--out") -> None:
    """Refuses, before any work, an output folder ``out`` that is an existing file (``what``: how
    the user named it, a flag or a phrase)."""
    if out.exists() and not out.is_dir():
        raise UserError(f"{what} {out} is an existing file; pass a folder (it is created if missing)")


def make_out_folder(out: Path, what: str = "--out") -> Path:
    """``out`` checked (:func:`check_out_folder`) and created with its parents; an unwritable place
    is refused in one line. Returns ``out``."""
    check_out_folder(out, what)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {what} {out}: {exc.strerror}; pass a writable folder") from None
    lock_folder(out, what)
    return out


def _json_ready(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no inf/nan; keep them readable
    if isinstance(value, Mapping):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    return value


def write_json(path: Path, record: Mapping[str, Any]) -> None:
    write_text_atomically(path, json.dumps(_json_ready(record), indent=2) + "\n")


def _tsv_cell(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value).replace("\t", " ").replace("\n", " ")


class TsvWriter:
    """Appends rows to a TSV with a fixed header (written when the file is created)."""

    def __init__(self, path: Path, columns: Iterable[str]):
        self.path = path
        self.columns = list(columns)
        claim(path)
        if not path.exists():
            path.write_text("\t".join(self.columns) + "\n")

    def append(self, row: Mapping[str, Any]) -> None:
        with open(self.path, "a") as handle:
            handle.write("\t".join(_tsv_cell(row.get(c)) for c in self.columns) + "\n")


def read_tsv(path: Path) -> list[dict[str, str]]:
    """The rows of a TSV this project appended to (untrusted: a regular UTF-8 file, each row with its
    header's cell count). A last line without its newline is a row torn by an interrupted append:
    left out, and said (its case runs again on resume); a torn row anywhere else is one line."""
    fix = "delete that line to run its case again, or start a new run"
    regular_file(path, "run summary", fix)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not UTF-8 text (byte {exc.start}); {fix}") from None
    lines = text.split("\n")
    if not lines[0]:
        return []
    header = lines[0].split("\t")
    rows = []
    for number, line in enumerate(lines[1:], 2):
        if not line:
            continue
        cells = line.split("\t")
        if len(cells) != len(header):
            if number == len(lines):  # after the last newline: the torn end of an interrupted append
                log.warning(f"{path} line {number} is torn ({len(cells)} of {len(header)} cells): left out")
                continue
            raise UserError(f"{path} line {number} has {len(cells)} cell(s), the header {len(header)}; {fix}")
        rows.append(dict(zip(header, cells, strict=True)))
    return rows


def resume_folder(out: Path, given: str | None, marker: str, command: str) -> Path | None:
    """The run folder ``--resume`` names: None when not resuming; for ``"latest"`` (``--resume``
    alone) the newest folder in ``out`` holding ``marker`` (a file every run of ``command`` writes
    first); else the folder given, which must hold ``marker``."""
    if given is None:
        return None
    if given != LATEST:
        folder = Path(given)
        if not (folder / marker).is_file():
            raise UserError(
                f"--resume {folder}: no {marker} there, so it is not a run folder of `{command}`; pass "
                f"the folder an interrupted `{command}` printed, or --resume alone for the newest in --out"
            )
        lock_folder(folder, command)
        return folder
    runs = (
        sorted((d for d in out.iterdir() if (d / marker).is_file()), key=lambda d: d.stat().st_mtime)
        if out.is_dir()
        else []
    )
    if not runs:
        raise UserError(
            f"--resume: no run of `{command}` in {out} (no folder there holds {marker}); pass --out "
            "the folder the interrupted run was in, or --resume RUN_FOLDER"
        )
    lock_folder(runs[-1], command)
    return runs[-1]
