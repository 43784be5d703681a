"""Stage ports bound to the streams of a compiled HEF by the names HailoRT gives, never by list
position (issue 35), against the TEST DOUBLES, which name, order and shape streams as the DFC
and HailoRT do (each rule with its source file in the doubles). A model whose TCN ports all share
one shape makes a wrong pairing silent: the tests here fail if binding goes by position."""

import dataclasses
import json

import numpy as np
import pytest

from convtasnet_hailo.backends import hailo_runtime
from convtasnet_hailo.backends.registry import load_backend
from convtasnet_hailo.backends.streams import (
    StreamBindingError,
    bind_ports,
    frame_nhwc,
    from_stream,
    reported_shape,
    to_stream,
)
from convtasnet_hailo.cli import main
from convtasnet_hailo.compile.runner import end_node_names
from convtasnet_hailo.files import sha256_file
from convtasnet_hailo.model.checkpoint import save_model
from convtasnet_hailo.model.random_init import random_model
from convtasnet_hailo.model.source import TINY
from convtasnet_hailo.parity.compare import diff_tensor
from convtasnet_hailo.plan import build_plan
from convtasnet_hailo.plan.onnx_names import port_original_names
from convtasnet_hailo.runtime.executor import StitchedExecutor
from tests.conftest import assert_within_contract, compile_with_sdk_double, speech_like
from tests.doubles import runtime as runtime_double

#: Residual stream, skip and block input all of one width; the mask and the encoder output too.
SAME = dataclasses.replace(TINY, skip_chan=TINY.bn_chan, hid_chan=TINY.bn_chan)
REVERSED = "reversed_onnx"  # the runtime double's switch: every stream list in reverse ONNX order


def _checkpoint(tmp_path):
    path = tmp_path / "same.pth"
    save_model(random_model(SAME, seed=5), path)
    return path


@pytest.fixture
def same_shapes(tmp_path, monkeypatch):
    return compile_with_sdk_double(tmp_path, monkeypatch, _checkpoint(tmp_path))


def _run(model, backend, tile_w=16, seconds=0.6):
    outputs = {}
    StitchedExecutor(build_plan(model), backend, tile_w).run(
        {"wav": speech_like(seconds, 8000, 1)[None, None]}, lambda n, t: outputs.__setitem__(n, t)
    )
    return outputs


def _assert_equal_runs(got, want):
    assert set(got) == set(want)
    for name in want:
        assert_within_contract(got[name], want[name], name)


def _positional(where, kind, wanted, streams):
    return dict(zip(wanted, streams, strict=False))


def _hef(hef_dir, stage):
    (path,) = hef_dir.glob(f"{stage}_t16_*.hef")
    return path


def test_the_doubles_name_order_and_shape_streams_as_the_dfc_does(same_shapes, monkeypatch):
    model, _, hef_dir = same_shapes
    hailo = runtime_double.install(monkeypatch)
    reordered = []
    for stage in build_plan(model).stages:
        hef = hailo.HEF(str(_hef(hef_dir, stage.name)))
        group = hef.get_network_group_names()[0]
        ins, outs = hef.get_input_vstream_infos(), hef.get_output_vstream_infos()
        assert [i.name for i in ins] == [f"{group}/input_layer{k}" for k in range(1, len(ins) + 1)]
        assert [o.name for o in outs] == hef.get_sorted_output_names(group)
        assert not any("output_layer" in o.name for o in outs)  # named after the producing layer
        wanted = port_original_names(stage)
        in_onnx_order = [hef.get_vstream_name_from_original_name(wanted[p.name], group) for p in stage.outputs]
        assert sorted(in_onnx_order) == sorted(o.name for o in outs)
        for info in ins + outs:
            for original in hef.get_original_names_from_vstream_name(info.name, group):
                assert hef.get_vstream_name_from_original_name(original, group) == info.name
        if in_onnx_order != [o.name for o in outs]:
            reordered.append(stage.name)
    assert "tcn0_out__tcn1_in" in reordered  # residual, skip, next input -> conv2 (skip), conv3, ew_add1
    encoder = hailo.HEF(str(_hef(hef_dir, "encoder")))
    (wav,) = encoder.get_input_vstream_infos()
    assert wav.shape == (1, 136) and wav.format.order.name == "NHW"  # one channel: NHW, (H, W)
    with pytest.raises(hailo.pyhailort.pyhailort.HailoRTNotFoundException):
        encoder.get_vstream_name_from_original_name("not_in_the_graph")
    with pytest.raises(hailo.pyhailort.pyhailort.HailoRTNotFoundException):
        encoder.get_original_names_from_vstream_name("encoder/output_layer1")


