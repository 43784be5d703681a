"""The device-arithmetic emulation (``hailo_quant``) on hand-computed cases, and the noise
analysis flagging a layer given a huge range."""

from __future__ import annotations

import numpy as np
import pytest

from convtasnet_hailo.hailo import quant_scheme as qs
from convtasnet_hailo.hailo.emulation import Precision, run_stage_quantized
from convtasnet_hailo.hailo.integer_ops import QValue, emulate_op
from convtasnet_hailo.plan.ops import Add, Conv, Mul, PRelu, Relu


def test_activation_grid_puts_zero_on_the_grid_and_saturates():
    grid = qs.activation_grid(-1.0, 3.0, 8)
    assert grid.scale == pytest.approx(4 / 255) and grid.zero_point == 64
    q = qs.quantize(np.array([0.0, -2.0, 5.0, 1.0]), grid)
    assert q.tolist() == [64, 0, 255, 64 + round(255 / 4)]
    assert qs.dequantize(q[:1], grid)[0] == 0.0  # zero padding stays exact
    assert qs.activation_grid(0.5, 2.0, 16).zero_point == 0  # widened to include 0
    # round half to even on the grid
    half = qs.Grid(1.0, 0, 8)
    assert qs.quantize(np.array([0.5, 1.5, 2.5]), half).tolist() == [0, 2, 2]


def test_weights_are_symmetric_per_output_channel_when_asked():
    w_int, scale = qs.quantize_weights(np.array([[1.0, -0.5], [0.25, 0.125]]), 8, qs.WeightGranularity.PER_CHANNEL)
    assert w_int.tolist() == [[127, -64], [127, 64]]  # -63.5 -> -64, 63.5 -> 64 (half to even)
    assert scale.ravel().tolist() == pytest.approx([1 / 127, 0.25 / 127])
    w4, _ = qs.quantize_weights(np.array([[1.0, 0.3]]), 4)
    assert w4.tolist() == [[7, 2]]


def test_weights_default_to_one_scale_per_layer():
    """Per layer (the default): the small channel shares the big one's scale and loses bits."""
    w_int, scale = qs.quantize_weights(np.array([[1.0, -0.5], [0.25, 0.125]]), 8)
    assert w_int.tolist() == [[127, -64], [32, 16]]  # 31.75 -> 32, 15.875 -> 16
    assert scale.ravel().tolist() == pytest.approx([1 / 127, 1 / 127])


def test_rescale_rounds_half_up_with_an_exact_power_of_two():
    assert qs.rescale(np.array([3.0, -3.0, 5.0]), 0.5).tolist() == [2, -1, 3]
    mantissa, shift = qs.mantissa_shift(0.5)
    assert mantissa == 2**15 and shift == 16
    assert qs.saturate(np.array([2.0**31, -(2.0**40)]), 32).tolist() == [2**31 - 1, -(2**31)]
    out = qs.Grid(1.0, 10, 8)
    assert qs.requantize(np.array([300.0, -20.0]), 1.0, out).tolist() == [255, 0]


def test_add_rescales_both_inputs_to_the_output_grid():
    a = QValue(np.array([7.0]), qs.Grid(0.1, 0, 8))  # 0.7
    b = QValue(np.array([13.0]), qs.Grid(0.2, 10, 8))  # 0.6
    out = qs.Grid(0.1, 5, 8)
    y = emulate_op(Add("a", "b", "y"), [a, b], out, 8)
    assert y.q.tolist() == [18] and y.real[0] == pytest.approx(1.3)


def test_mul_prelu_relu_and_conv_by_hand():
    x = QValue(np.array([[[[12.0, 2.0]]]]), qs.Grid(0.5, 4, 8))  # reals 4.0, -1.0
    out = qs.Grid(0.25, 8, 8)
    assert emulate_op(Relu("x", "y"), [x], out, 8).q.ravel().tolist() == [24, 8]  # 4.0 -> 16 + 8, -1 -> 0 + 8
    prelu = emulate_op(PRelu("x", "y", 0.25), [x], out, 8)
    assert prelu.real.ravel().tolist() == [4.0, -0.25]
    m = emulate_op(Mul("x", "x", "y"), [x, x], qs.Grid(1.0, 0, 8), 8)
    assert m.q.ravel().tolist() == [16, 1]  # 4*4, (-1)*(-1)
    # 1x1 conv, one channel: y = 2 x + 0.5 -> 8.5, -1.5 on a grid of 0.5 with zero point 10
    conv = Conv("x", "y", np.array([[[[2.0]]]], np.float32), np.array([0.5], np.float32))
    y = emulate_op(conv, [x], qs.Grid(0.5, 10, 8), 8)
    assert y.real.ravel().tolist() == [8.5, -1.5]


