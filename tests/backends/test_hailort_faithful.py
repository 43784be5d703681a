"""The HailoRT TEST DOUBLE refuses and waits where HailoRT's code does (each rule with its source
file in the double), and hailo_runtime runs only what HailoRT runs: one network group per stage
under the scheduler, or single-context packs activated one at a time, or InferModel on HailoRT 5.
Each test here fails if the double's rule is removed."""

import json
import time

import numpy as np
import pytest

from convtasnet_hailo.backends.registry import load_backend
from convtasnet_hailo.cli import main
from convtasnet_hailo.errors import UserError
from convtasnet_hailo.parity.compare import diff_tensor
from convtasnet_hailo.plan import build_plan
from convtasnet_hailo.runtime.executor import StitchedExecutor
from tests.conftest import compile_with_sdk_double, speech_like
from tests.doubles import runtime as runtime_double
from tests.doubles import sdk as sdk_double


def _run(model, backend, tile_w=16, seconds=0.6):
    outputs = {}
    StitchedExecutor(build_plan(model), backend, tile_w).run(
        {"wav": speech_like(seconds, 8000, 1)[None, None]}, lambda n, t: outputs.__setitem__(n, t)
    )
    return outputs


def _device(hailo, scheduled: bool, **extra):
    params = hailo.VDevice.create_params()
    algorithm = hailo.HailoSchedulingAlgorithm
    params.scheduling_algorithm = algorithm.ROUND_ROBIN if scheduled else algorithm.NONE
    for key, value in extra.items():
        setattr(params, key, value)
    return hailo.VDevice(params)


def _configure(hailo, device, path, batch_size=1):
    hef = hailo.HEF(str(path))
    params = hailo.ConfigureParams.create_from_hef(hef, interface=hailo.HailoStreamInterface.PCIe)
    for group_params in params.values():
        group_params.batch_size = batch_size
    (group,) = device.configure(hef, params)
    return group


def _pipeline(hailo, group, network=None, timeout_ms=200):
    make = dict(format_type=hailo.FormatType.FLOAT32, timeout_ms=timeout_ms, network_name=network)
    return hailo.InferVStreams(
        group, hailo.InputVStreamParams.make(group, **make), hailo.OutputVStreamParams.make(group, **make)
    )


def _frames(group, network=None, count=1):
    return {i.name: np.zeros((count, *i.shape), np.float32) for i in group.get_input_vstream_infos(network)}


def test_limits_defaults_and_core_ops(compiled, monkeypatch):
    _, _, hef_dir = compiled
    hailo = runtime_double.install(monkeypatch)
    hef = hailo.HEF(str(next(hef_dir.glob("pack0_*.hef"))))
    assert len(hef.get_networks_names()) == 8 and hef.get_network_groups_infos()[0].is_multi_context is False
    device = hailo.VDevice()
    assert not device.scheduled  # the 4.23 binding's VDeviceParams.default(): NONE (pyhailort.cpp)
    assert hailo.VDevice.create_params().scheduling_algorithm == 0  # the getter returns the enum's integer
    for _ in range(32):
        device.configure(hef)
    with pytest.raises(hailo.pyhailort.pyhailort.HailoRTInvalidOperationException):
        device.configure(hef)
    assert (
        "Can't add 1 core-ops from HEF. Currently 32 core-ops are configured; maximum allowed core-ops: 32."
        in hailo.LOG[-1]
    )
    device.release()  # a slot comes back only with the device (vdma_device.cpp)
    device.configure(hef)