@pytest.mark.parametrize("order", ["dfc", REVERSED])
def test_hailo_runtime_binds_by_name_in_any_order(same_shapes, monkeypatch, order):
    model, export, hef_dir = same_shapes
    runtime_double.install(monkeypatch)
    if order == REVERSED:
        monkeypatch.setenv("HAILO_DOUBLE_STREAM_ORDER", order)
    got = _run(model, load_backend("hailo_runtime", hef_dir=hef_dir, batch_size=4))
    _assert_equal_runs(got, _run(model, load_backend("onnxruntime", export_dir=export)))


def test_pairing_by_position_gives_wrong_audio_without_an_error(same_shapes, monkeypatch):
    """What the name binding prevents: with the lists reversed, pairing by position swaps ports of
    one shape (residual stream and block input; mask and encoder output) and no check notices."""
    model, export, hef_dir = same_shapes
    runtime_double.install(monkeypatch)
    monkeypatch.setenv("HAILO_DOUBLE_STREAM_ORDER", REVERSED)
    monkeypatch.setattr(hailo_runtime, "bind_ports", _positional)
    got = _run(model, load_backend("hailo_runtime", hef_dir=hef_dir))
    want = _run(model, load_backend("onnxruntime", export_dir=export))
    assert not diff_tensor("final_output", got["final_output"], want["final_output"]).all_close


def test_infer_model_binds_by_name(tmp_path, monkeypatch):
    """HailoRT 5 (InferModel), every list reversed."""
    model, export, hef_dir = compile_with_sdk_double(
        tmp_path, monkeypatch, _checkpoint(tmp_path), "--hw-arch", "hailo10h", compile_args=("--hw-arch", "hailo10h")
    )
    runtime_double.install(monkeypatch, arch="hailo10h")
    monkeypatch.setenv("HAILO_DOUBLE_STREAM_ORDER", REVERSED)
    backend = load_backend("hailo_runtime", hef_dir=hef_dir, batch_size=4)
    got = _run(model, backend)
    assert backend.stats()["api"] == "infer_model"
    _assert_equal_runs(got, _run(model, load_backend("onnxruntime", export_dir=export)))


def test_the_emulator_binds_outputs_by_the_hn(same_shapes):
    """The SDK double's ``infer`` returns outputs in the HN's output_layers_order (sorted, not ONNX's)."""
    model, export, hef_dir = same_shapes
    got = _run(model, load_backend("hailo_emulator", hef_dir=hef_dir, context="fp_optimized"))
    _assert_equal_runs(got, _run(model, load_backend("onnxruntime", export_dir=export)))


def test_compile_names_the_end_nodes_the_runtime_looks_for(same_shapes):
    model, export, _ = same_shapes
    for stage in build_plan(model).stages:
        wanted = port_original_names(stage)
        assert end_node_names(export / f"{stage.name}.onnx") == tuple(wanted[p.name] for p in stage.outputs)


@pytest.mark.parametrize(
    "streams, message",
    [
        (
            {"n/input_layer1": ("other",)},
            r"input port wav \(ONNX name wav\) maps to no stream \(input streams and "
            r"their original names: n/input_layer1 \['other'\]\)",
        ),
        (
            {"n/input_layer1": ("wav",), "n/input_layer2": ("wav",)},
            "input port wav .* maps to 2 streams n/input_layer1, n/input_layer2",
        ),
        ({"n/input_layer1": ("wav",), "n/input_layer2": ("mix",)}, "input stream n/input_layer2 .* belongs to no port"),
    ],
)
def test_a_port_without_exactly_one_stream_is_refused_in_one_line(streams, message):
    with pytest.raises(StreamBindingError, match=message) as caught:
        bind_ports("stage encoder (network encoder/encoder of e.hef)", "input", {"wav": "wav"}, streams)
    assert "stage encoder" in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(StreamBindingError, match="ports a, b all map to stream n/x"):
        bind_ports("stage s", "output", {"a": "s/conv0", "b": "s/prelu1"}, {"n/x": ("s/conv0", "s/prelu1")})


