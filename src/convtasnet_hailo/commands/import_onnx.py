"""`import-onnx`: an Asteroid ConvTasNet checkpoint rebuilt from a ConvTasNet ONNX graph and
checked against it (``model.onnx_import``); written only when it reproduces the graph."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..model.onnx_import import IMPORT_MIN_SNR_DB, ImportedCheckpoint


@dataclasses.dataclass(frozen=True)
class Request:
    """The graph ``onnx``, the checkpoint file ``out``; ``sample_rate`` None: guessed from the
    filter length (not stored in ONNX)."""

    onnx: Path
    out: Path
    sample_rate: int | None = None
    min_snr_db: float = IMPORT_MIN_SNR_DB


@dataclasses.dataclass(frozen=True)
class ImportResult:
    imported: ImportedCheckpoint

    @property
    def exit_status(self) -> int:
        return 0 if self.imported.reproduces else 1

    def lines(self) -> list[str]:
        imported, config = self.imported, self.imported.config
        lines = []
        if imported.guessed_rate is not None:
            lines.append(
                f"import-onnx: the graph does not record its sample rate; assuming {imported.guessed_rate} Hz "
                f"from the {config.kernel_size}-sample filters (pass --sample-rate to set it)"
            )
        lines.append(
            f"import-onnx: {config.n_blocks * config.n_repeats} blocks, {config.norm_type.value}, n_src "
            f"{config.n_src}, N {config.n_filters}, L {config.kernel_size}; reference model vs onnxruntime "
            f"on the graph: {imported.snr_db:.1f} dB SNR (required {imported.min_snr_db:g})"
        )
        if imported.reproduces:
            lines.append(f"wrote {imported.out}")
        return lines


def run(request: Request) -> ImportResult:
    from ..model.onnx_import import import_checkpoint

    return ImportResult(import_checkpoint(request.onnx, request.out, request.sample_rate, request.min_snr_db))


def write(result: ImportResult) -> None:
    """Nothing more: the checkpoint is written by ``run`` once it is checked."""
