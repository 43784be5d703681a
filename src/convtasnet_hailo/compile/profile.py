"""Grids declared as data: TOML profiles expanded into compile cases (one stage each)."""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path
from typing import Any

from ..dfc.model_script import ScriptVariant
from ..errors import UserError
from ..guard import regular_file

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 (one the Hailo SDK runs on)
    import tomli as tomllib

DEFAULT_GRID = Path(__file__).parent / "profiles" / "default.toml"
STAGE_SELECTIONS = ("all", "distinct")


@dataclasses.dataclass(frozen=True)
class GridProfile:
    path: str  # decoder | masker
    name: str
    tile_widths: tuple[int, ...]
    block_chans: tuple[int, ...]  # 0 = no channel blocks
    variants: tuple[ScriptVariant, ...]
    stages: str = "all"
    blocks: tuple[int, ...] | None = None  # TCN block indices to keep (masker), None = all


@dataclasses.dataclass(frozen=True)
class GridCase:
    run_tag: str
    path: str
    stage: str
    tile_w: int
    block_chan: int
    variant: str


def load_profile(path_name: str, profile: str, grid_file: Path | None = None) -> GridProfile:
    grid_file = grid_file or DEFAULT_GRID
    regular_file(grid_file, "grid file", "pass a TOML grid (see compile/profiles/default.toml)")
    try:
        data: dict[str, Any] = tomllib.loads(Path(grid_file).read_bytes().decode("utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read grid {grid_file}: {exc}") from None
    section = data.get(path_name, {})
    if not isinstance(section, dict) or profile not in section or not isinstance(section[profile], dict):
        raise UserError(
            f"grid {grid_file} has no profile {path_name}.{profile}; it has: "
            f"{', '.join(f'{path_name}.{p}' for p in section if isinstance(section, dict)) or 'none'}"
        )
    spec = section[profile]
    declared = data.get("variants", {"default": []})
    if not isinstance(declared, dict) or not all(isinstance(v, list) for v in declared.values()):
        raise UserError(f"grid {grid_file}: [variants] must map names to lists of model-script lines")
    try:
        variants = tuple(ScriptVariant(name, tuple(declared[name])) for name in spec.get("variants", ["default"]))
    except KeyError as exc:
        raise UserError(
            f"grid {grid_file}: profile {path_name}.{profile} names unknown variant {exc}; "
            f"declared: {', '.join(declared)}"
        ) from None
    except ValueError as exc:
        raise UserError(f"grid {grid_file}: {exc}") from None
    stages = spec.get("stages", "all")
    if stages not in STAGE_SELECTIONS:
        raise UserError(f"grid {grid_file}: stages = {stages!r}; use one of {', '.join(STAGE_SELECTIONS)}")
    for key in ("tile_w", "block_chan"):
        values = spec.get(key, [])
        if not values or any(not isinstance(v, int) or v < 0 or (key == "tile_w" and v == 0) for v in values):
            raise UserError(
                f"grid {grid_file}: {path_name}.{profile}.{key} must be a list of "
                f"{'positive' if key == 'tile_w' else 'non-negative'} integers, got {values!r}"
            )
    blocks = spec.get("blocks")
    return GridProfile(
        path_name,
        profile,
        tuple(spec["tile_w"]),
        tuple(spec["block_chan"]),
        variants,
        stages,
        tuple(blocks) if blocks is not None else None,
    )


def structure_key(stage) -> tuple:
    """What the allocator sees of a stage: ops and shapes, not weights (``Stage.structure``)."""
    return stage.structure()


_BLOCK_INDEX = re.compile(r"(?:^|__)tcn(\d+)_")


def _block_indices(stage_name: str) -> set[int]:
    """TCN blocks a stage belongs to (a fused stage: every block it touches)."""
    return {int(index) for index in _BLOCK_INDEX.findall(stage_name)}


def select_stages(stages, profile: GridProfile) -> list:
    chosen = list(stages)
    if profile.blocks is not None:
        keep = set(profile.blocks)
        chosen = [s for s in chosen if not _block_indices(s.name) or _block_indices(s.name) & keep]
    if profile.stages == "distinct":
        seen, distinct = set(), []
        for stage in chosen:
            key = structure_key(stage)
            if key not in seen:
                seen.add(key)
                distinct.append(stage)
        chosen = distinct
    return chosen


def run_tag(stage: str, tile_w: int, block_chan: int, variant: str) -> str:
    return f"{stage}_t{tile_w}_b{block_chan}_{variant}"
