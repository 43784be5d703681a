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


#: What a resumed run must share with the run it goes on from (steps, minutes, device and logging
#: may change): the model and every setting that shapes the training.
RUN_RECORD = "finetune_run.json"
SAME_ON_RESUME = (
    "data",
    "segment_seconds",
    "batch_size",
    "learning_rate",
    "mix_pairs",
    "data_files",
    "seed",
    "weight_bits",
    "activation_bits",
)


def run_identity(source: ModelSource, settings: FinetuneSettings) -> dict:
    """The model and the settings a resume must continue (JSON values)."""
    model = source.to_json()
    identity = {key: model.get(key) for key in ("model_sha256", "model_seed", "model_config")}
    for key in SAME_ON_RESUME:
        value = getattr(settings, key)
        identity[key] = [str(Path(v).resolve()) for v in value] if key == "data" else value
    return identity


def check_same_run(out: Path, identity: dict) -> None:
    """A resume of ``out`` goes on from a run of this model with these settings, or is refused."""
    import json

    from ..errors import UserError
    from ..records import read_json

    path = out / RUN_RECORD
    fix = "resume with the same --model and training options, or pass another --out for a new run"
    if not path.is_file():
        raise UserError(f"--resume {out}: no {RUN_RECORD} says which model and options that run used; {fix}")
    before = read_json(path, "finetune run record", fix)
    if not isinstance(before, dict):
        raise UserError(f"{path} holds a JSON {type(before).__name__}, not the record finetune writes; {fix}")
    wanted = json.loads(json.dumps(identity))
    changed = [key for key in wanted if before.get(key) != wanted[key]]
    if changed:
        raise UserError(f"--resume {out}: that run had another {changed[0]} ({before.get(changed[0])!r:.60}); {fix}")


def run(request: Request) -> FinetuneResult:
    import json

    from ..files import write_text_atomically
    from ..quantization.finetune import CHECKPOINT, RANGES, STATE, finetune, torch_device

    torch_device(request.settings.device)  # a device this machine lacks is refused before any work
    settings = dataclasses.replace(request.settings, resume=resuming(request.settings.out, request.resume))
    identity = run_identity(request.source, settings)
    if settings.resume and (settings.out / STATE).exists():  # without a state, finetune says so itself
        check_same_run(settings.out, identity)
    elif not settings.out.exists() or (settings.out.is_dir() and not (settings.out / STATE).exists()):
        # a new run (an --out holding an earlier one is refused by finetune itself, its record kept)
        settings.out.mkdir(parents=True, exist_ok=True)
        write_text_atomically(settings.out / RUN_RECORD, json.dumps(identity, indent=1) + "\n")
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
