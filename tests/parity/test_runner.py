import json

from convtasnet_hailo.backends.registry import load_backend
from convtasnet_hailo.model.random_init import random_model
from convtasnet_hailo.model.source import ModelSource
from convtasnet_hailo.parity.runner import ParityCase, ParityRun, default_cases, run_parity, summary_columns
from convtasnet_hailo.plan import PlanOptions, PlanPath, build_plan
from convtasnet_hailo.runs.run_folder import read_tsv
from tests.conftest import TINY


def test_default_cases_cover_the_edge_lengths():
    cases = default_cases(PlanPath.FULL_CHAIN, TINY, [8])
    frames = sorted({c.latent_w(TINY) for c in cases})
    assert frames == [1, 4, 8, 9, 24, 27]
    assert any((c.wav_t - TINY.kernel_size) % TINY.stride for c in cases)  # trailing samples


def test_run_writes_runbook_tsv_and_json(tmp_path):
    source = ModelSource(random_model(TINY, seed=2), "random tiny", random_seed=2)
    cases = [ParityCase(PlanPath.MASKER, 8, 8 * 8 + 8), ParityCase(PlanPath.MASKER, 16, 8 * 8 + 8)]
    plan = build_plan(source.model, PlanOptions(fuse=False), PlanPath.MASKER)
    outcomes = run_parity(ParityRun(plan, load_backend("torch_proxy"), source, tmp_path), cases)
    assert all(o.success for o in outcomes)
    rows = read_tsv(tmp_path / "hef_tiled_masker_path_summary.tsv")
    assert list(rows[0]) == summary_columns(PlanPath.MASKER)
    assert [r["tile_w"] for r in rows] == ["8", "16"] and rows[0]["latent_w"] == "8"
    assert rows[0]["success"] == "true" and rows[0]["backend"] == "torch_proxy"
    record = json.loads((tmp_path / rows[0]["output_json"]).read_text())
    assert record["all_close"] is True and record["tol"] == 1e-5 and record["backend"] == "torch_proxy"
    assert record["model_random"] is True and record["model_seed"] == 2
    for i in range(TINY.n_tcn_blocks):
        for part in ("in", "depth", "skip"):
            assert record[f"tcn{i}_{part}_max_abs"] <= 1e-5
    for key in ("bottleneck", "mask_score", "mask_output", "masker_output"):
        assert f"{key}_max_abs" in record and f"{key}_max_rel" in record
    assert "decoder_output_max_abs" not in record  # only the masker path's stages


def test_decoder_path_reports_decoder_stage_names(tmp_path):
    source = ModelSource(random_model(TINY), "random tiny", random_seed=0)
    plan = build_plan(source.model, PlanOptions(fuse=False), PlanPath.DECODER)
    (outcome,) = run_parity(
        ParityRun(plan, load_backend("torch_proxy"), source, tmp_path), [ParityCase(PlanPath.DECODER, 4, 100)]
    )
    for key in ("source_projector", "decoder_pre", "decoder_head", "decoder_output", "final_output"):
        assert outcome.record[f"{key}_max_abs"] <= 1e-5
