"""Packing within HailoRT's limits, and the `plan` report (table, JSON, PNG)."""

import json

import pytest

from convtasnet_hailo.cli import main
from convtasnet_hailo.errors import UserError
from convtasnet_hailo.plan.packing import (
    HefPack, NetworkGroup, Packing, RuntimeLimits, one_hef_per_stage, pack_stages,
)


def test_packing_joins_eight_stages_per_network_group_one_group_per_hef():
    """Stages run as networks of a joined network group (the vstream API addresses networks by
    name; InferModel cannot): 51 stages -> 7 HEFs of one network group each, one window."""
    stages = [f"s{i}" for i in range(51)]
    packing = pack_stages(stages)
    assert [len(g.networks) for g in packing.network_groups] == [8] * 6 + [3]
    assert len(packing.hefs) == 7 and all(len(h.network_groups) == 1 for h in packing.hefs)
    assert packing.windows == 1 and packing.violations() == [] and packing.location("s50") == ("pack6", "pack6")
    alone = pack_stages(stages, networks_per_group=1)  # one network group (and HEF) per stage
    assert len(alone.network_groups) == 51 and alone.windows == 2 and alone.hard_violations() == []
    assert "2 windows" in alone.window_note() and "--networks-per-group 8" in alone.window_note()


def test_one_hef_per_stage_breaks_the_device_limit_and_says_what_to_change():
    problems = one_hef_per_stage([f"s{i}" for i in range(77)]).violations()
    assert len(problems) == 1 and "77 stages need 77 network groups" in problems[0]
    assert "maximum allowed core-ops: 32" in problems[0] and "3 windows" in problems[0] and "--block-chan" in problems[0]
    crowded = Packing((HefPack("h", tuple(NetworkGroup(f"g{i}", ("s",)) for i in range(3))),),
                      RuntimeLimits(network_groups_per_hef=2))
    assert "Too many network_groups on a given HEF" in crowded.violations()[0]
    assert len(pack_stages([f"s{i}" for i in range(80)]).hefs) == 10
    assert len(pack_stages([f"s{i}" for i in range(80)], RuntimeLimits(networks_per_network_group=4)).hefs) == 20
    with pytest.raises(UserError, match="--networks-per-group 9"):
        pack_stages(["a"], networks_per_group=9)


def test_plan_report_of_the_full_size_model(tmp_path, capsys):
    assert main(["plan", "--tile-w", "256", "--json", str(tmp_path / "plan.json")]) == 0
    summary = json.loads((tmp_path / "plan.json").read_text())
    assert summary["stage_invocations_per_utterance"] == summary["stages"] == 51 <= 52
    assert summary["network_groups"] == 7 <= 32 and summary["hefs"] == 7  # 8 stages joined per network group
    assert summary["fits_runtime_limits"] and summary["configure_windows"] == 1
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


def test_check_rejects_a_packing_that_breaks_a_limit_and_says_what_to_change(tmp_path, capsys):
    out = tmp_path / "export"
    # 2,084 channel-block stages -> 261 network groups: runnable only in 9 configuration windows
    assert main(["export", "--random-preset", "tiny", "--tile-w", "16", "--block-chan", "1", "--out", str(out)]) == 1
    capsys.readouterr()
    assert main(["check", str(out)]) == 1
    err = capsys.readouterr().err
    assert "261 network groups; a device configures at most 32 at once" in err and "9 windows per utterance" in err
    assert "--block-chan" in err and "--networks-per-group" not in err
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["packing"]["hefs"][0]["network_groups"][0]["networks"] = ["a"] * 9  # a foreign packing
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert main(["check", str(out)]) == 1
    assert "holds 9 networks; at most 8" in capsys.readouterr().err
    assert main(["export", "--random-preset", "tiny", "--tile-w", "16", "--out", str(tmp_path / "fused")]) == 0
    assert main(["check", str(tmp_path / "fused")]) == 0
    assert "2 HEF(s), 2 network group(s) within HailoRT's limits" in capsys.readouterr().out
