"""Which model a command works on: a checkpoint, the shipped demo model, or a seeded random
preset; and the record of where it came from that every run JSON carries."""

from __future__ import annotations

import dataclasses

from ..errors import UserError
from .config import FULL_SIZE_8K, FULL_SIZE_8K_CAUSAL, FULL_SIZE_16K, ConvTasNetConfig
from .convtasnet import ConvTasNet

#: A tiny model shaped like the real one (few channels, two repeats of three blocks): the CLI's
#: ``--random-preset tiny`` and the tests' model.
TINY = ConvTasNetConfig(n_filters=16, bn_chan=8, hid_chan=12, skip_chan=6, n_blocks=3, n_repeats=2)

#: ``--random-preset`` names.
RANDOM_PRESETS: dict[str, ConvTasNetConfig] = {"full-8k": FULL_SIZE_8K, "full-16k": FULL_SIZE_16K,
                                               "full-8k-causal": FULL_SIZE_8K_CAUSAL, "tiny": TINY}


@dataclasses.dataclass(frozen=True)
class ModelSource:
    """The model under test and where it came from (recorded in every JSON)."""

    model: ConvTasNet
    description: str
    random_seed: int | None = None
    path: str | None = None
    sha256: str | None = None

    def to_json(self) -> dict:
        return {"model_source": self.description, "model_random": self.random_seed is not None,
                "model_seed": self.random_seed, "model_path": self.path, "model_sha256": self.sha256,
                "model_config": self.model.config.to_json()}

    def given(self) -> list[tuple[str, str | None]]:
        """The file this model was read from, for ``guard.check_run_files`` (none for random weights)."""
        return [("the --model checkpoint", self.path)]


def checkpoint_source(spec: str) -> ModelSource:
    """An Asteroid checkpoint file or hub id."""
    from .checkpoint import file_sha256, load_model

    model, path = load_model(spec)
    return ModelSource(model, f"checkpoint {spec}", path=str(path), sha256=file_sha256(path))


def random_source(preset: str, seed: int) -> ModelSource:
    """Seeded random weights of a named preset."""
    from .random_init import random_model

    if preset not in RANDOM_PRESETS:
        raise UserError(f"unknown random preset {preset!r}; choose one of {', '.join(RANDOM_PRESETS)}")
    return ModelSource(random_model(RANDOM_PRESETS[preset], seed=seed), f"random {preset} weights, seed {seed}",
                       random_seed=seed)


def model_or_random(spec: str | None, preset: str, seed: int) -> ModelSource:
    """``spec`` if given, else a seeded random model (parity, export and grids need no training)."""
    return checkpoint_source(spec) if spec else random_source(preset, seed)


def trained_model(spec: str | None) -> ModelSource:
    """``spec`` or the shipped demo model: audio commands need trained weights."""
    from ..assets import DEMO_MODEL

    if spec:
        return checkpoint_source(spec)
    if not DEMO_MODEL.is_file():
        raise UserError(f"the demo model {DEMO_MODEL} is missing from this install; pass --model PATH_OR_ID")
    return checkpoint_source(str(DEMO_MODEL))
