"""The ways to build a model source (a checkpoint, the shipped demo model, seeded random weights) and
the record of where it came from that every run JSON carries. Which one a command takes is decided
in one place, ``runtime.sources.resolve``."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UserError
from .config import FULL_SIZE_8K, FULL_SIZE_8K_CAUSAL, FULL_SIZE_16K, ConvTasNetConfig

if TYPE_CHECKING:
    from .convtasnet import ConvTasNet

#: A tiny model shaped like the real one (few channels, two repeats of three blocks): the CLI's
#: ``--random-preset tiny`` and the tests' model.
TINY = ConvTasNetConfig(n_filters=16, bn_chan=8, hid_chan=12, skip_chan=6, n_blocks=3, n_repeats=2)

#: ``--random-preset`` names.
RANDOM_PRESETS: dict[str, ConvTasNetConfig] = {
    "full-8k": FULL_SIZE_8K,
    "full-16k": FULL_SIZE_16K,
    "full-8k-causal": FULL_SIZE_8K_CAUSAL,
    "tiny": TINY,
}


@dataclasses.dataclass(frozen=True)
class ModelSource:
    """The model under test and where it came from (recorded in every JSON). ``model`` is None
    for a run from an export without the checkpoint (:func:`exported_source`): then the plan
    comes from ``export_dir`` and ``config`` is the one the export recorded."""

    model: ConvTasNet | None
    description: str
    random_seed: int | None = None
    path: str | None = None
    sha256: str | None = None
    export_dir: Path | None = None
    recorded_config: ConvTasNetConfig | None = None

    @property
    def config(self) -> ConvTasNetConfig:
        return self.model.config if self.model is not None else self.recorded_config

    def to_json(self) -> dict:
        return {
            "model_source": self.description,
            "model_random": self.random_seed is not None,
            "model_seed": self.random_seed,
            "model_path": self.path,
            "model_sha256": self.sha256,
            "model_config": self.config.to_json(),
        }

    def given(self) -> list[tuple[str, str | None]]:
        """The file this model was read from, for ``guard.check_run_files`` (none for random weights)."""
        return [("the --model checkpoint", self.path)]


def checkpoint_source(spec: str) -> ModelSource:
    """An Asteroid checkpoint file or hub id."""
    from ..files import sha256_file
    from .checkpoint import load_model

    model, path = load_model(spec)
    return ModelSource(model, f"checkpoint {spec}", path=str(path), sha256=sha256_file(path))


def random_source(preset: str, seed: int) -> ModelSource:
    """Seeded random weights of a named preset."""
    from .random_init import random_model

    if preset not in RANDOM_PRESETS:
        raise UserError(f"unknown random preset {preset!r}; choose one of {', '.join(RANDOM_PRESETS)}")
    return ModelSource(
        random_model(RANDOM_PRESETS[preset], seed=seed), f"random {preset} weights, seed {seed}", random_seed=seed
    )


def recorded_random_source(config: ConvTasNetConfig, seed: int, description: str) -> ModelSource:
    """Seeded random weights of a recorded configuration (an export of random weights, rebuilt)."""
    from .random_init import random_model

    return ModelSource(random_model(config, seed=seed), description, random_seed=seed)


def demo_source(causal: bool = False) -> ModelSource:
    """The shipped demo model (``causal``: its causal twin, for streaming): audio commands need
    trained weights."""
    from ..assets import DEMO_CAUSAL_MODEL, DEMO_MODEL

    path = DEMO_CAUSAL_MODEL if causal else DEMO_MODEL
    if not path.is_file():
        raise UserError(f"the demo model {path} is missing from this install; pass --model PATH_OR_ID")
    return checkpoint_source(str(path))
