"""Which DFC made a HEF and which HailoRT reads it, HailoRT 5's slots, architectures and the
binding's exception layout: the doubles refuse as HailoRT's code does (sources in the doubles),
and hailo_runtime, `doctor` and `check` say what to do in one line."""

import json
import shutil

import pytest

from convtasnet_hailo.backends.registry import load_backend
from convtasnet_hailo.cli import main
from convtasnet_hailo.dfc.manifest import read_compile_manifest
from convtasnet_hailo.dfc.versions import HAILORT_TO_DFC, compare, hailort_for_dfc
from convtasnet_hailo.errors import UserError
from convtasnet_hailo.model.checkpoint import save_model
from convtasnet_hailo.model.config import ConvTasNetConfig
from convtasnet_hailo.model.random_init import random_model
from convtasnet_hailo.parity.compare import diff_tensor
from convtasnet_hailo.plan import build_plan
from convtasnet_hailo.plan.packing import HAILORT_5
from convtasnet_hailo.runtime.executor import StitchedExecutor
from tests.conftest import compile_with_sdk_double, speech_like
from tests.doubles import runtime as runtime_double


def _run(model, backend, tile_w=16, seconds=0.6):
    outputs = {}
    StitchedExecutor(build_plan(model), backend, tile_w).run(
        {"wav": speech_like(seconds, 8000, 1)[None, None]}, lambda n, t: outputs.__setitem__(n, t)
    )
    return outputs


def test_the_pairing_table_reads_as_hailo_published_it():
    assert HAILORT_TO_DFC["4.23"] == "3.33" and HAILORT_TO_DFC["4.20"] == "3.30" and HAILORT_TO_DFC["5.1"] == "5.1"
    assert compare("3.30.0", "4.23.0").ok is True and compare("3.33.0", "4.20.0").ok is False
    assert compare("3.33.1", "5.1.1").ok is False and compare(None, "4.23.0").ok is None
    assert compare("3.34.0", "4.24.0").ok is None  # not in the table: never guessed
    assert hailort_for_dfc("3.31.0") == "4.21" and hailort_for_dfc("5.2.0") == "5.2"


def test_a_hef_newer_than_hailort_gets_one_line_naming_both_versions(
    compiled_per_stage, monkeypatch, tmp_path, tiny_checkpoint, capsys
):
    model, _, hef_dir = compiled_per_stage
    assert read_compile_manifest(hef_dir).dfc_version == "3.33.1-test-double"
    hef = next(hef_dir.glob("encoder_*.hef"))
    assert json.loads(hef.read_text())["dfc_version"] == "3.33.1-test-double"
    hailo = runtime_double.install(monkeypatch, hailort="4.20.0")
    with pytest.raises(hailo.HailoRTException, match=r"^libhailort failed with error: 92 \(HAILO_HEF_NOT_SUPPORTED\)$"):
        hailo.HEF(str(hef))
    assert "Failed opening non-compatible HEF with the following unsupported extensions" in hailo.LOG[-1]
    assert (
        main(
            [
                "parity",
                "full-chain",
                "--model",
                str(tiny_checkpoint),
                "--backend",
                "hailo_runtime",
                "--hef-dir",
                str(hef_dir),
                "--tile-w",
                "16",
                "--length",
                "900",
                "--runs-dir",
                str(tmp_path / "r"),
            ]
        )
        == 2
    )
    ours = [x for x in capsys.readouterr().err.splitlines() if not x.startswith("[HailoRT]")]  # HailoRT's log
    assert len(ours) == 1 and "HailoRT 4.20.0 cannot read encoder_" in ours[0]
    err = ours[0]
    assert "compiled by DFC 3.33.1-test-double" in err and "recompile with DFC 3.30.x" in err
    assert "install HailoRT 4.23 or newer" in err
    runtime_double.install(monkeypatch)  # 4.23.0 reads it
    got = _run(model, load_backend("hailo_runtime", hef_dir=hef_dir))
    assert "final_output" in got


def test_doctor_and_check_compare_the_dfc_with_hailort(compiled_per_stage, monkeypatch, capsys):
    _, export, _ = compiled_per_stage
    runtime_double.install(monkeypatch, hailort="4.20.0")
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if "DFC and HailoRT" in x)
    assert "[MISS]" in line and "DFC 3.33.1-test-double are newer than HailoRT 4.20.0" in line
    assert main(["check", str(export)]) == 1
    assert "hailo8 HEFs: HEFs of DFC 3.33.1-test-double are newer than HailoRT 4.20.0" in capsys.readouterr().out
    runtime_double.install(monkeypatch)
    assert main(["doctor"]) == 0
    assert "DFC 3.33.1-test-double HEFs run on HailoRT 4.23.0" in capsys.readouterr().out
    assert main(["check", str(export)]) == 0


