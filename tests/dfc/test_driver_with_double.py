"""The driver, the worker protocol and the case runner against the hailo_sdk_client TEST DOUBLE."""

import json

import numpy as np
import pytest

from convtasnet_hailo.dfc.driver import CompileJob, compile_stage
from convtasnet_hailo.dfc.worker import run_in_worker
from convtasnet_hailo.export.exporter import export_plan
from convtasnet_hailo.model.random_init import random_model
from convtasnet_hailo.plan import PlanOptions, build_plan
from tests.conftest import TINY
from tests.doubles import sdk as sdk_double


@pytest.fixture
def export(tmp_path):
    plan = build_plan(random_model(TINY), PlanOptions(fuse=False))
    export_plan(plan, 16, tmp_path / "export", {}, report=lambda _: None)
    return plan, tmp_path / "export"


def _job(plan, export_dir, tmp_path, stage_name="tcn0_out"):
    from convtasnet_hailo.compile.runner import end_node_names

    stage = plan.stage(stage_name)
    calib = []
    for port in stage.inputs:
        shape = stage.input_shapes(16)[port.name]
        path = tmp_path / f"{port.name}.npy"
        np.save(path, np.zeros((4, 1, shape[3], shape[1]), np.float32))
        calib.append(str(path))
    return CompileJob(
        stage.name,
        str(export_dir / f"{stage.name}.onnx"),
        tuple(p.name for p in stage.inputs),
        tuple(stage.input_shapes(16)[p.name] for p in stage.inputs),
        end_node_names(export_dir / f"{stage.name}.onnx"),
        "hailo8",
        "allocator_param(timeout=25m)\n",
        str(tmp_path / "out"),
        f"{stage.name}_case",
        tuple(calib),
    )


def test_success_calls_the_documented_sequence(export, tmp_path, monkeypatch):
    plan, export_dir = export
    calls = tmp_path / "calls.jsonl"
    sdk = sdk_double.install(monkeypatch, calls=calls)
    result = compile_stage(_job(plan, export_dir, tmp_path), sdk)
    assert result.har_success and result.hef_success and result.sdk_version == "3.33.1-test-double"
    sequence = [json.loads(line)["call"] for line in calls.read_text().splitlines()]
    assert sequence == [
        "ClientRunner",
        "translate_onnx_model",
        "save_har",
        "load_model_script",
        "optimize",
        "save_har",
        "compile",
    ]
    optimize = [json.loads(x) for x in calls.read_text().splitlines()][4]
    assert optimize["keys"] == ["tcn0_out/input_layer1", "tcn0_out/input_layer2"]  # two-input stage, HN names
    assert json.loads(open(result.hef_path).read())["hef_double"] == "tcn0_out"


def test_allocator_failure_is_normalized(export, tmp_path, monkeypatch):
    plan, export_dir = export
    sdk = sdk_double.install(monkeypatch, behavior={"tcn0": "allocator"})
    result = compile_stage(_job(plan, export_dir, tmp_path), sdk)
    assert result.har_success and not result.hef_success
    assert result.exception_type == "BackendAllocatorException" and "Agent infeasible" in result.failure_head
    assert "Agent infeasible" in open(result.hef_log).read()
    assert "exception_type: BackendAllocatorException" in open(result.failure_file).read()


def test_parser_failure_is_normalized(export, tmp_path, monkeypatch):
    plan, export_dir = export
    sdk = sdk_double.install(monkeypatch, behavior={"tcn0": "parser"})
    result = compile_stage(_job(plan, export_dir, tmp_path), sdk)
    assert not result.har_success and result.exception_type == "ParsingWithRecommendationException"
    assert "UnsupportedShuffleLayerError" in result.failure_head


def test_wrong_calibration_layout_is_caught(export, tmp_path, monkeypatch):
    plan, export_dir = export
    sdk = sdk_double.install(monkeypatch)
    job = _job(plan, export_dir, tmp_path, "tcn0_in")
    np.save(job.calib_paths[0], np.zeros((4, 8, 1, 16), np.float32))  # NCHW instead of NHWC
    result = compile_stage(job, sdk)
    assert result.exception_type == "BadInputsShape" and not result.har_success


@pytest.mark.parametrize("behavior, expected", [("ok", None), ("timeout", "Timeout"), ("crash", "UnknownError")])
def test_worker_protocol(export, tmp_path, monkeypatch, behavior, expected):
    import sys

    plan, export_dir = export
    sdk_double.install(monkeypatch, behavior={"tcn0": behavior})
    job = _job(plan, export_dir, tmp_path)
    result = run_in_worker(job, sys.executable, tmp_path / "job.json", timeout_s=20 if behavior != "timeout" else 3)
    if expected is None:
        assert result.hef_success and result.sdk_version == "3.33.1-test-double"
    else:
        assert not result.hef_success and result.exception_type == expected and result.failure_file


def test_worker_side_imports_neither_torch_nor_onnxruntime():
    """What a compile node imports (the worker, and remote.py where an executor runs a case)."""
    import subprocess
    import sys

    code = (
        "import sys, convtasnet_hailo.dfc.worker, convtasnet_hailo.dfc.remote, "
        "convtasnet_hailo.export.manifest; "
        "print(sorted(m for m in ('torch', 'onnxruntime', 'onnx') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
