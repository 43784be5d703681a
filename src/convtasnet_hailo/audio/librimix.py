"""LibriMix layout: metadata CSVs and the s1/s2 folders next to a mixture."""

from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import math
import re
from pathlib import Path

from ..errors import UserError
from ..guard import regular_file

REQUIRED_COLUMNS = ("mixture_ID", "mixture_path", "source_1_path", "source_2_path")
MIX_FOLDERS = ("mix_clean", "mix_both", "mix_single")
#: Columns LibriMix metadata has besides the source paths (others are ignored, and said).
KNOWN_COLUMNS = REQUIRED_COLUMNS + ("noise_path", "length")


@dataclasses.dataclass(frozen=True)
class MixtureEntry:
    mixture_id: str
    mixture_path: Path
    source_paths: tuple[Path, ...]
    length: int | None


def _decode(csv_path: Path) -> str:
    """The CSV's text: UTF-8 with or without a BOM, or UTF-16 with one (a spreadsheet's "Unicode
    text"); other encodings are one line naming the line and byte."""
    data = csv_path.read_bytes()
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UserError(
            f"{csv_path} is not UTF-8 text (line {line} holds byte 0x{data[exc.start]:02x}: a Latin-1 "
            "or Windows export?); save it as CSV UTF-8"
        ) from None


def _delimiter(first_line: str) -> str:
    """Comma, or the semicolon or tab a spreadsheet in some locales writes instead."""
    if "," in first_line:
        return ","
    return next((d for d in (";", "\t") if d in first_line), ",")


def _length(text: str, line: int, csv_path: Path) -> int | None:
    """``length`` as an integer; a spreadsheet's ``8000.0`` is taken, anything else refused."""
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not value.is_integer() or value < 0:
        raise UserError(f"{csv_path} line {line}: length {text!r} is not a whole number of samples; fix or empty it")
    return int(value)


@dataclasses.dataclass(frozen=True)
class _Table:
    header: list[str]
    rows: list[tuple[int, dict[str, str]]]  # (line number, values by column)
    notes: tuple[str, ...] = ()  # what was unusual but read (encoding, delimiter)


def _table(csv_path: Path) -> _Table:
    """Header and rows, as a spreadsheet writes them: names and values stripped, blank rows and
    trailing empty cells skipped; a row with too few or too many values is refused by line."""
    data = csv_path.read_bytes()
    text = _decode(csv_path)
    delimiter = _delimiter(text.split("\n", 1)[0])
    utf16 = data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    notes = (
        [f"read {'UTF-16' if utf16 else 'UTF-8'} text with a byte-order mark"]
        if utf16 or data.startswith(codecs.BOM_UTF8)
        else []
    )
    if delimiter != ",":
        notes.append(f"values separated by {'tabs' if delimiter == chr(9) else repr(delimiter)}")
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        header = [name.strip() for name in next(reader, [])]
        while header and not header[-1]:
            header.pop()
        twice = sorted({n for n in header if n and header.count(n) > 1})
        if twice:
            raise UserError(f"{csv_path} has column {twice[0]} twice; keep one")
        rows = []
        for cells in reader:
            values = [cell.strip() for cell in cells]
            if not any(values):
                continue
            while len(values) > len(header) and not values[-1]:
                values.pop()
            if len(values) != len(header):
                raise UserError(
                    f"{csv_path} line {reader.line_num} has {len(values)} value(s) and the header "
                    f"{len(header)} column(s); fix that row"
                )
            rows.append((reader.line_num, dict(zip(header, values, strict=False))))
    except csv.Error as exc:
        raise UserError(f"{csv_path} line {reader.line_num}: {exc}; fix that row") from None
    return _Table(header, rows, tuple(notes))


def _unique_ids(csv_path: Path, rows: list[tuple[int, dict[str, str]]]) -> None:
    first_line: dict[str, int] = {}
    for line, row in rows:
        mixture_id = row["mixture_ID"]
        if mixture_id in first_line:
            raise UserError(
                f"{csv_path}: mixture_ID {mixture_id!r} is on lines {first_line[mixture_id]} and {line}; "
                "give each mixture its own ID (results and --resume are kept by ID)"
            )
        first_line[mixture_id] = line


def read_metadata(csv_path: str | Path) -> list[MixtureEntry]:
    """:func:`read_metadata_noted`'s entries."""
    return read_metadata_noted(csv_path)[0]


def read_metadata_noted(csv_path: str | Path) -> tuple[list[MixtureEntry], list[str]]:
    """Rows of ``mixture_<subset>_<mix_type>.csv``, read like a spreadsheet user writes them (BOM,
    UTF-16, semicolons, padded cells, ``8000.0``, extra columns ignored); relative paths resolve
    against the CSV's folder and its parent (LibriMix writes absolute paths). Rows of the wrong
    size, empty required cells and duplicate mixture_IDs are refused naming the line. Also
    returns what was unusual but read (said by the caller)."""
    csv_path = Path(csv_path)
    if not csv_path.exists():
        raise UserError(f"metadata file {csv_path} does not exist")
    regular_file(csv_path, "metadata file", "pass the LibriMix metadata CSV")
    table = _table(csv_path)
    missing = [c for c in REQUIRED_COLUMNS if c not in table.header]
    if missing:
        raise UserError(
            f"{csv_path} lacks column(s) {', '.join(missing)}; LibriMix metadata has "
            f"{', '.join(REQUIRED_COLUMNS)}[, noise_path], length"
        )
    source_columns = sorted(
        (c for c in table.header if re.fullmatch(r"source_\d+_path", c)), key=lambda c: int(c.split("_")[1])
    )
    if not table.rows:
        raise UserError(f"{csv_path} lists no mixtures")
    for line, row in table.rows:
        empty = [c for c in ("mixture_ID", "mixture_path", *source_columns) if not row[c]]
        if empty:
            raise UserError(f"{csv_path} line {line}: {empty[0]} is empty; fill it or remove the row")
    _unique_ids(csv_path, table.rows)

    def resolve(text: str) -> Path:
        path = Path(text)
        if path.is_absolute():
            return path
        for base in (csv_path.parent, csv_path.parent.parent):
            if (base / path).exists():
                return base / path
        return csv_path.parent / path

    entries = [
        MixtureEntry(
            row["mixture_ID"],
            resolve(row["mixture_path"]),
            tuple(resolve(row[c]) for c in source_columns),
            _length(row.get("length", ""), line, csv_path),
        )
        for line, row in table.rows
    ]
    notes = list(table.notes)
    ignored = [c for c in table.header if c not in KNOWN_COLUMNS and c not in source_columns]
    if ignored:
        notes.append(f"column(s) {', '.join(ignored)} ignored")
    if any("." in row.get("length", "") for _, row in table.rows):
        notes.append("lengths written with a decimal point (as 4000.0) read as whole samples")
    if any(not Path(row[c]).is_absolute() for _, row in table.rows for c in ("mixture_path", *source_columns)):
        notes.append("relative paths resolved against the CSV's folder (or its parent)")
    return entries, notes


def sources_beside(mixture_path: str | Path, n_src: int = 2) -> tuple[Path, ...] | None:
    """``.../mix_clean/<id>.wav`` -> ``.../s1/<id>.wav``, ``.../s2/<id>.wav`` when they exist."""
    path = Path(mixture_path)
    if path.parent.name not in MIX_FOLDERS:
        return None
    sources = tuple(path.parent.parent / f"s{i}" / path.name for i in range(1, n_src + 1))
    return sources if all(s.is_file() for s in sources) else None
