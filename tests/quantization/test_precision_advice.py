"""The 16-bit advice by cost: units as the DFC gives precision, costs from the device cost model,
the cheapest measured prefix, and predicted RTF rising with the 16-bit share."""

from __future__ import annotations

import dataclasses

import numpy as np

from convtasnet_hailo.hailo.emulation import Precision
from convtasnet_hailo.hailo.integer_ops import layer_name
from convtasnet_hailo.model.random_init import random_model
from convtasnet_hailo.plan import PlanOptions, build_plan
from convtasnet_hailo.plan.cost_model import DeviceModel
from convtasnet_hailo.quantization.precision_advice import (
    advise_precision,
    layer_units,
    moves,
    outputs_16bit,
    predicted_rtf,
)
from tests.conftest import TINY


def test_a_conv_and_its_prelu_are_one_unit_and_a_concat_joins_its_neighbours():
    plan = build_plan(random_model(TINY, seed=0))
    units = {tuple(u.layers) for u in layer_units(plan)}
    assert ("tcn0_depth/conv0", "tcn0_depth/prelu1") in units
    assert ("tcn0_out__tcn1_in/add1",) in units
    assert sum(len(u) for u in units) == sum(len(s.ops) for s in plan.stages)
    halo = build_plan(random_model(TINY, seed=0), PlanOptions(halo_edges=True))
    for unit in layer_units(halo):
        stage = halo.stage(unit.layers[0].split("/")[0])
        concats = [
            k
            for k, op in enumerate(stage.ops)
            if type(op).__name__ == "Concat" and layer_name(stage, k, op) in unit.layers
        ]
        for k in concats:  # every producer and reader of a concat shares its unit
            op = stage.ops[k]
            near = [
                layer_name(stage, j, o) for j, o in enumerate(stage.ops) if o.output in op.reads or op.output in o.reads
            ]
            assert set(near) <= set(unit.layers)


def test_moves_are_ordered_by_gain_per_cost_and_rtf_grows_with_16_bits():
    plan = build_plan(random_model(TINY, seed=0))
    units = layer_units(plan)
    per_layer = {name: 30.0 for unit in units for name in unit.layers}
    noisiest = units[3].layers[0]
    per_layer[noisiest] = 5.0
    ordered = moves(plan, units, per_layer, DeviceModel())
    rank = next(k for k, m in enumerate(ordered) if noisiest in m.unit.layers)
    assert all(m.cost_s < ordered[rank].cost_s for m in ordered[:rank])  # only cheaper units go first
    ratios = [m.gain / m.cost_s for m in ordered]
    assert ratios == sorted(ratios, reverse=True)
    rtf8 = predicted_rtf(plan, Precision(), 16, DeviceModel())
    rtf_out = predicted_rtf(plan, Precision(outputs_16bit(units)), 16, DeviceModel())
    rtf16 = predicted_rtf(plan, Precision(default="a16_w16"), 16, DeviceModel())
    assert rtf8["a16_mac_share"] == 0 and rtf16["a16_mac_share"] == 1 and rtf_out["a16_mac_share"] == 0
    assert rtf8["rtf"] < rtf_out["rtf"] < rtf16["rtf"]


@dataclasses.dataclass
class _Outcome:
    vs_float_db: float
    si_snri: float | None = None

    def summary(self):
        return {"si_snr_vs_float_db": self.vs_float_db, "si_snri_db": self.si_snri}


class _Judge:
    """Quality rises by 1 dB per a16_w16 unit of the first ``useful`` in the cost order."""

    float_si_snri = None

    def __init__(self, useful: set[str], outputs_db: float = 0.0):
        self.useful, self.calls, self.outputs_db = useful, 0, outputs_db

    def run(self, emulation):
        self.calls += 1
        modes = emulation.precision.modes
        hits = sum(1 for name, mode in modes.items() if mode == "a16_w16" and name in self.useful)
        return _Outcome(20.0 + hits + (self.outputs_db if "a8_w8_a16" in modes.values() else 0.0))


@dataclasses.dataclass(frozen=True)
class _Target:
    db: float

    def met(self, outcome, float_si_snri):
        return outcome.vs_float_db >= self.db

    def describe(self):
        return f"SI-SNR against float >= {self.db:g} dB"


@dataclasses.dataclass
class _Advised:
    plan: object
    units: list
    order: list
    judge: _Judge
    result: object

    @property
    def prefix(self) -> Precision:
        """The first five units of the cost order at a16_w16 (the useful ones)."""
        return Precision({name: "a16_w16" for m in self.order[:5] for name in m.unit.layers})