def test_doctor_names_every_python_and_package_the_toolchains_take(monkeypatch, capsys):
    monkeypatch.setitem(__import__("sys").modules, "hailo_sdk_client", None)
    monkeypatch.setitem(__import__("sys").modules, "hailo_platform", None)
    main(["doctor"])
    out = capsys.readouterr().out
    assert "Python 3.10, 3.11 or 3.12" in out and "hailo-h10-all" in out and "hailo-all" in out


def test_hailo10h_windows_each_take_a_fresh_vdevice(tmp_path, monkeypatch):
    """27 stages on HailoRT 5 (26 slots): the second window fits only on a new VDevice, since a
    shut-down ConfiguredInferModel keeps its slot until the device dies (vdma_device.cpp)."""
    checkpoint = tmp_path / "deep.pth"
    config = ConvTasNetConfig(n_filters=16, bn_chan=8, hid_chan=12, skip_chan=6, n_blocks=4, n_repeats=3)
    save_model(random_model(config, seed=5), checkpoint)
    model, export, hef_dir = compile_with_sdk_double(
        tmp_path, monkeypatch, checkpoint, "--hw-arch", "hailo10h", compile_args=("--hw-arch", "hailo10h")
    )
    assert len(build_plan(model).stages) == 27
    hailo = runtime_double.install(monkeypatch, arch="hailo10h")
    backend = load_backend("hailo_runtime", hef_dir=hef_dir, batch_size=4)
    got = _run(model, backend)
    want = _run(model, load_backend("onnxruntime", export_dir=export))
    assert diff_tensor("final_output", got["final_output"], want["final_output"]).max_abs <= 1e-5
    stats = backend.stats()
    assert (stats["api"], stats["configure_windows"], stats["network_groups_per_device"]) == (
        "infer_model",
        2,
        HAILORT_5.network_groups_per_device,
    )
    assert stats["reconfigurations"] >= 1 and hailo.STATS["vdevices"] >= 2


def test_a_hailo8_runs_8l_hefs_with_a_warning_and_a_hailo8l_only_8l_hefs(compiled_per_stage, monkeypatch, tmp_path):
    _, _, hef_dir = compiled_per_stage
    hef = tmp_path / "encoder_8l.hef"
    shutil.copy(next(hef_dir.glob("encoder_*.hef")), hef)
    data = json.loads(hef.read_text())
    hef.write_text(json.dumps({**data, "hw_arch": "hailo8l"}))
    hailo = runtime_double.install(monkeypatch)
    hailo.VDevice().configure(hailo.HEF(str(hef)))
    assert "HEF was compiled for Hailo8L device, while the device itself is Hailo8" in hailo.LOG[-1]
    hailo = runtime_double.install(monkeypatch, arch="hailo8l")
    hailo.VDevice().configure(hailo.HEF(str(hef)))
    with pytest.raises(hailo.pyhailort.pyhailort.HailoRTHEFNotCompatibleWithDevice):
        hailo.VDevice().configure(hailo.HEF(str(next(hef_dir.glob("encoder_*.hef")))))
    assert "HEF format is not compatible with device. Device arch: HAILO8L, HEF arch: HAILO8" in hailo.LOG[-1]


def test_the_binding_exports_three_exception_classes_at_top_level(monkeypatch):
    hailo = runtime_double.install(monkeypatch)
    top = {n for n in dir(hailo) if isinstance(getattr(hailo, n), type) and issubclass(getattr(hailo, n), Exception)}
    assert top == {"HailoRTException", "HailoRTStreamAbortedByUser", "HailoCommunicationClosedException"}
    assert issubclass(hailo.pyhailort.pyhailort.HailoRTTimeout, hailo.HailoRTException)


def test_a_refused_configure_is_one_line(compiled_per_stage, monkeypatch):
    model, _, hef_dir = compiled_per_stage
    runtime_double.install(monkeypatch, arch="hailo8l")
    with pytest.raises(UserError, match="a Hailo-8L only hailo8l ones") as refused:
        StitchedExecutor(build_plan(model), load_backend("hailo_runtime", hef_dir=hef_dir), 16)
    assert "\n" not in str(refused.value)


def test_compile_leaves_the_context_count_unknown_when_the_local_hailort_cannot_read_the_hef(
    compiled_per_stage, monkeypatch, caplog
):
    from convtasnet_hailo.dfc.driver import hef_multi_context

    _, _, hef_dir = compiled_per_stage
    hef = next(hef_dir.glob("encoder_*.hef"))
    runtime_double.install(monkeypatch)
    assert hef_multi_context(hef) is False
    runtime_double.install(monkeypatch, hailort="4.20.0")
    assert hef_multi_context(hef) is None
    assert "the HailoRT here cannot read encoder_" in caplog.text
