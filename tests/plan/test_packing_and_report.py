"""Packing within HailoRT's limits, and the `plan` report (table, JSON, PNG)."""

import json

import pytest

from convtasnet_hailo.cli import main
from convtasnet_hailo.errors import UserError
from convtasnet_hailo.plan.packing import (
    HAILORT_4_23,
    HAILORT_5,
    ExecutionMode,
    HefPack,
    NetworkGroup,
    Packing,
    PackingRequest,
    RuntimeLimits,
    limits_for,
    one_hef_per_stage,
    pack_stages,
)


def test_scheduled_groups_give_every_stage_its_own_group_and_hef():
    """The default mode: HailoRT's scheduler dispatches a frame only when every stream of a group
    has one (infer_request_accumulator.cpp), so a separately invoked stage is its own group:
    51 stages -> 51 groups, 2 windows of 32, a switch per stage and utterance."""
    stages = [f"s{i}" for i in range(51)]
    packing = pack_stages(stages)
    assert packing.mode is ExecutionMode.SCHEDULED_GROUPS and len(packing.hefs) == 51 == len(packing.network_groups)
    assert packing.windows == 2 and packing.hard_violations() == [] and packing.location("s50") == ("s50", "s50")
    note = packing.window_note()
    assert "2 windows" in note and "--execution-mode activated_packs --networks-per-group 8" in note
    run = packing.execution(stages)
    assert (run["switches"], run["activations"], run["configure_windows"], run["network_groups_configured"]) == (
        51,
        0,
        2,
        51,
    )
    assert packing.execution(stages[:32])["network_groups_configured"] == 32  # one window entered, still reloaded
    with pytest.raises(UserError, match="--networks-per-group 8 with --execution-mode scheduled_groups"):
        pack_stages(stages, networks_per_group=8, mode=ExecutionMode.SCHEDULED_GROUPS)


def test_activated_packs_join_eight_stages_per_single_group_hef():
    stages = [f"s{i}" for i in range(51)]
    packing = pack_stages(stages, networks_per_group=8)
    assert packing.mode is ExecutionMode.ACTIVATED_PACKS
    assert [len(g.networks) for g in packing.network_groups] == [8] * 6 + [3]
    assert len(packing.hefs) == 7 and all(len(h.network_groups) == 1 for h in packing.hefs)
    assert packing.windows == 1 and packing.violations() == [] and packing.location("s50") == ("pack6", "pack6")
    run = packing.execution(stages)
    assert (run["switches"], run["activations"], run["network_groups_configured"]) == (0, 7, 0)
    assert Packing.from_json(packing.to_json()) == packing


def test_packing_requests_follow_the_target():
    stages = [f"s{i}" for i in range(51)]
    ten = PackingRequest(hw_arch="hailo10h").packing(stages)
    assert ten.limits == HAILORT_5 and ten.windows == 2 and ten.execution(stages)["network_groups_per_device"] == 26
    with pytest.raises(UserError, match="activated_packs on hailo10h: HailoRT 5 runs only InferModel"):
        PackingRequest(mode="activated_packs", hw_arch="hailo10h")
    assert limits_for("hailo8l") == HAILORT_4_23
    # exports from before the modes: joined groups can only be activated packs
    old = {
        "limits": {"network_groups_per_device": 32, "network_groups_per_hef": 8, "networks_per_network_group": 8},
        "hefs": [{"name": "pack0", "network_groups": [{"name": "pack0", "networks": ["a", "b"]}]}],
    }
    assert Packing.from_json(old).mode is ExecutionMode.ACTIVATED_PACKS