def test_the_scheduler_never_dispatches_a_partial_frame(compiled, monkeypatch):
    """The layout hailo_runtime used before: stages joined 8 to a network group, each run on its
    own by network name, under ROUND_ROBIN. HailoRT's scheduler dispatches a frame only when every
    stream of the core-op has a transfer (infer_request_accumulator.cpp), so feeding one network
    never completes: the read times out. The double waits the vstream timeout, then raises."""
    _, _, hef_dir = compiled
    hailo = runtime_double.install(monkeypatch)
    device = _device(hailo, scheduled=True)
    group = _configure(hailo, device, next(hef_dir.glob("pack0_*.hef")))
    network = group.get_networks_names()[2]
    started = time.monotonic()
    with _pipeline(hailo, group, network, timeout_ms=200) as pipeline:
        with pytest.raises(hailo.pyhailort.pyhailort.HailoRTTimeout, match="timeout had occurred"):
            pipeline.infer(_frames(group, network))
    assert 0.2 <= time.monotonic() - started < 5
    with _pipeline(hailo, group) as whole:  # every network fed at once: dispatched
        result = whole.infer(_frames(group, count=2))
    assert len(result) == len(group.get_output_vstream_infos()) and hailo.STATS["runs"] == 1


def test_without_the_scheduler_one_group_is_active_at_a_time(compiled, monkeypatch):
    _, _, hef_dir = compiled
    hailo = runtime_double.install(monkeypatch)
    device = _device(hailo, scheduled=False)
    first, second = (_configure(hailo, device, p) for p in sorted(hef_dir.glob("pack*_*.hef")))
    network = first.get_networks_names()[2]
    with _pipeline(hailo, first, network) as pipeline:
        with pytest.raises(hailo.pyhailort.pyhailort.HailoRTNetworkGroupNotActivatedException):
            pipeline.infer(_frames(first, network))
        assert "before its network group is activated" in hailo.LOG[-1]
        with first.activate():
            result = pipeline.infer(_frames(first, network, 2))  # a single-context group: one network alone
            with pytest.raises(hailo.pyhailort.pyhailort.HailoRTInvalidOperationException):
                second.activate()
            assert "Cant activate network because a network is already activated" in hailo.LOG[-1]
    assert set(result) == {o.name for o in first.get_output_vstream_infos(network)}
    with second.activate():
        pass
    with pytest.raises(hailo.pyhailort.pyhailort.HailoRTInvalidOperationException):
        first.set_scheduler_timeout(100)
    assert "does not have scheduling enabled" in hailo.LOG[-1]


def test_scheduler_settings_and_activation_under_the_scheduler(compiled_per_stage, monkeypatch):
    _, _, hef_dir = compiled_per_stage
    hailo = runtime_double.install(monkeypatch)
    group = _configure(hailo, _device(hailo, scheduled=True), next(hef_dir.glob("encoder_*.hef")))
    group.set_scheduler_timeout(100)
    with pytest.raises(hailo.HailoRTException, match="HAILO_NOT_IMPLEMENTED"):
        group.set_scheduler_timeout(100, network_name="encoder/other")
    assert "Setting scheduler timeout for a specific network is currently not supported" in hailo.LOG[-1]
    with group.activate() as activated:  # pyhailort.py: deprecated, an empty context manager
        assert activated is None and "deprecated" in hailo.LOG[-1]
    assert hailo.STATS["activations"] == 0
    service = _configure(
        hailo, _device(hailo, scheduled=False, multi_process_service=True), next(hef_dir.glob("encoder_*.hef"))
    )
    with pytest.raises(hailo.pyhailort.pyhailort.HailoRTInvalidOperationException):
        service.activate()
    assert "not supported when using multi-process service or HailoRT Scheduler" in hailo.LOG[-1]


