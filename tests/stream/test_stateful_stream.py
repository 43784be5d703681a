"""`stream --plan stateful` and `--plan auto` by backend: the stateful graph on onnxruntime equals
the offline model on every sample (cLN and cgLN, from a checkpoint and from an export that carries
it); `export --stateful` carries the graph's record in manifest.json; the Hailo backends keep the
device cost model's choice."""

from __future__ import annotations

import dataclasses
import json

import pytest
import soundfile as sf

from convtasnet_hailo.assets import DEMO_MIXTURE
from convtasnet_hailo.cli import main
from convtasnet_hailo.errors import UserError
from convtasnet_hailo.model.checkpoint import save_model
from convtasnet_hailo.model.config import MaskAct, NormType
from convtasnet_hailo.model.random_init import random_model
from convtasnet_hailo.plan.cost_model import DeviceModel
from convtasnet_hailo.runtime.stream_choice import CPU_BACKENDS, ChoiceBasis, choose_stream_plan, for_backend
from tests.conftest import TINY

CAUSAL = dataclasses.replace(TINY, causal=True, norm_type=NormType.CLN)
FRAMES = sf.info(DEMO_MIXTURE).frames


def _checkpoint(tmp_path, config=CAUSAL):
    path = tmp_path / f"causal_{config.norm_type.value}_{config.n_src}.pth"
    save_model(random_model(config, seed=3), path)
    return str(path)


def _stream(tmp_path, name, *args) -> tuple[int, dict]:
    out = tmp_path / name
    status = main(["stream", str(DEMO_MIXTURE), "--hop-ms", "8", "--out", str(out), *args])
    record = json.loads((out / "stream_run.json").read_text()) if (out / "stream_run.json").is_file() else {}
    return status, record


def _exact(record: dict) -> None:
    parity = record["parity_vs_offline"]
    assert parity["all_close"] and parity["samples_compared"] == FRAMES, parity
    assert parity["max_abs"] <= parity["bound"]


@pytest.mark.parametrize(
    "config",
    [CAUSAL, dataclasses.replace(CAUSAL, norm_type=NormType.CGLN, n_src=3, mask_act=MaskAct.SIGMOID)],
    ids=["cln", "cgln_three_sources_sigmoid"],
)
@pytest.mark.parametrize("plan", ["stateful", "auto"])
def test_the_stateful_plan_equals_the_offline_model_on_every_sample(tmp_path, config, plan):
    status, record = _stream(tmp_path, "out", "--model", _checkpoint(tmp_path, config), "--plan", plan)
    assert status == 0
    _exact(record)
    choice = record["stream_plan"]
    assert choice["plan"] == "stateful" and choice["device_plan"] in ("per_hop", "rf_windows")
    assert choice["chosen_by"] == ("requested" if plan == "stateful" else "cpu_backend")
    latency = record["latency"]
    assert latency["stage_calls_per_hop"] == pytest.approx(1.0, abs=0.01)  # one graph call per hop (and the flush)
    assert latency["host_ms_per_hop"]["p50"] == pytest.approx(latency["per_hop_compute_ms"]["p50"])  # all host
    assert record["device_prediction"]["device_ms_per_hop"] > 0  # the chip's plan still priced
    assert record["stateful_macs_per_hop"] > 0 and record["stateful_gmac_per_s_at_p50"] > 0
    assert (tmp_path / "out" / "onnx" / "stateful" / "stateful.json").is_file()  # exported into the run folder


def test_a_requested_device_plan_still_runs_on_a_cpu_backend(tmp_path):
    status, record = _stream(tmp_path, "out", "--model", _checkpoint(tmp_path), "--plan", "per-hop")
    assert status == 0
    _exact(record)
    assert record["stream_plan"]["plan"] == "per_hop" and record["stream_plan"]["chosen_by"] == "requested"
    assert record["stateful_macs_per_hop"] is None and record["stateful_gmac_per_s_at_p50"] is None


