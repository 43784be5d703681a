"""Model-script lines in the forms public scripts use, and joined packs compiled as the Model Zoo
compiles joined networks (join the quantized runners, load a joint script, compile). The SDK
TEST DOUBLE accepts only line forms with a public precedent (cited in the double)."""

import json

import pytest

from convtasnet_hailo.cli import main
from convtasnet_hailo.dfc.driver import resolve_layer_names
from convtasnet_hailo.dfc.model_script import SINGLE_CONTEXT, joint_script, optimization_lines, range_line
from tests.doubles import runtime as runtime_double
from tests.doubles import sdk as sdk_double

HN = {"layers": {"conv1": {"original_names": ["s/conv0", "s/prelu1"]}, "ew_add1": {"original_names": ["s/add2"]}}}


def test_lines_are_written_in_the_public_forms_and_mapped_to_parsed_layers():
    assert range_line("s/conv0", -1.5, 2.0) == "quantization_param([s/conv0], force_range_out=[-1.5, 2])"
    clip = optimization_lines(True, True, 99.9, ["s/conv0", "s/prelu1", "s/add2"])[1]
    assert clip == (
        "pre_quantization_optimization(activation_clipping, layers=[s/conv0, s/prelu1, s/add2], "
        "mode=percentile, clipping_values=[0.1, 99.9])"
    )
    with pytest.raises(ValueError, match="needs the layers it clips"):
        optimization_lines(True, True, 99.9)
    script = f"{clip}\n{range_line('s/prelu1', 0, 1)}\nquantization_param([s/conv0, s/add2], precision_mode=a16_w16)\n"
    assert resolve_layer_names(script, HN, "s") == (
        "pre_quantization_optimization(activation_clipping, layers=[s/conv1, s/ew_add1], mode=percentile, "
        "clipping_values=[0.1, 99.9])\nquantization_param([s/conv1], force_range_out=[0, 1])\n"
        "quantization_param([s/conv1, s/ew_add1], precision_mode=a16_w16)\n"
    )


@pytest.mark.parametrize(
    "line, accepted",
    [
        ("quantization_param([conv1, ew_add1], force_range_out=[0.0, 1.0])", True),
        ("quantization_param(conv1, force_range_out=[0.0, 1.0])", False),  # no public script names one bare layer
        (
            "pre_quantization_optimization(activation_clipping, layers=[conv1], mode=percentile, clipping_values=[0.1, 99.9])",  # noqa: E501
            True,
        ),
        (
            "pre_quantization_optimization(activation_clipping, layers={*}, mode=percentile, clipping_values=[0.1, 99.9])",  # noqa: E501
            False,
        ),  # the Model Zoo always lists activation_clipping's layers
        ("quantization_param({conv*}, precision_mode=a16_w16)", True),
        ("quantization_param(conv1, precision_mode=a16_w16)", True),
        ("context_switch_param(mode=disabled)", True),
        ("allocator_param(timeout=25m)", True),
        ("model_optimization_config(calibration, calibset_size=4)", True),
        (
            "normalization([127.5], [127.5])",
            False,
        ),  # the Model Zoo always names it: normalization1 = normalization(...)
        ("buffers(conv1, ew_add1, 2)", False),  # a real command, but this double knows no precedent for its form
    ],
)
def test_the_double_parses_only_forms_with_a_public_precedent(tmp_path, monkeypatch, line, accepted):
    import onnx
    from onnx import TensorProto, helper

    sdk = sdk_double.install(monkeypatch)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 1, 4])
    graph = helper.make_graph(
        [
            helper.make_node("Relu", ["x"], ["r"], name="n/relu0"),
            helper.make_node("Conv", ["r", "w"], ["c"], name="n/conv0"),
            helper.make_node("Add", ["c", "r"], ["y"], name="n/add0"),
        ],
        "g",
        [x],
        [y],
        [helper.make_tensor("w", TensorProto.FLOAT, [1, 1, 1, 1], [1.0])],
    )
    onnx.save(helper.make_model(graph), tmp_path / "n.onnx")
    runner = sdk.ClientRunner(hw_arch="hailo8")
    runner.translate_onnx_model(str(tmp_path / "n.onnx"), "n")
    assert {"conv1", "ew_add1"} <= set(x.split("/")[-1] for x in runner.get_hn_dict()["layers"])
    if accepted:
        runner.load_model_script(line + "\n")
    else:
        with pytest.raises(sdk.BackendScriptParserException, match=r"^Parsing failed at:\n>!<"):
            runner.load_model_script(line + "\n")