def test_multi_context_packs_are_refused_in_one_line(tmp_path, monkeypatch, tiny_checkpoint, capsys):
    """A pack the compiler made multi-context: HailoRT refuses a pipeline over some of its
    networks and inference on some of them (inference_pipeline.cpp); compile and hailo_runtime
    say so in one line, with the re-export that fixes it, within seconds. Such a pack comes from a
    compile without the joint script that asks for one context (an earlier version of `compile`, or
    a DFC that does not honour it), so the joint script is left out here."""
    monkeypatch.setenv("HAILO_DOUBLE_CONTEXTS", json.dumps({"encoder": 3}))  # pack0's group is named after it
    monkeypatch.setattr("convtasnet_hailo.compile.runner.joint_script", lambda stage_script: "")
    with pytest.raises(AssertionError):  # compile exits 1: the pack cannot run
        compile_with_sdk_double(tmp_path, monkeypatch, tiny_checkpoint, "--execution-mode", "activated_packs")
    assert "pack pack0 compiled multi-context (1 of 2 packs)" in capsys.readouterr().err
    hef_dir = tmp_path / "export" / "hailo" / "hailo8"
    recorded = json.loads((hef_dir / "compile_manifest.json").read_text())
    assert recorded["execution_mode"] == "activated_packs"
    assert [p["artifacts"]["multi_context"] for p in recorded["packs"].values()] == [True, False]
    hailo = runtime_double.install(monkeypatch)
    device = _device(hailo, scheduled=False)
    group = _configure(hailo, device, next(hef_dir.glob("pack0_*.hef")), batch_size=4)
    network = group.get_networks_names()[1]
    with pytest.raises(hailo.pyhailort.pyhailort.HailoRTInvalidArgumentException):
        _pipeline(hailo, group, network).__enter__()
    assert "For multi-context network groups, the pipeline must be created for all available networks" in hailo.LOG[-1]
    with group.activate(), _pipeline(hailo, group) as whole:
        with pytest.raises(hailo.pyhailort.pyhailort.HailoRTInvalidArgumentException):
            whole.infer(_frames(group, network))
        assert (
            "For multi-context network groups, inference is only supported on all available networks" in hailo.LOG[-1]
        )
        with pytest.raises(hailo.pyhailort.pyhailort.HailoRTInvalidArgumentException):
            whole.infer(_frames(group, count=3))
        assert "frames count must be a multiplier of the batch size! (3 % 4 != 0)" in hailo.LOG[-1]
        whole.infer(_frames(group, count=4))
    from convtasnet_hailo.model.checkpoint import load_model

    model = load_model(str(tiny_checkpoint))[0]
    started = time.monotonic()
    with pytest.raises(
        UserError,
        match=r"pack encoder \(pack0_.*\.hef\) compiled multi-context.*re-export with "
        r"--networks-per-group 1",
    ) as refused:
        StitchedExecutor(build_plan(model), load_backend("hailo_runtime", hef_dir=hef_dir), 16)
    assert "\n" not in str(refused.value) and time.monotonic() - started < 10


def test_scheduled_groups_run_each_stage_as_its_own_group(compiled_per_stage, monkeypatch):
    model, export, hef_dir = compiled_per_stage
    monkeypatch.setenv("HAILO_DOUBLE_CONTEXTS", json.dumps({"tcn": 2}))  # multi-context groups run whole
    hailo = runtime_double.install(monkeypatch)
    backend = load_backend("hailo_runtime", hef_dir=hef_dir, batch_size=4)
    got = _run(model, backend)
    want = _run(model, load_backend("onnxruntime", export_dir=export))
    assert diff_tensor("final_output", got["final_output"], want["final_output"]).max_abs <= 1e-5
    stats = backend.stats()
    assert (stats["execution_mode"], stats["api"], stats["configure_windows"]) == ("scheduled_groups", "vstreams", 1)
    assert stats["scheduler_switches"] == 15 and stats["activations"] == 0 == hailo.STATS["activations"]
    assert stats["network_groups"] == 15 == hailo.STATS["configured"] and hailo.STATS["vdevices"] == 1


def test_activated_packs_activate_each_pack_once_per_utterance(compiled, monkeypatch):
    model, export, hef_dir = compiled
    hailo = runtime_double.install(monkeypatch)
    backend = load_backend("hailo_runtime", hef_dir=hef_dir, batch_size=4)
    got = _run(model, backend)
    _run(model, backend)
    want = _run(model, load_backend("onnxruntime", export_dir=export))
    assert diff_tensor("final_output", got["final_output"], want["final_output"]).max_abs <= 1e-5
    stats = backend.stats()
    assert (stats["execution_mode"], stats["activations"], stats["scheduler_switches"]) == ("activated_packs", 4, 0)
    assert hailo.STATS["activations"] == 4 and hailo.STATS["configured"] == 2


