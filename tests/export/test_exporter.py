import json

import numpy as np
import pytest

from convtasnet_hailo.backends.registry import load_backend
from convtasnet_hailo.errors import UserError
from convtasnet_hailo.export.exporter import export_monolithic, export_plan
from convtasnet_hailo.export.graph_check import check_export
from convtasnet_hailo.export.manifest import read_manifest
from convtasnet_hailo.model.random_init import random_model
from convtasnet_hailo.plan import PlanOptions, build_plan
from convtasnet_hailo.runtime.executor import StitchedExecutor
from tests.conftest import TINY, assert_within_contract

QUIET = dict(report=lambda _: None)


@pytest.fixture
def model():
    return random_model(TINY, seed=9)


def test_manifest_round_trip_describes_every_stage(model, tmp_path):
    plan = build_plan(model, PlanOptions(fuse=False))
    result = export_plan(plan, 16, tmp_path, {"source": "test", "config": TINY.to_json()}, **QUIET)
    manifest = read_manifest(tmp_path)
    assert manifest == result.manifest
    assert [e.name for e in manifest.stages] == [s.name for s in plan.stages]
    depth = manifest.stage("tcn2_depth")
    assert depth.inputs[0].halo == (4, 4) and depth.inputs[0].shape == (1, 12, 1, 24)
    assert depth.host_before == ("Normalize(tcn2_in -> tcn2_in_norm)",)
    assert depth.host_after == ("Normalize(tcn2_depth -> tcn2_depth_norm)",)
    assert manifest.plan.to_json() == {
        "path": "full-chain",
        "tile_w": 16,
        "block_chan": None,
        "fused": False,
        "device_norms": False,
        "gln_in_stages": False,
        "halo_edges": False,
        "skip_sums_in_stages": False,
        "expose_internal": False,
        "opset": 13,
        "monolithic": False,
        "n_stages": len(plan.stages),
        "rf_hop_frames": None,
        "rf_window": None,
        "rf_max_width": 512,
    }
    assert {
        "op": "OverlapAdd",
        "inputs": ["decoder_pre"],
        "outputs": ["decoder_head"],
        "params": {"stride": 8},
    } in manifest.host_steps


def test_reexport_reuses_unchanged_files(model, tmp_path):
    plan = build_plan(model, PlanOptions(fuse=False))
    first = export_plan(plan, 16, tmp_path, {}, **QUIET)
    again = export_plan(plan, 16, tmp_path, {}, **QUIET)
    assert len(first.written) == len(plan.stages) and again.written == [] and len(again.reused) == len(plan.stages)


def test_edited_onnx_is_detected_by_check_and_backend(model, tmp_path):
    plan = build_plan(model, PlanOptions(fuse=False))
    export_plan(plan, 16, tmp_path, {}, **QUIET)
    with open(tmp_path / "tcn1_in.onnx", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(UserError, match="stage tcn1_in: .* was changed after export"):
        check_export(tmp_path)
    with pytest.raises(UserError, match="stage tcn1_in"):
        StitchedExecutor(plan, load_backend("onnxruntime", export_dir=tmp_path), 16)


def test_foreign_export_and_wrong_plan_parameters_are_errors(model, tmp_path):
    export_plan(build_plan(random_model(TINY, seed=1), PlanOptions(fuse=False)), 16, tmp_path, {}, **QUIET)
    plan = build_plan(model, PlanOptions(fuse=False))
    with pytest.raises(UserError, match="is not this model's stage"):
        StitchedExecutor(plan, load_backend("onnxruntime", export_dir=tmp_path), 16)
    with pytest.raises(UserError, match="no export for tile_w 32"):
        StitchedExecutor(plan, load_backend("onnxruntime", export_dir=tmp_path), 32)
    with pytest.raises(UserError, match="block_chan"):
        StitchedExecutor(
            build_plan(model, PlanOptions(block_chan=4, fuse=False)),
            load_backend("onnxruntime", export_dir=tmp_path),
            16,
        )
    with pytest.raises(UserError, match="needs exported stages"):
        load_backend("onnxruntime")


def test_missing_or_foreign_manifest(tmp_path):
    with pytest.raises(UserError, match="no manifest.json"):
        check_export(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(UserError, match="not a readable convtasnet-hailo manifest"):
        read_manifest(tmp_path)


def test_channel_block_manifest_records_the_blocks(model, tmp_path):
    plan = build_plan(model, PlanOptions(block_chan=5, fuse=False))
    export_plan(plan, 16, tmp_path, {}, **QUIET)
    blocks = [e.block for e in read_manifest(tmp_path).stages if e.block and e.block["parent"] == "tcn0_in"]
    # tcn0_in: 8 -> 12 channels in blocks of 5: out blocks 0:5, 5:10, 10:12 x in blocks 0:5, 5:8
    assert sorted((b["out_channels"], b["in_channels"]) for b in blocks) == sorted(
        (o, i) for o in ([0, 5], [5, 10], [10, 12]) for i in ([0, 5], [5, 8])
    )
    assert {b["conv_output"] for b in blocks} == {"tcn0_in_conv"}
    assert check_export(tmp_path) == []


def test_monolithic_export_reports_what_the_parser_would_reject(model, tmp_path):
    result = export_monolithic(model, 400, tmp_path, {})
    rejected = {v.op for v in result.violations if v.rule == "allowed_ops"}
    assert {"Reshape", "ConvTranspose", "ReduceMean"} <= rejected
    assert read_manifest(tmp_path).plan.monolithic is True
    import onnxruntime as ort
    import torch

    wav = np.random.default_rng(0).standard_normal((1, 1, 400)).astype(np.float32)
    session = ort.InferenceSession(str(tmp_path / result.manifest.stages[0].file))
    with torch.no_grad():
        expected = model(torch.from_numpy(wav)).numpy()
    assert_within_contract(session.run(None, {"wav": wav})[0], expected, "monolithic")
