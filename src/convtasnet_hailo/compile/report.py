"""Grid report: pass/fail by tile width x block size x script variant (TSV + PNG heatmap), and
the smallest stage configuration that covers the whole path with passing HEFs."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from ..files import write_text_atomically, written_atomically
from ..runs.run_folder import TsvWriter

REPORT_COLUMNS = [
    "tile_w",
    "block_chan",
    "variant",
    "cases",
    "hef_success",
    "failed",
    "not_run",
    "pass_rate",
    "top_failure",
]


def _passed(row: dict) -> bool:
    return str(row.get("hef_success")).lower() == "true"


def aggregate(rows: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        groups[(int(row["tile_w"]), int(row["block_chan"]), row["variant"])].append(row)
    out = []
    for (tile_w, block_chan, variant), members in sorted(groups.items()):
        ran = [r for r in members if r.get("status") in ("compiled", "failed", "reused")]
        passed = sum(_passed(r) for r in ran)
        failures = defaultdict(int)
        for r in ran:
            if not _passed(r):
                failures[r.get("signature") or r.get("exception_type") or "unknown"] += 1
        out.append(
            {
                "tile_w": tile_w,
                "block_chan": block_chan,
                "variant": variant,
                "cases": len(members),
                "hef_success": passed,
                "failed": len(ran) - passed,
                "not_run": len(members) - len(ran),
                "pass_rate": passed / len(ran) if ran else None,
                "top_failure": max(failures, key=failures.get) if failures else "",
            }
        )
    return out


def covering_configuration(rows: list[dict], stage_maps: dict[tuple[int, int], dict[str, str]]) -> dict | None:
    """The (tile_w, block_chan) whose every stage has a passing HEF in some variant (its own, or
    its structurally identical representative's in a 'distinct' grid), with the fewest stages
    (fewest HEFs to load), then the widest tiles (fewest device calls)."""
    best = None
    for (tile_w, block_chan), stages in stage_maps.items():
        chosen = {}
        for stage, representative in stages.items():
            passing = [
                r
                for r in rows
                if r["stage"] == representative
                and int(r["tile_w"]) == tile_w
                and int(r["block_chan"]) == block_chan
                and _passed(r)
            ]
            if not passing:
                break
            chosen[stage] = {
                "variant": passing[0]["variant"],
                "compiled_as": representative,
                "hef": passing[0].get("hef_path", "") if representative == stage else "",
            }
        else:
            key = (len(stages), -tile_w)
            if best is None or key < best[0]:
                best = (key, {"tile_w": tile_w, "block_chan": block_chan or None, "stages": chosen})
    return best[1] if best else None


def write_report(run_dir: Path, rows: list[dict], stages_by_config: dict[tuple[int, int], dict[str, str]]) -> dict:
    table = aggregate(rows)
    writer = TsvWriter(run_dir / "grid_report.tsv", REPORT_COLUMNS)
    for line in table:
        writer.append(line)
    _heatmap(run_dir / "grid_report.png", table)
    covering = covering_configuration(rows, stages_by_config)
    write_text_atomically(
        run_dir / "covering_manifest.json",
        json.dumps(
            covering or {"covering": None, "reason": "no configuration has a passing HEF for every stage"}, indent=1
        ),
    )
    return {"table": table, "covering": covering}


def _heatmap(path: Path, table: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = sorted({(t["tile_w"], t["block_chan"]) for t in table})
    cols = sorted({t["variant"] for t in table})
    grid = np.full((len(rows), len(cols)), np.nan)
    for t in table:
        if t["pass_rate"] is not None:
            grid[rows.index((t["tile_w"], t["block_chan"])), cols.index(t["variant"])] = t["pass_rate"]
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(cols), 1.0 + 0.45 * len(rows)))
    image = ax.imshow(grid, vmin=0, vmax=1, cmap="RdYlGn", aspect="auto")
    ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), [f"W={w} block={b or '-'}" for w, b in rows], fontsize=8)
    for i in range(len(rows)):
        for j in range(len(cols)):
            ax.text(j, i, "n/a" if np.isnan(grid[i, j]) else f"{grid[i, j]:.0%}", ha="center", va="center", fontsize=7)
    fig.colorbar(image, ax=ax, label="HEF pass rate")
    fig.tight_layout()
    with written_atomically(path) as temporary:
        fig.savefig(temporary, dpi=100, format="png")
    plt.close(fig)