def test_one_hef_per_stage_breaks_the_device_limit_and_says_what_to_change():
    problems = one_hef_per_stage([f"s{i}" for i in range(77)]).violations()
    assert len(problems) == 1 and "77 stages need 77 network groups" in problems[0]
    assert (
        "maximum allowed core-ops: 32" in problems[0] and "3 windows" in problems[0] and "--block-chan" in problems[0]
    )
    crowded = Packing(
        (HefPack("h", tuple(NetworkGroup(f"g{i}", ("s",)) for i in range(3))),), RuntimeLimits(network_groups_per_hef=2)
    )
    assert "Too many network_groups on a given HEF" in crowded.violations()[0]
    joined = Packing((HefPack("h", (NetworkGroup("g", ("a", "b")),)),), RuntimeLimits())  # scheduled, joined
    assert "cannot run one at a time" in joined.hard_violations()[0]
    assert len(pack_stages([f"s{i}" for i in range(80)], networks_per_group=8).hefs) == 10
    assert (
        len(
            pack_stages(
                [f"s{i}" for i in range(80)],
                RuntimeLimits(networks_per_network_group=4),
                mode=ExecutionMode.ACTIVATED_PACKS,
            ).hefs
        )
        == 20
    )
    with pytest.raises(UserError, match="--networks-per-group 9"):
        pack_stages(["a"], networks_per_group=9)


def test_plan_out_writes_the_record_and_figure_the_old_options_wrote(tmp_path, capsys):
    """--out DIR: plan.json and plan.png there; --json FILE (deprecated) writes the same record,
    and the PNG beside it."""
    from convtasnet_hailo.model.random_init import random_model
    from convtasnet_hailo.plan import PlanOptions, build_plan
    from convtasnet_hailo.plan.cost_model import DeviceModel, predict
    from convtasnet_hailo.plan.facts import PlanFacts
    from convtasnet_hailo.plan.report import summarize_plan
    from tests.conftest import TINY

    argv = ["plan", "--random-preset", "tiny", "--tile-w", "16"]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 0
    assert main([*argv, "--json", str(tmp_path / "old" / "p.json")]) == 0
    out = capsys.readouterr().out
    assert f"wrote {tmp_path / 'out' / 'plan.json'}" in out and f"wrote {tmp_path / 'old' / 'p.png'}" in out
    record = (tmp_path / "out" / "plan.json").read_text()
    assert record == (tmp_path / "old" / "p.json").read_text()
    assert (tmp_path / "out" / "plan.png").stat().st_size > 1000 and (tmp_path / "old" / "p.png").is_file()
    # the cost model reads the same facts from the plan and from its record
    plan = build_plan(random_model(TINY, seed=0), PlanOptions())
    summary = summarize_plan(plan, 16, pack_stages([s.name for s in plan.stages]))
    assert PlanFacts.from_json(json.loads(record)) == summary.facts
    assert predict(summary.facts, 2.0, DeviceModel())["device_s"] > 0


def test_plan_report_of_the_full_size_model(tmp_path, capsys):
    assert main(["plan", "--random-preset", "full-8k", "--tile-w", "256", "--json", str(tmp_path / "plan.json")]) == 0
    summary = json.loads((tmp_path / "plan.json").read_text())
    assert summary["stage_invocations_per_utterance"] == summary["stages"] == 51 <= 52
    # scheduled_groups (the default): a network group per stage, two configure windows of 32
    assert summary["network_groups"] == 51 == summary["hefs"] and summary["configure_windows"] == 2
    assert summary["fits_runtime_limits"] and "2 windows per utterance" in summary["window_note"]
    execution = summary["execution"]
    assert (execution["mode"], execution["switches"], execution["network_groups_configured"]) == (
        "scheduled_groups",
        51,
        51,
    )
    packs = summary["execution_modes"]["activated_packs"]
    assert (packs["network_groups"], packs["configure_windows"], packs["activations"]) == (7, 1, 7)
    assert "single-context" in packs["needs"]
    assert summary["host_steps"] == 77 and len(summary["per_stage"]) == 51
    assert summary["boundary_bytes_per_audio_second_16bit"] == 2 * summary["boundary_values_per_audio_second"]
    depth = next(r for r in summary["per_stage"] if r["name"] == "tcn5_depth")
    assert depth["inputs"]["tcn5_in_norm"]["halo"] == [32, 32] and depth["weights"] == 512 * 3 + 512 + 1
    assert (tmp_path / "plan.png").stat().st_size > 10_000
    out = capsys.readouterr().out
    assert "51 stages (51 invocations per utterance)" in out and "execution mode scheduled_groups: 51 network" in out
    assert (
        main(
            [
                "plan",
                "--random-preset",
                "full-8k",
                "--tile-w",
                "256",
                "--hw-arch",
                "hailo10h",
                "--json",
                str(tmp_path / "h10.json"),
            ]
        )
        == 0
    )
    ten = json.loads((tmp_path / "h10.json").read_text())["execution"]
    assert (ten["network_groups_per_device"], ten["configure_windows"]) == (26, 2)
    assert main(["plan", "--random-preset", "full-8k", "--no-fuse", "--json", str(tmp_path / "unfused.json")]) == 0
    unfused = json.loads((tmp_path / "unfused.json").read_text())
    assert (
        unfused["stages"] == 77
        and unfused["boundary_values_per_audio_second"] > summary["boundary_values_per_audio_second"]
    )


