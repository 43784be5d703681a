import pytest

from convtasnet_hailo.compile.profile import load_profile, select_stages
from convtasnet_hailo.dfc.model_script import ScriptVariant
from convtasnet_hailo.errors import UserError
from convtasnet_hailo.model.config import FULL_SIZE_8K
from convtasnet_hailo.model.random_init import random_model
from convtasnet_hailo.plan import PlanPath, build_plan


def test_default_profiles_load():
    for path in ("decoder", "masker"):
        for name in ("quick", "full"):
            profile = load_profile(path, name)
            assert profile.tile_widths and profile.variants
    full = load_profile("masker", "full")
    assert full.stages == "all" and {v.name for v in full.variants} >= {"default", "allocator_timeout"}
    assert "allocator_param(timeout=25m)" in dict((v.name, v.text()) for v in full.variants)["allocator_timeout"]


def test_full_selects_every_stage_distinct_far_fewer():
    plan = build_plan(random_model(FULL_SIZE_8K), path=PlanPath.MASKER)
    assert select_stages(plan.stages, load_profile("masker", "full")) == list(plan.stages)
    distinct = select_stages(plan.stages, load_profile("masker", "quick"))
    # 8 dilations x (in, depth, out) + last block's out without residual, bottleneck, mask head
    assert 10 < len(distinct) < 40 < len(plan.stages)


def test_block_index_filter(tmp_path):
    grid = tmp_path / "g.toml"
    grid.write_text(
        "[variants]\ndefault = []\n[masker.some]\ntile_w = [128]\nblock_chan = [0]\n"
        'variants = ["default"]\nstages = "all"\nblocks = [0, 23]\n'
    )
    plan = build_plan(random_model(FULL_SIZE_8K), path=PlanPath.MASKER)
    names = [s.name for s in select_stages(plan.stages, load_profile("masker", "some", grid))]
    # A fused stage belongs to every block it touches.
    assert names == [
        "bottleneck__tcn0_in",
        "tcn0_depth",
        "tcn0_out__tcn1_in",
        "tcn22_out__tcn23_in",
        "tcn23_depth",
        "tcn23_out__mask_head",
    ]


@pytest.mark.parametrize(
    "body, message",
    [
        ("[masker.x]\ntile_w = [0]\nblock_chan = [0]\n", "tile_w must be a list of positive"),
        ('[masker.x]\ntile_w = [64]\nblock_chan = [0]\nvariants = ["nope"]\n', "unknown variant 'nope'"),
        (
            '[variants]\nbad = ["rm -rf /"]\n[masker.x]\ntile_w = [64]\nblock_chan = [0]\nvariants = ["bad"]\n',
            "is not one of",
        ),
        ('[masker.x]\ntile_w = [64]\nblock_chan = [0]\nstages = "some"\n', "stages = 'some'"),
        ("not toml [", "cannot read grid"),
    ],
)
def test_bad_grid_files(tmp_path, body, message):
    grid = tmp_path / "g.toml"
    grid.write_text(body)
    with pytest.raises(UserError, match=message):
        load_profile("masker", "x", grid)


def test_missing_profile_lists_the_available_ones():
    with pytest.raises(UserError, match="has no profile masker.huge; it has: masker.quick, masker.full"):
        load_profile("masker", "huge")


def test_script_variant_text():
    variant = ScriptVariant("v", ("allocator_param(timeout=25m)", "performance_param(compiler_optimization_level=max)"))
    assert variant.text() == "allocator_param(timeout=25m)\nperformance_param(compiler_optimization_level=max)\n"
    assert variant.text(optimization_level=0).endswith("model_optimization_flavor(optimization_level=0)\n")
