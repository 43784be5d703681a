"""LibriMix layout: metadata CSVs and the s1/s2 folders next to a mixture."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

from ..errors import UserError

REQUIRED_COLUMNS = ("mixture_ID", "mixture_path", "source_1_path", "source_2_path")
MIX_FOLDERS = ("mix_clean", "mix_both", "mix_single")


@dataclasses.dataclass(frozen=True)
class MixtureEntry:
    mixture_id: str
    mixture_path: Path
    source_paths: tuple[Path, ...]
    length: int | None


def read_metadata(csv_path: str | Path) -> list[MixtureEntry]:
    """Rows of ``mixture_<subset>_<mix_type>.csv``; relative paths resolve against the CSV's
    folder and its parent (LibriMix writes absolute paths)."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise UserError(f"metadata file {csv_path} does not exist")
    with open(csv_path, newline="") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise UserError(f"{csv_path} lacks column(s) {', '.join(missing)}; LibriMix metadata has "
                            f"{', '.join(REQUIRED_COLUMNS)}[, noise_path], length")
        source_columns = sorted((c for c in columns if c.startswith("source_") and c.endswith("_path")),
                                key=lambda c: int(c.split("_")[1]))
        rows = list(reader)
    if not rows:
        raise UserError(f"{csv_path} lists no mixtures")

    def resolve(text: str) -> Path:
        path = Path(text)
        if path.is_absolute():
            return path
        for base in (csv_path.parent, csv_path.parent.parent):
            if (base / path).exists():
                return base / path
        return csv_path.parent / path

    return [MixtureEntry(row["mixture_ID"], resolve(row["mixture_path"]),
                         tuple(resolve(row[c]) for c in source_columns),
                         int(row["length"]) if row.get("length") else None) for row in rows]


def sources_beside(mixture_path: str | Path, n_src: int = 2) -> tuple[Path, ...] | None:
    """``.../mix_clean/<id>.wav`` -> ``.../s1/<id>.wav``, ``.../s2/<id>.wav`` when they exist."""
    path = Path(mixture_path)
    if path.parent.name not in MIX_FOLDERS:
        return None
    sources = tuple(path.parent.parent / f"s{i}" / path.name for i in range(1, n_src + 1))
    return sources if all(s.is_file() for s in sources) else None
