"""`finetune`: quantization-aware fine-tuning (``quantization.finetune``) into ``--out``: the
checkpoint and its calibration ranges (written by the run, its state saved as it goes), then
``finetune_report.json``. ``--resume`` goes on from ``--out``'s saved state."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..model.source import ModelSource
from ..quantization.finetune import FinetuneSettings

#: ``--resume`` given without a folder (``cli.options.RESUME_LATEST``): for finetune, the --out folder's state.
RESUME_ALONE = "latest"


@dataclasses.dataclass(frozen=True)
class Request:
    """What `finetune` is asked: the model, the run's settings (``settings.resume`` is ignored:
    ``resume`` decides), and ``resume``: None (a new run), ``"latest"`` (``--resume`` alone: the
    --out folder's saved state) or a folder, which must be the --out folder."""

    source: ModelSource
    settings: FinetuneSettings
    resume: str | None = None


@dataclasses.dataclass(frozen=True)
class FinetuneResult:
    """Where the run ended: its step count, what stopped it, the files written, and its record."""

    out: Path
    steps: int
    stopped_by: str
    checkpoint: Path
    ranges: Path
    record: dict = dataclasses.field(repr=False, compare=False)

    exit_status = 0

    def to_json(self) -> dict:
        return self.record

    def lines(self) -> list[str]:
        return [
            f"finetune: {self.steps} step(s) ({'stopped by --max-minutes' if self.stopped_by == 'time' else 'done'}); "
            f"wrote {self.checkpoint} and {self.ranges}"
        ]


def resuming(out: Path, given: str | None) -> bool:
    """Whether ``--resume`` asks to go on: alone, or naming the --out folder itself; any other
    folder is refused (a finetune run lives in its --out folder, not in a run folder inside it)."""
    from ..errors import UserError

    if given is None:
        return False
    if given != RESUME_ALONE and Path(given).resolve() != out.resolve():
        raise UserError(
            f"--resume {given}: finetune goes on from its --out folder's state only; pass --resume alone "
            f"(or --resume {out})"
        )
    return True


def run(request: Request) -> FinetuneResult:
    from ..quantization.finetune import CHECKPOINT, RANGES, finetune, torch_device

    torch_device(request.settings.device)  # a device this machine lacks is refused before any work
    settings = dataclasses.replace(request.settings, resume=resuming(request.settings.out, request.resume))
    record = finetune(request.source, settings)
    return FinetuneResult(
        settings.out, record["steps"], record["stopped_by"], settings.out / CHECKPOINT, settings.out / RANGES, record
    )


def write(result: FinetuneResult) -> None:
    """``finetune_report.json`` in ``--out``."""
    import json

    from ..files import write_text_atomically
    from ..quantization.finetune import REPORT

    write_text_atomically(result.out / REPORT, json.dumps(result.to_json(), indent=1))