def test_hailort_5_has_only_infer_model(tmp_path, monkeypatch, tiny_checkpoint, capsys):
    model, export, hef_dir = compile_with_sdk_double(
        tmp_path, monkeypatch, tiny_checkpoint, "--hw-arch", "hailo10h", compile_args=("--hw-arch", "hailo10h")
    )
    hailo = runtime_double.install(monkeypatch, arch="hailo10h")
    assert hailo.__version__.startswith("5.")
    path = next(hef_dir.glob("encoder_*.hef"))
    device = hailo.VDevice()
    with pytest.raises(hailo.HailoRTException, match=r"\(HAILO_NOT_IMPLEMENTED\)"):
        device.configure(hailo.HEF(str(path)))
    assert "use InferModel instead" in hailo.LOG[-1]
    with pytest.raises(hailo.HailoRTException, match=r"\(HAILO_NOT_IMPLEMENTED\)"):
        device.create_infer_model(str(path), "encoder/encoder")
    assert "Passing network name is not supported yet!" in hailo.LOG[-1]
    configured = [device.create_infer_model(str(path), "encoder").configure() for _ in range(26)]
    with pytest.raises(hailo.pyhailort.pyhailort.HailoRTInvalidOperationException):
        device.create_infer_model(str(path), "encoder").configure()
    assert "maximum allowed core-ops: 26." in hailo.LOG[-1]
    with pytest.raises(hailo.pyhailort.pyhailort.HailoRTInvalidOperationException):
        configured[0].activate()
    assert "Manually activate a core-op is not allowed when the core-op scheduler is active!" in hailo.LOG[-1]
    configured[0].shutdown()  # vdma_device.cpp: the slot stays taken until the VDevice dies
    with pytest.raises(hailo.pyhailort.pyhailort.HailoRTInvalidOperationException):
        device.create_infer_model(str(path), "encoder").configure()
    assert "Currently 26 core-ops are configured" in hailo.LOG[-1]
    device.release()
    hailo.VDevice().create_infer_model(str(path), "encoder").configure()

    backend = load_backend("hailo_runtime", hef_dir=hef_dir, batch_size=4)
    got = _run(model, backend)
    want = _run(model, load_backend("onnxruntime", export_dir=export))
    assert diff_tensor("final_output", got["final_output"], want["final_output"]).max_abs <= 1e-5
    stats = backend.stats()
    assert (stats["api"], stats["execution_mode"], stats["network_groups_per_device"]) == (
        "infer_model",
        "scheduled_groups",
        26,
    )
    assert stats["hailort_version"].startswith("5.") and stats["scheduler_switches"] == 15


def test_packs_have_no_place_on_hailo10h_and_each_dfc_has_its_targets(compiled, monkeypatch, capsys):
    _, export, _ = compiled
    assert main(["compile", "--export-dir", str(export), "--hw-arch", "hailo10h", "--calib-count", "4"]) == 2
    assert "--hw-arch hailo10h needs the Dataflow Compiler 5.x; this one is 3.33.1" in capsys.readouterr().err
    sdk_double.install(monkeypatch, dfc="5.1.0")
    assert main(["compile", "--export-dir", str(export), "--hw-arch", "hailo10h", "--calib-count", "4"]) == 2
    assert "activated_packs on hailo10h: HailoRT 5 runs only InferModel" in capsys.readouterr().err
    assert main(["compile", "--export-dir", str(export), "--hw-arch", "hailo8", "--calib-count", "4"]) == 2
    assert "--hw-arch hailo8 needs the Dataflow Compiler 3.x" in capsys.readouterr().err


def test_doctor_names_the_runtime_and_its_api(monkeypatch, capsys):
    runtime_double.install(monkeypatch)
    main(["doctor"])
    assert "hailo_platform 4.23.0: vstream API (HailoRT 4" in capsys.readouterr().out
    runtime_double.install(monkeypatch, arch="hailo10h")
    main(["doctor"])
    assert "hailo_platform 5.1.1: InferModel API (HailoRT 5, Hailo-10H" in capsys.readouterr().out