def test_check_rejects_a_packing_that_breaks_a_limit_and_says_what_to_change(tmp_path, capsys):
    out = tmp_path / "export"
    # 2,084 channel-block stages -> 261 network groups: runnable only in 9 configuration windows
    # (said, not failed: hailo_runtime runs it in windows)
    assert (
        main(
            [
                "export",
                "--random-preset",
                "tiny",
                "--tile-w",
                "16",
                "--block-chan",
                "1",
                "--execution-mode",
                "activated_packs",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["check", str(out)]) == 0
    said = capsys.readouterr().out
    assert "261 network groups; a device configures at most 32 at once" in said and "9 windows per utterance" in said
    assert "--block-chan" in said and "--networks-per-group" not in said
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["packing"]["hefs"][0]["network_groups"][0]["networks"] = ["a"] * 9  # a foreign packing
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert main(["check", str(out)]) == 1
    assert "holds 9 networks; at most 8" in capsys.readouterr().err
    assert (
        main(
            [
                "export",
                "--random-preset",
                "tiny",
                "--tile-w",
                "16",
                "--networks-per-group",
                "8",
                "--out",
                str(tmp_path / "fused"),
            ]
        )
        == 0
    )
    assert main(["check", str(tmp_path / "fused")]) == 0
    assert "2 HEF(s), 2 network group(s) within HailoRT's limits" in capsys.readouterr().out
    manifest = json.loads((tmp_path / "fused" / "manifest.json").read_text())
    manifest["packing"]["mode"] = "scheduled_groups"  # packs the scheduler would never dispatch
    (tmp_path / "fused" / "manifest.json").write_text(json.dumps(manifest))
    assert main(["check", str(tmp_path / "fused")]) == 1
    assert "cannot run one at a time" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["export", "--random-preset", "tiny", "--execution-mode", "sideways", "--out", str(tmp_path / "x")])
    assert (
        main(
            [
                "export",
                "--random-preset",
                "tiny",
                "--execution-mode",
                "scheduled_groups",
                "--networks-per-group",
                "4",
                "--out",
                str(tmp_path / "x"),
            ]
        )
        == 2
    )
    assert "scheduler dispatches a frame only when every stream" in capsys.readouterr().err


def test_plan_names_the_model_and_writes_the_streaming_choice_with_hop_ms(tmp_path, capsys):
    """`plan` says which model it priced, in its summary and its record; with --hop-ms the streaming
    choice is written to --out too (it used to be printed only)."""
    assert main(["plan", "--random-preset", "tiny", "--seed", "4", "--out", str(tmp_path / "p")]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "model: random tiny weights, seed 4"
    record = json.loads((tmp_path / "p" / "plan.json").read_text())
    assert record["model_source"] == "random tiny weights, seed 4" and record["model_seed"] == 4
    argv = ["plan", "--random-preset", "full-8k-causal", "--hop-ms", "16", "--out", str(tmp_path / "s")]
    assert main(argv) == 0
    record = json.loads((tmp_path / "s" / "plan.json").read_text())
    assert record["model_source"].startswith("random full-8k-causal") and record["plan"] and record["candidates"]
    assert f"wrote {tmp_path / 's' / 'plan.json'}" in capsys.readouterr().out
