"""Shared fixtures: tiny model configurations (fast) and helpers."""

from __future__ import annotations

import pytest

from convtasnet_hailo.model.config import ConvTasNetConfig

#: A tiny model shaped like the real one: few channels, two repeats of three blocks.
TINY = ConvTasNetConfig(n_filters=16, bn_chan=8, hid_chan=12, skip_chan=6, n_blocks=3, n_repeats=2)


@pytest.fixture
def tiny_config() -> ConvTasNetConfig:
    return TINY