def _advise(monkeypatch, outputs_db: float, useful_units: int, target: float = 25.0) -> _Advised:
    """The advice on the tiny plan, with a judge whose quality rises per useful unit."""
    import convtasnet_hailo.quantization.precision_advice as advice
    from convtasnet_hailo.hailo import quant_scheme as qs
    from convtasnet_hailo.hailo.emulation import Calibrated, Emulation

    plan = build_plan(random_model(TINY, seed=0))
    monkeypatch.setattr(advice, "build_emulation", lambda base, precision: Emulation({}, {}, precision))
    monkeypatch.setattr(advice, "required_16bit", lambda plan, base, units: {})
    units = layer_units(plan)
    per_layer = {name: 30.0 + k for k, unit in enumerate(units) for name in unit.layers}
    order = moves(plan, units, per_layer, DeviceModel())
    judge = _Judge({order[k].unit.layers[0] for k in range(useful_units)}, outputs_db)
    result = advise_precision(plan, Calibrated({}, {}, qs.Scheme(), {}), judge, per_layer, _Target(target), 16)
    return _Advised(plan, units, order, judge, result)


def test_advice_finds_the_shortest_prefix_that_meets_the_target(monkeypatch):
    """With gains known, the search measures O(log n) sets and stops at the first prefix that
    reaches the target (here the 5th)."""
    run = _advise(monkeypatch, outputs_db=0.0, useful_units=5)
    result = run.result
    assert result.reached and result.precision.modes == run.prefix.modes
    assert run.judge.calls <= 2 + 2 * int(np.ceil(np.log2(len(run.order)))) + 1
    assert result.rtf["all8"]["rtf"] < result.rtf["advised"]["rtf"] < result.rtf["all16"]["rtf"]


def test_16_bit_outputs_are_never_a_base_and_win_only_when_alone_they_cost_less(monkeypatch):
    """16-bit outputs that help but miss the target are not kept under the units (their bytes
    are a fixed cost); when they meet it alone, the cheaper of them and the unit prefix is advised."""
    run = _advise(monkeypatch, outputs_db=2.0, useful_units=5)
    assert run.result.reached and run.result.precision.modes == run.prefix.modes
    run = _advise(monkeypatch, outputs_db=10.0, useful_units=5)
    outputs = Precision(outputs_16bit(run.units))
    rtf = {
        name: predicted_rtf(run.plan, p, 16, DeviceModel())["rtf"]
        for name, p in (("outputs", outputs), ("prefix", run.prefix))
    }
    assert run.result.reached
    assert run.result.precision.modes == (outputs if rtf["outputs"] < rtf["prefix"] else run.prefix).modes
    run = _advise(monkeypatch, outputs_db=10.0, useful_units=0)  # units never reach it
    assert run.result.reached and run.result.precision.modes == Precision(outputs_16bit(run.units)).modes


def test_a_target_out_of_reach_is_said_at_once_and_no_search_runs(monkeypatch, caplog):
    """Every unit at 16 bits misses the target: three measurements (all-8, 16-bit outputs, every
    unit at 16 bits), a warning naming the target and the best dB, and the advice stays 8 bits."""
    import logging

    with caplog.at_level(logging.WARNING, logger="convtasnet_hailo"):
        run = _advise(monkeypatch, outputs_db=0.0, useful_units=3, target=40.0)
    assert run.judge.calls == 3
    assert not run.result.reached and run.result.precision.modes == {}
    assert run.result.record["out_of_reach"]["all_units_16bit_si_snr_vs_float_db"] == 23.0
    assert "out of reach" in caplog.text and ">= 40 dB" in caplog.text and "23.00 dB" in caplog.text


def test_a_prelu_whose_slope_8_bits_cannot_shift_is_16_bit_from_the_start():
    """A negative slope of 0.001 needs a shift of 10 (NegativeSlopeExponentNonFixable at 8 bits):
    its layer, with the conv it holds, is a16_w16 before any choice by cost."""
    import torch

    from convtasnet_hailo.hailo import quant_scheme as qs
    from convtasnet_hailo.hailo.emulation import Calibrated
    from convtasnet_hailo.quantization.precision_advice import required_16bit

    model = random_model(TINY, seed=0)
    with torch.no_grad():
        model.masker.TCN[1].shared_block[4].weight.fill_(0.001)  # tcn1's depthwise PReLU
    plan = build_plan(model)
    ranges = {}
    for stage in plan.stages:
        ranges.update({p.name: (-1.0, 1.0) for p in stage.inputs})
        ranges.update({op.output: (-1.0, 1.0) for op in stage.ops})
    required = required_16bit(plan, Calibrated({}, ranges, qs.Scheme(), {}), layer_units(plan))
    assert required == {"tcn1_depth/conv0": "a16_w16", "tcn1_depth/prelu1": "a16_w16"}