def test_prelu_slopes_beyond_the_data_bits_vanish_and_are_infeasible():
    assert qs.slope_shift(0.001) == 10 and not qs.slope_fits(0.001, 8) and qs.slope_fits(0.001, 16)
    assert qs.quantize_slope(0.001, 8) == 0.0 and qs.quantize_slope(0.001, 16) == pytest.approx(0.001, rel=1e-2)
    assert qs.quantize_slope(0.25, 8) == 0.25 and qs.quantize_slope(0.9, 8) == pytest.approx(0.9, abs=2**-7)


def test_a_stage_in_16_bits_is_closer_to_float_than_in_8(tmp_path):
    from convtasnet_hailo.model.random_init import random_model
    from convtasnet_hailo.plan import build_plan
    from convtasnet_hailo.quantization.noise import _float_stage
    from tests.conftest import TINY

    plan = build_plan(random_model(TINY, seed=1))
    stage = plan.stage("bottleneck__tcn0_in")
    x = np.random.default_rng(0).standard_normal((4, stage.inputs[0].channels, 1, 20)).astype(np.float32)
    exact = _float_stage(stage, {stage.inputs[0].name: x})
    ranges = {stage.inputs[0].name: (float(x.min()), float(x.max()))}
    ranges.update({k: (float(v.min()), float(v.max())) for k, v in _all_values(stage, x).items()})
    errors = {}
    for mode in ("a8_w8", "a16_w16"):
        out = run_stage_quantized(stage, {stage.inputs[0].name: x}, ranges, Precision(default=mode))
        errors[mode] = max(float(np.abs(out[n] - exact[n]).max()) for n in out)
    assert errors["a16_w16"] < errors["a8_w8"] / 50


def _all_values(stage, x):
    from convtasnet_hailo.hailo.integer_ops import float_op

    values = {stage.inputs[0].name: x.astype(np.float64)}
    for op in stage.ops:
        values[op.output] = float_op(op, [values[n] for n in op.reads])
    return values


def test_noise_flags_a_layer_given_a_huge_range(tmp_path):
    """A layer whose calibrated range is 10,000 times too wide loses its resolution: the per-layer
    analysis puts it last, under the threshold."""
    from convtasnet_hailo.hailo.emulation import Emulation, calibrate_ranges
    from convtasnet_hailo.hailo.integer_ops import layer_name
    from convtasnet_hailo.model.random_init import random_model
    from convtasnet_hailo.plan import build_plan
    from convtasnet_hailo.quantization.calibration import make_calibration
    from convtasnet_hailo.quantization.noise import LayerNoiseProbe, _final
    from tests.conftest import TINY, speech_like

    plan = build_plan(random_model(TINY, seed=1))
    wav = speech_like(1.0, 8000, 4)
    files = make_calibration(plan, 16, [wav], tmp_path / "calib", 1024)
    ranges = calibrate_ranges(list(plan.stages), files)
    stage = plan.stage("tcn2_depth")
    victim = layer_name(stage, 0, stage.ops[0])
    lo, hi = ranges[stage.ops[0].output]
    ranges[stage.ops[0].output] = (lo * 1e4, hi * 1e4)
    scheme = qs.Scheme(qs.WeightGranularity.PER_CHANNEL, equalization=False, bias_correction=False)
    probe = LayerNoiseProbe(Emulation({}, ranges, Precision(), scheme))
    _final(plan, probe, 16, [wav])
    sqnr = probe.powers.db()
    consumer = layer_name(stage, 1, stage.ops[1])  # reads the victim's output on its coarse grid
    worst = sorted(sqnr, key=sqnr.get)
    assert set(worst[:2]) == {victim, consumer} and sqnr[victim] < 30
    assert all(sqnr[name] > 30 for name in worst[2:])


def _pair_stage():
    """conv (4 -> 3 channels, one channel 50x larger) -> PReLU -> dense conv (3 -> 2)."""
    from convtasnet_hailo.plan.stages import Stage, StageInput, StageOutput

    rng = np.random.default_rng(0)
    w1 = rng.standard_normal((3, 4, 1, 1)).astype(np.float32)
    w1[1] *= 50
    ops = (
        Conv("x", "a", w1, rng.standard_normal(3).astype(np.float32)),
        PRelu("a", "b", 0.25),
        Conv("b", "y", rng.standard_normal((2, 3, 1, 1)).astype(np.float32), np.zeros(2, np.float32)),
    )
    return Stage("pair", (StageInput("x", 4),), (StageOutput("y", 2),), ops)