def test_a_hef_that_maps_no_stream_to_a_port_stops_separate_in_one_line(same_shapes, monkeypatch, tmp_path, capsys):
    model, export, hef_dir = same_shapes
    runtime_double.install(monkeypatch)
    path = _hef(hef_dir, "encoder")
    hef = json.loads(path.read_text())
    hef["network_groups"][0]["networks"][0]["inputs"][0]["original_names"] = ["waveform"]
    path.write_text(json.dumps(hef))
    manifest_path = hef_dir / "compile_manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["stages"]["encoder"]["hef_sha256"] = sha256_file(path)
    manifest_path.write_text(json.dumps(manifest))
    mixture = tmp_path / "mix.wav"
    import soundfile

    soundfile.write(mixture, speech_like(0.5, 8000, 2), 8000)
    code = main(
        [
            "separate",
            str(mixture),
            "--export-dir",
            str(export),
            "--backend",
            "hailo_runtime",
            "--hef-dir",
            str(hef_dir),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "stage encoder" in err and "input port wav (ONNX name wav) maps to no stream" in err
    assert "encoder/input_layer1 ['waveform']" in err and "tile width" not in err


def test_shapes_as_hailort_reports_them_for_each_order():
    info = lambda order, shape: type("Info", (), {"shape": shape, "format": type("F", (), {"order": order})})  # noqa
    assert reported_shape("NHWC", (1, 16, 8)) == (1, 16, 8)
    assert reported_shape("NHW", (1, 136, 1)) == (1, 136) and reported_shape("NHW", (1, 16, 8)) == ()
    assert reported_shape("NC", (1, 1, 8)) == (8,) and reported_shape("NC", (1, 16, 8)) == ()
    tiles = np.arange(2 * 136, dtype=np.float32).reshape(2, 1, 136, 1)
    nhw = info("NHW", (1, 136))
    assert to_stream(tiles, nhw).shape == (2, 1, 136) and frame_nhwc(nhw) == (1, 136, 1)
    np.testing.assert_array_equal(from_stream(to_stream(tiles, nhw), nhw), tiles)
    nc = info("NC", (8,))
    per_tile = np.arange(3 * 8, dtype=np.float32).reshape(3, 1, 1, 8)
    assert to_stream(per_tile, nc).shape == (3, 8)
    np.testing.assert_array_equal(from_stream(to_stream(per_tile, nc), nc), per_tile)


def test_the_runtime_double_takes_frames_only_in_the_reported_shape(same_shapes, monkeypatch):
    _, _, hef_dir = same_shapes
    hailo = runtime_double.install(monkeypatch)
    hef = hailo.HEF(str(_hef(hef_dir, "encoder")))
    params = hailo.VDevice.create_params()  # the 4.23 Python default schedules NONE: ask for the scheduler
    params.scheduling_algorithm = hailo.HailoSchedulingAlgorithm.ROUND_ROBIN
    with hailo.VDevice(params) as device:
        (group,) = device.configure(
            hef, hailo.ConfigureParams.create_from_hef(hef, interface=hailo.HailoStreamInterface.PCIe)
        )
        make = dict(format_type=hailo.FormatType.FLOAT32, timeout_ms=200)
        with hailo.InferVStreams(
            group, hailo.InputVStreamParams.make(group, **make), hailo.OutputVStreamParams.make(group, **make)
        ) as pipeline:
            (out,) = pipeline.infer({"encoder/input_layer1": np.zeros((2, 1, 136), np.float32)}).values()
            assert out.shape == (2, 1, 16, TINY.n_filters)
            with pytest.raises(hailo.pyhailort.pyhailort.HailoRTInvalidArgumentException):
                pipeline.infer({"encoder/input_layer1": np.zeros((2, 1, 136, 1), np.float32)})


def test_the_demo_model_on_the_hailort_double_equals_torch_proxy_in_any_stream_order(tmp_path, monkeypatch):
    """Issue 35's check: the shipped demo model exported at tile 64, compiled on the SDK double and
    separated on the HailoRT double equals the torch_proxy path within the float contract, with
    the doubles' own sorted order and with every vstream list in reverse ONNX order."""
    import soundfile

    from convtasnet_hailo.assets import DEMO_MIXTURE as mixture
    from convtasnet_hailo.assets import DEMO_MODEL as model
    from tests.doubles import sdk as sdk_double

    export = tmp_path / "export"
    sdk_double.install(monkeypatch)
    runtime_double.install(monkeypatch)
    assert main(["export", "--model", str(model), "--tile-w", "64", "--out", str(export)]) == 0
    assert main(["compile", "--export-dir", str(export), "--calib-count", "4"]) == 0
    assert (
        main(
            [
                "separate",
                str(mixture),
                "--model",
                str(model),
                "--backend",
                "torch_proxy",
                "--tile-w",
                "64",
                "--out",
                str(tmp_path / "torch"),
                "--subtype",
                "FLOAT",
            ]
        )
        == 0
    )

    def sources(folder):
        return np.stack([soundfile.read(folder / f"mixture_s{i}.wav", dtype="float32")[0] for i in (1, 2)])

    for order in ("dfc", REVERSED):
        if order == REVERSED:
            monkeypatch.setenv("HAILO_DOUBLE_STREAM_ORDER", order)
        out = tmp_path / order
        assert (
            main(
                [
                    "separate",
                    str(mixture),
                    "--export-dir",
                    str(export),
                    "--backend",
                    "hailo_runtime",
                    "--hef-dir",
                    str(export / "hailo" / "hailo8"),
                    "--out",
                    str(out),
                    "--subtype",
                    "FLOAT",
                ]
            )
            == 0
        )
        assert_within_contract(sources(out), sources(tmp_path / "torch"), f"demo on hailo_runtime, {order} order")