def test_joint_script_keeps_the_compile_time_lines_and_asks_for_one_context():
    stage = (
        "allocator_param(timeout=25m)\ncontext_switch_param(mode=enabled)\n"
        "quantization_param(s/conv0, precision_mode=a16_w16)\nperformance_param(fps=50)\n"
    )
    assert joint_script(stage) == f"{SINGLE_CONTEXT}\nallocator_param(timeout=25m)\nperformance_param(fps=50)\n"


def test_packs_load_the_joint_script_after_the_join_and_fail_when_one_context_is_too_small(
    tmp_path, monkeypatch, tiny_checkpoint, capsys
):
    calls = tmp_path / "calls.jsonl"
    sdk_double.install(monkeypatch, calls=calls)
    runtime_double.install(monkeypatch)
    export = tmp_path / "export"
    assert (
        main(
            [
                "export",
                "--model",
                str(tiny_checkpoint),
                "--tile-w",
                "16",
                "--out",
                str(export),
                "--execution-mode",
                "activated_packs",
            ]
        )
        == 0
    )
    assert main(["compile", "--export-dir", str(export), "--calib-count", "4"]) == 0
    records = [json.loads(line) for line in calls.read_text().splitlines()]
    first_join = next(i for i, r in enumerate(records) if r["call"] == "join")
    after = [r for r in records[first_join:] if r["call"] != "ClientRunner"]  # each joined HAR is loaded first
    assert [r["call"] for r in after[:9]] == ["join"] * 7 + ["load_model_script", "compile"]
    script = after[7]["text"]
    assert script.startswith(SINGLE_CONTEXT) and "quantization_param" not in script
    # a pack that needs two contexts: no HEF, and a line saying what to do
    monkeypatch.setenv("HAILO_DOUBLE_CONTEXTS", json.dumps({"encoder": 2}))
    capsys.readouterr()
    assert main(["compile", "--export-dir", str(export), "--calib-count", "4", "--variant-name", "again"]) == 1
    err = capsys.readouterr().err
    assert "pack pack0 did not fit one context (1 of 2 packs)" in err and "smaller --networks-per-group" in err


def test_noise_lines_with_clipping_and_headroom_load_in_the_double(tmp_path, monkeypatch):
    """Every stage's script from `noise` (clipping on, ranges pinned), its ONNX node names mapped to
    the parsed layers as `compile` maps them, passes the double's parser."""
    from convtasnet_hailo.export.exporter import export_plan
    from convtasnet_hailo.hailo import quant_scheme as qs
    from convtasnet_hailo.hailo.emulation import Precision
    from convtasnet_hailo.model.random_init import random_model
    from convtasnet_hailo.plan import build_plan
    from convtasnet_hailo.quantization.model_scripts import stage_script_lines
    from tests.conftest import TINY

    sdk = sdk_double.install(monkeypatch)
    plan = build_plan(random_model(TINY))
    export_plan(plan, 16, tmp_path / "export", {}, report=lambda _: None)
    scheme = qs.Scheme(clip_percentile=99.99, headroom=1.25)
    for stage in plan.stages:
        ranges = {op.output: (-1.0, 1.0) for op in stage.ops}
        text = "\n".join(stage_script_lines(stage, Precision(), scheme, ranges)) + "\n"
        assert "activation_clipping, layers=[" in text and "quantization_param([" in text
        runner = sdk.ClientRunner(hw_arch="hailo8")
        runner.translate_onnx_model(str(tmp_path / "export" / f"{stage.name}.onnx"), stage.name)
        runner.load_model_script(resolve_layer_names(text, runner.get_hn_dict(), stage.name))