def test_export_stateful_carries_the_record_and_stream_reads_it_from_the_export(tmp_path):
    from convtasnet_hailo.export.manifest import read_manifest
    from convtasnet_hailo.export.stateful import StatefulRecord, read_stateful

    model, export = _checkpoint(tmp_path), tmp_path / "export"
    assert main(["export", "--model", model, "--out", str(export), "--stateful", "8"]) == 0
    manifest = read_manifest(export)
    _, beside = read_stateful(export)
    assert manifest.stateful == beside and manifest.stateful.hop == 64 and manifest.tile_w == 64 // CAUSAL.stride
    assert StatefulRecord.from_json(manifest.stateful.to_json()) == manifest.stateful
    status, record = _stream(tmp_path, "from_export", "--export-dir", str(export), "--backend", "onnxruntime")
    assert status == 0 and record["stream_plan"]["plan"] == "stateful"
    assert record["parity_vs_offline"] is None  # no checkpoint to compare with: the export's own graph ran
    assert not (tmp_path / "from_export" / "onnx" / "stateful").exists()  # read from the export, not re-made
    status, record = _stream(
        tmp_path, "with_model", "--export-dir", str(export), "--backend", "onnxruntime", "--model", model
    )
    assert status == 0 and record["stream_plan"]["plan"] == "stateful"
    _exact(record)


def test_an_export_without_the_graph_streams_its_own_plan_and_refuses_plan_stateful(tmp_path, capsys):
    export = tmp_path / "export"
    assert main(["export", "--model", _checkpoint(tmp_path), "--out", str(export), "--tile-w", "8"]) == 0
    status, record = _stream(tmp_path, "auto", "--export-dir", str(export), "--backend", "onnxruntime")
    assert status == 0 and record["stream_plan"]["plan"] == "per_hop"
    assert (
        record["stream_plan"]["chosen_by"] == "cpu_backend" and "no stateful graph" in record["stream_plan"]["reason"]
    )
    capsys.readouterr()
    status, _ = _stream(
        tmp_path, "refused", "--export-dir", str(export), "--backend", "onnxruntime", "--plan", "stateful"
    )
    err = capsys.readouterr().err
    assert status == 2 and "export --stateful" in err and len(err.strip().splitlines()) == 1


def test_export_stateful_refuses_gln_and_non_causal_models_in_one_line(tmp_path, capsys):
    out = tmp_path / "export"
    assert main(["export", "--random-preset", "tiny", "--out", str(out), "--stateful", "8"]) == 2
    err = capsys.readouterr().err
    assert "not causal" in err and len(err.strip().splitlines()) == 1 and not out.exists()
    model = _checkpoint(tmp_path)
    assert main(["export", "--model", model, "--out", str(out), "--stateful", "8", "--monolithic"]) == 2
    assert "drop --monolithic" in capsys.readouterr().err


@pytest.mark.parametrize("backend", ["torch_proxy", "onnxruntime", "hailo_emulator", "hailo_runtime", "hailo_quant"])
def test_auto_chooses_by_backend(backend):
    model = random_model(CAUSAL, seed=3)
    device = choose_stream_plan(model, 64, DeviceModel())
    chosen = for_backend(device, "auto", backend, None)
    if backend in CPU_BACKENDS:
        assert chosen.kind == "stateful" and chosen.basis is ChoiceBasis.CPU_BACKEND
        assert chosen.device_kind == device.kind and chosen.prediction == device.prediction
    else:
        assert chosen.kind == device.kind and chosen.basis is ChoiceBasis.DEVICE_COST_MODEL
        assert chosen.reason == device.reason
        with pytest.raises(UserError, match="--plan stateful runs the stateful graph on onnxruntime"):
            for_backend(device, "stateful", backend, None)
    missing = "the export in X holds no stateful graph"
    fallback = for_backend(device, "auto", "onnxruntime", missing)
    assert fallback.kind == device.kind and missing in fallback.reason
    with pytest.raises(UserError, match=missing):
        for_backend(device, "stateful", "onnxruntime", missing)


def test_plan_refuses_the_stateful_plan_it_cannot_price(tmp_path, capsys):
    assert main(["plan", "--model", _checkpoint(tmp_path), "--hop-ms", "8", "--plan", "stateful"]) == 2
    err = capsys.readouterr().err
    assert "stream --plan stateful" in err and len(err.strip().splitlines()) == 1
