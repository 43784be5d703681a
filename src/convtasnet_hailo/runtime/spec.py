"""What a run is: the model, how it is cut, which backend runs it, at which tile width."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from ..errors import UserError
from ..model.source import ModelSource
from ..plan.options import DEFAULT_TILE_W, PlanOptions, PlanPath
from .backend_setup import BackendOptions
from .tensors import check_tile_width


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One run of a model. ``scratch``: the folder onnxruntime exports into when no
    ``--export-dir`` is given (None: a temporary folder the run removes when closed).
    ``expose_internal``: fused stages also output every reported tensor (parity)."""

    source: ModelSource
    options: PlanOptions = PlanOptions()
    backend: BackendOptions = BackendOptions()
    tile_w: int = DEFAULT_TILE_W
    path: PlanPath = PlanPath.FULL_CHAIN
    expose_internal: bool = False
    scratch: Path | None = None

    def __post_init__(self) -> None:
        check_tile_width(self.tile_w)
        if not isinstance(self.options, PlanOptions) or not isinstance(self.backend, BackendOptions):
            raise TypeError("RunSpec takes a PlanOptions and a BackendOptions")
        if not isinstance(self.path, PlanPath):
            raise UserError(f"unknown plan path {self.path!r}: use one of {', '.join(p.value for p in PlanPath)}")

    @property
    def model(self):
        """The model (None for a run from an export without its checkpoint)."""
        return self.source.model

    @property
    def config(self):
        return self.source.config

    def info(self) -> dict:
        """What a run folder records about the run (run JSONs, resume checks)."""
        return {"backend": self.backend.name, "tile_w": self.tile_w, **self.options.to_json(), **self.source.to_json()}

    @property
    def key(self) -> str:
        """Equal for specs that open the same run (a worker keeps one run per key)."""
        return json.dumps(
            [
                self.source.to_json(),
                str(self.backend),
                self.tile_w,
                self.options.to_json(),
                self.path.value,
                self.expose_internal,
                str(self.scratch),
            ],
            sort_keys=True,
            default=str,
        )
