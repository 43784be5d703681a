"""The typed plan record: one spelling of every plan option, on disk and in memory."""

import pytest

from convtasnet_hailo.plan.options import PlanOptions, PlanPath, PlanRecord
from convtasnet_hailo.records import RecordError


def test_plan_record_round_trips_every_option():
    options = PlanOptions(block_chan=64, fuse=False, device_norms=True, rf_hop_frames=4, rf_max_width=256)
    record = PlanRecord(PlanPath.MASKER, 32, options, expose_internal=True, opset=13, n_stages=7, rf_window=60)
    assert PlanRecord.from_json(record.to_json()) == record


def test_records_written_before_an_option_existed_read_as_that_option_off():
    record = PlanRecord.from_json({"path": "full-chain", "tile_w": 16, "block_chan": None})
    assert record.options == PlanOptions(fuse=False) and not record.expose_internal and not record.monolithic


@pytest.mark.parametrize(
    "data, named",
    [
        ({"path": "sideways", "tile_w": 16}, "plan.path"),
        ({"path": "full-chain", "tile_w": "16"}, "plan.tile_w"),
        ({"path": "full-chain", "tile_w": 16, "fused": 1}, "plan.fused"),
        ({"path": "full-chain", "tile_w": 16, "rf_hop_frames": 0}, "rf_hop_frames"),
    ],
)
def test_a_foreign_plan_record_names_its_field(data, named):
    with pytest.raises(RecordError, match=named):
        PlanRecord.from_json(data)


def test_float_only_options_are_named_by_their_flags():
    assert PlanOptions(halo_edges=True, gln_in_stages=True).float_only == ("--gln-in-stages", "--halo-edges")
    assert PlanOptions().float_only == ()
