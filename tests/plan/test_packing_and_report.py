"""Packing within HailoRT's limits, and the `plan` report (table, JSON, PNG)."""

import json

import pytest

from convtasnet_hailo.cli import main
from convtasnet_hailo.errors import UserError
from convtasnet_hailo.plan.packing import (
    HefPack, NetworkGroup, Packing, RuntimeLimits, one_hef_per_stage, pack_stages,
)


def test_packing_gives_each_stage_a_network_group_and_fills_hefs():
    """HailoRT's InferModel addresses network groups, not networks inside one: a stage each."""
    stages = [f"s{i}" for i in range(51)]
    packing = pack_stages(stages)
    assert len(packing.network_groups) == 51 and [len(h.network_groups) for h in packing.hefs] == [8] * 6 + [3]
    assert packing.windows == 2 and packing.hard_violations() == [] and "2 windows" in packing.window_note()
    assert packing.location("s50") == ("pack6", "ng50")
    grouped = pack_stages(stages, networks_per_group=8)  # the legacy multi-network layout (unconfirmed)
    assert len(grouped.network_groups) == 7 and grouped.windows == 1 and grouped.violations() == []


def test_one_hef_per_stage_breaks_the_device_limit_and_says_what_to_change():
    problems = one_hef_per_stage([f"s{i}" for i in range(77)]).violations()
    assert len(problems) == 1 and "77 stages need 77 network groups" in problems[0]
    assert "maximum allowed core-ops: 32" in problems[0] and "3 windows" in problems[0] and "--block-chan" in problems[0]
    crowded = Packing((HefPack("h", tuple(NetworkGroup(f"g{i}", ("s",)) for i in range(3))),),
                      RuntimeLimits(network_groups_per_hef=2))
    assert "Too many network_groups on a given HEF" in crowded.violations()[0]
    assert len(pack_stages([f"s{i}" for i in range(80)], RuntimeLimits(network_groups_per_hef=2)).hefs) == 40
    with pytest.raises(UserError, match="--networks-per-group 9"):
        pack_stages(["a"], networks_per_group=9)


def test_plan_report_of_the_full_size_model(tmp_path, capsys):
    assert main(["plan", "--tile-w", "256", "--json", str(tmp_path / "plan.json")]) == 0
    summary = json.loads((tmp_path / "plan.json").read_text())
    assert summary["stage_invocations_per_utterance"] == summary["stages"] == 51 <= 52
    assert summary["network_groups"] == 51 and summary["hefs"] == 7  # one network group per stage (InferModel)
    assert not summary["fits_runtime_limits"] and summary["configure_windows"] == 2
    assert summary["host_steps"] == 77 and len(summary["per_stage"]) == 51
    assert summary["boundary_bytes_per_audio_second_16bit"] == 2 * summary["boundary_values_per_audio_second"]
    depth = next(r for r in summary["per_stage"] if r["name"] == "tcn5_depth")
    assert depth["inputs"]["tcn5_in_norm"]["halo"] == [32, 32] and depth["weights"] == 512 * 3 + 512 + 1
    assert (tmp_path / "plan.png").stat().st_size > 10_000
    assert "51 stages (51 invocations per utterance)" in capsys.readouterr().out
    assert main(["plan", "--no-fuse", "--json", str(tmp_path / "unfused.json")]) == 0
    unfused = json.loads((tmp_path / "unfused.json").read_text())
    assert unfused["stages"] == 77 and unfused["boundary_values_per_audio_second"] > \
        summary["boundary_values_per_audio_second"]


def test_check_rejects_a_packing_that_breaks_a_limit_and_warns_about_windows(tmp_path, capsys):
    out = tmp_path / "export"
    assert main(["export", "--random-preset", "tiny", "--tile-w", "16", "--block-chan", "1", "--out", str(out)]) == 0
    assert main(["check", str(out)]) == 0  # runnable in windows: a warning that states the cost
    err = capsys.readouterr().err
    assert "warning:" in err and "a device configures at most 32 at once" in err and "windows per utterance" in err
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["packing"]["hefs"][0]["network_groups"][0]["networks"] = ["a"] * 9  # a foreign packing
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert main(["check", str(out)]) == 1
    assert "holds 9 networks; at most 8" in capsys.readouterr().err
    assert main(["export", "--random-preset", "tiny", "--tile-w", "16", "--out", str(tmp_path / "fused")]) == 0
    assert main(["check", str(tmp_path / "fused")]) == 0
    assert "within HailoRT's limits" in capsys.readouterr().out
