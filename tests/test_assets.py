"""The shipped files: the causal 16 kHz denoiser (issue 40) is what its record says, and the wheel
carries it."""

from __future__ import annotations

import fnmatch
import json
import sys
from pathlib import Path

from convtasnet_hailo.assets import DEMO_DENOISER

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: as compile/profile.py reads TOML there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_the_shipped_denoiser_is_a_causal_one_source_16k_model_as_its_record_says():
    from convtasnet_hailo.model.checkpoint import load_model
    from convtasnet_hailo.model.config import NormType

    model, path = load_model(str(DEMO_DENOISER))
    config = model.config
    assert path == DEMO_DENOISER and config.n_src == 1 and config.sample_rate == 16000
    assert config.causal and config.norm_type is NormType.CLN
    record = json.loads(DEMO_DENOISER.with_suffix(".training.json").read_text())
    assert record["steps"] == 6400 and record["parameters"] == sum(p.numel() for p in model.parameters())
    validations = [h for h in record["history"] if "val_si_snri" in h]
    assert max(validations, key=lambda h: h["val_si_snri"])["step"] == record["steps"]  # chosen by validation
    assert {k: getattr(getattr(config, k), "value", getattr(config, k)) for k in record["config"]} == record["config"]
    scores = record["test_set_scores"]
    assert scores["si_snri_db"] > scores["peers_si_snri_db"]["rnnoise"]  # the fallback: shipped


def test_package_data_carries_every_shipped_demo_file():
    """pyproject's package-data globs match every file under assets/demo (the wheel holds them all)."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    globs = setuptools["package-data"]["convtasnet_hailo"]
    package = ROOT / "src" / "convtasnet_hailo"
    shipped = [p.relative_to(package).as_posix() for p in (package / "assets" / "demo").rglob("*") if p.is_file()]
    assert DEMO_DENOISER.relative_to(package).as_posix() in shipped
    assert [f for f in shipped if not any(fnmatch.fnmatch(f, g) for g in globs)] == []