def test_equalization_balances_the_pair_and_leaves_float_unchanged():
    from convtasnet_hailo.hailo.emulation import equalization_pairs, equalize_stage
    from convtasnet_hailo.quantization.noise import _float_stage

    stage = _pair_stage()
    assert equalization_pairs(stage) == [(0, 1, 2)]
    equalized, pairs = equalize_stage(stage)
    assert [(p.first, p.activation, p.second) for p in pairs] == [("pair/conv0", "pair/prelu1", "pair/conv2")]
    x = np.random.default_rng(1).standard_normal((2, 4, 1, 5))
    before, after = _float_stage(stage, {"x": x})["y"], _float_stage(equalized, {"x": x})["y"]
    assert np.abs(after - before).max() <= 1e-5 * np.abs(before).max()

    def ratio(w):
        peaks = np.abs(w).reshape(len(w), -1).max(axis=1)
        return peaks.max() / peaks.min()

    assert ratio(equalized.ops[0].weight) < ratio(stage.ops[0].weight) / 5
    # a stage output, or a second reader, between the two convs forbids it
    import dataclasses

    from convtasnet_hailo.plan.stages import StageOutput

    assert equalization_pairs(dataclasses.replace(stage, outputs=stage.outputs + (StageOutput("b", 3),))) == []


def test_bias_correction_removes_the_mean_error_of_per_layer_weights(tmp_path):
    """One channel 50x larger: with one weight scale per layer the others' weights round coarsely,
    and on inputs with a mean that leaves a mean output error the corrected bias takes out."""
    from convtasnet_hailo.hailo.emulation import Calibrated, build_emulation, calibrate, run_emulated
    from convtasnet_hailo.hailo.layout import nchw_to_nhwc
    from convtasnet_hailo.plan.stages import Stage, StageInput, StageOutput
    from convtasnet_hailo.quantization.noise import _float_stage

    rng = np.random.default_rng(0)
    weight = rng.standard_normal((4, 64, 1, 1)).astype(np.float32)
    weight[0] *= 50
    stage = Stage("one", (StageInput("x", 64),), (StageOutput("y", 4),), (Conv("x", "y", weight, None),))
    x = rng.normal(3.0, 0.1, (64, 64, 1, 16))
    np.save(tmp_path / "x.npy", nchw_to_nhwc(x.astype(np.float32)))
    files = {"x": tmp_path / "x.npy"}
    errors = {}
    for correct in (False, True):
        scheme = qs.Scheme(equalization=False, bias_correction=correct)
        cal = calibrate([stage], files)
        emulation = build_emulation(Calibrated({"one": stage}, cal.ranges(scheme), scheme, files, (), cal), Precision())
        error = run_emulated(emulation, stage, {"x": x.astype(np.float32)})["y"] - _float_stage(stage, {"x": x})["y"]
        errors[correct] = np.abs(error.mean(axis=(0, 2, 3))).sum()
    # (a channel at the range's low end keeps its error: its corrected values would fall off the grid)
    assert errors[False] > 5.0 and errors[True] < errors[False] / 5


def test_the_backend_runs_the_scheme_and_modes_the_noise_report_names(tmp_path):
    """`parity --noise-dir` / `separate --backend hailo_quant` read the report's scheme and modes,
    so they compute what the report predicted; a report from before schemes keeps that emulator's."""
    import json

    from convtasnet_hailo.hailo.noise_folder import read_noise_precision, read_noise_scheme

    scheme = qs.Scheme(
        qs.WeightGranularity.PER_LAYER, equalization=True, bias_correction=False, clip_percentile=99.999, headroom=1.0
    )
    (tmp_path / "noise_report.json").write_text(
        json.dumps(
            {
                "layers_16bit": ["s/conv0"],
                "precision_modes": {"s/conv0": "a16_w16", "s/conv1": "a8_w8_a16"},
                "scheme": scheme.to_json(),
            }
        )
    )
    assert read_noise_scheme(tmp_path) == scheme
    assert read_noise_precision(tmp_path).bits("s/conv1") == qs.ModeBits(8, 8, 16)
    (tmp_path / "noise_report.json").write_text(json.dumps({"layers_16bit": ["s/conv0"]}))
    old = read_noise_scheme(tmp_path)
    assert old.weight_granularity is qs.WeightGranularity.PER_CHANNEL and not old.equalization
    assert read_noise_precision(tmp_path).modes == {"s/conv0": "a16_w16"}
