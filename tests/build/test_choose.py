"""`build`'s first step: the tile width (job separate) or the streaming plan (job stream) by the
device cost model, every candidate kept with why it won or lost, the check limits honoured."""

from __future__ import annotations

import dataclasses

import pytest

from convtasnet_hailo.build.choose import choose
from convtasnet_hailo.build.record import BuildSettings
from convtasnet_hailo.errors import UserError
from convtasnet_hailo.export.hailo_rules import CheckLimits
from convtasnet_hailo.model.config import NormType
from convtasnet_hailo.model.random_init import random_model
from convtasnet_hailo.model.source import TINY
from convtasnet_hailo.plan.cost_model import CANDIDATE_TILE_WIDTHS


def _settings(**changes) -> BuildSettings:
    return BuildSettings(**{"model": "m.pth", "hw_arch": "hailo8l", "calib": ("c",), **changes})


def test_separate_prices_every_width_and_keeps_the_least_within_the_limits():
    model = random_model(TINY, seed=1)
    choice = choose(model, _settings(), CheckLimits(max_width=128))
    rows = {row["tile_w"]: row for row in choice.candidates}
    assert sorted(rows) == list(CANDIDATE_TILE_WIDTHS)
    assert all(not rows[w]["fits"] and "over the checked conv output width 128" in rows[w]["why"] for w in (256, 512))
    fitting = [r for r in choice.candidates if r["fits"]]
    assert choice.tile_w == min(fitting, key=lambda r: r["device_s"])["tile_w"] <= 128
    assert rows[choice.tile_w]["why"].startswith("chosen")
    assert "hailo8l behind PCIe gen3" in choice.reason and choice.prediction["rtf"] == rows[choice.tile_w]["rtf"]


def test_the_link_changes_the_price():
    model = random_model(TINY, seed=1)
    gen2, gen3 = (choose(model, _settings(link=link), CheckLimits()) for link in ("gen2", "gen3"))
    assert gen2.prediction["device_s"] > gen3.prediction["device_s"]


def test_stream_chooses_among_the_device_plans_for_the_hop():
    model = random_model(dataclasses.replace(TINY, causal=True, norm_type=NormType.CLN), seed=2)
    choice = choose(model, _settings(job="stream", hop_ms=16.0), CheckLimits())
    assert choice.stream_plan in ("per-hop", "rf-windows") and len(choice.candidates) >= 2
    assert sum(row["why"].startswith("chosen") for row in choice.candidates) == 1
    assert choice.prediction["hop_samples"] == 128 and choice.prediction["device_ms_per_hop"] > 0


def test_settings_are_refused_in_one_line():
    with pytest.raises(UserError, match="--job stream needs --hop-ms"):
        _settings(job="stream")
    with pytest.raises(UserError, match="hailo10h use export/noise/compile"):
        _settings(hw_arch="hailo10h")


def _noise_record(reached: bool, n16: int, si: dict) -> dict:
    """A record with the fields ``analyze_noise`` writes that the build reads."""
    return {
        "si_snri_db": si,
        "n_layers": 40,
        "n_layers_16bit": n16,
        "layers_16bit": [f"s/conv{k}" for k in range(n16)],
        "target_reached": reached,
        "final_output_si_snr_vs_float_db_all8": 21.0,
        "final_output_si_snr_vs_float_db_advised": 27.0,
        "per_stage_sqnr_db_all8": {"s": 30.0},
        "per_layer_sqnr_db": {"s/conv0": 30.0},
        "seconds": 1.0,
    }


def test_the_advice_warns_on_a_missed_target_and_on_many_16_bit_layers():
    from convtasnet_hailo.build.steps import noise_summary

    sources = {"float": 12.0, "all8": 11.0, "advised": 11.8, "all16": 12.0}
    fine = noise_summary(_noise_record(True, 8, sources), 0.3)
    assert fine["warnings"] == [] and abs(fine["heldout_si_snri_loss_db"] - 0.2) < 1e-9
    assert "SI-SNRi loss against float <= 0.3 dB" in fine["target"]
    loud = noise_summary(_noise_record(False, 9, dict.fromkeys(sources)), 0.3)
    assert len(loud["warnings"]) == 2 and "NOT reach" in loud["warnings"][0] and "9 of 40" in loud["warnings"][1]
    assert loud["heldout_si_snri_loss_db"] is None and "SI-SNR against float >= 25 dB" in loud["target"]
