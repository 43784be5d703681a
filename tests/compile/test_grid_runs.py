"""grid / compile end to end: dry run, in-process and worker runs against the TEST DOUBLE."""

import json

import numpy as np

from convtasnet_hailo.cli import main
from convtasnet_hailo.runs.run_folder import read_tsv
from tests.doubles import sdk as sdk_double

GRID = """
[variants]
default = []
timeout25 = ["allocator_param(timeout=25m)"]
[masker.mini]
tile_w = [16, 32]
block_chan = [0, 8]
variants = ["default", "timeout25"]
stages = "distinct"
[decoder.mini]
tile_w = [16]
block_chan = [0]
variants = ["default"]
stages = "all"
"""
REQUIRED = ["run_tag", "har_success", "hef_success", "exception_type", "failure_head"]


def _grid(tmp_path, *extra, path="masker", name="grid"):
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID)
    return [
        name,
        path,
        "--profile",
        "mini",
        "--grid",
        str(grid),
        "--random-preset",
        "tiny",
        "--calib-count",
        "4",
        "--runs-dir",
        str(tmp_path / "runs"),
        *extra,
    ]


def test_dry_run_writes_cases_scripts_and_calibration(tmp_path):
    assert main(_grid(tmp_path, "--dry-run")) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    rows = read_tsv(run_dir / "masker_allocator_fixes_summary.tsv")
    assert all(c in rows[0] for c in REQUIRED) and {r["status"] for r in rows} == {"dry-run"}
    assert {r["variant"] for r in rows} == {"default", "timeout25"} and {r["tile_w"] for r in rows} == {"16", "32"}
    assert (run_dir / "scripts" / "timeout25.alls").read_text() == "allocator_param(timeout=25m)\n"
    job = json.loads(next((run_dir / "jobs").glob("bottleneck__tcn0_in_t16_b0_default.json")).read_text())
    calib = np.load(run_dir / job["calib_paths"][0])
    assert calib.shape == (4, 1, 16, 16) and calib.dtype == np.float32  # NHWC (bottleneck_norm: 16 filters), 4 tiles
    cases = json.loads((run_dir / "cases.json").read_text())
    mapping = cases["stage_maps"]["t16_b0"]
    assert set(mapping) >= {f"tcn{i}_depth" for i in range(6)} and all(mapping.values())  # every stage covered


def test_in_process_run_with_failures_report_and_covering(tmp_path, monkeypatch):
    sdk_double.install(monkeypatch, behavior={"tcn2_depth": "allocator"})  # d=4 depthwise fails at every width
    assert main(_grid(tmp_path)) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    rows = read_tsv(run_dir / "masker_allocator_fixes_summary.tsv")
    failed = [r for r in rows if r["status"] == "failed"]
    assert failed and all(
        r["stage"] == "tcn2_depth"
        and r["exception_type"] == "BackendAllocatorException"
        and "Agent infeasible" in r["failure_head"]
        for r in failed
    )
    assert all((run_dir / "cases" / f"{r['run_tag']}.hef").is_file() for r in rows if r["status"] == "compiled")
    for r in failed:
        assert (run_dir / "cases" / f"{r['run_tag']}_compile_failure.txt").is_file()
        assert (run_dir / "cases" / f"{r['run_tag']}_hef.log").is_file()
    report = read_tsv(run_dir / "grid_report.tsv")
    assert len(report) == 2 * 2 * 2 and all(float(r["pass_rate"]) < 1 for r in report)
    assert (run_dir / "grid_report.png").stat().st_size > 1000
    assert json.loads((run_dir / "covering_manifest.json").read_text())["covering"] is None


def test_resume_skips_finished_cases_and_jobs_run_in_parallel(tmp_path, monkeypatch, capsys):
    sdk_double.install(monkeypatch)
    assert main(_grid(tmp_path, "--jobs", "2", path="decoder")) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    first = read_tsv(run_dir / "allocator_mapping_fixes_summary.tsv")
    assert {r["status"] for r in first} == {"compiled"}
    covering = json.loads((run_dir / "covering_manifest.json").read_text())
    assert covering["tile_w"] == 16 and set(covering["stages"]) == {"encoder", "source_projector__decoder_pre"}
    capsys.readouterr()
    assert main(_grid(tmp_path, "--resume", str(run_dir), path="decoder")) == 0
    assert f"{len(first)} case(s) already done, 0 to go" in capsys.readouterr().err  # progress: the log
    assert len(read_tsv(run_dir / "allocator_mapping_fixes_summary.tsv")) == len(first)
    # the command's new name, and --resume alone: the newest grid run in --out (the one above)
    assert main(_grid(tmp_path, "--resume", path="decoder", name="compile-grid")) == 0
    captured = capsys.readouterr()
    assert f"{len(first)} case(s) already done, 0 to go" in captured.err and str(run_dir) in captured.out
    assert [d.name for d in (tmp_path / "runs").iterdir()] == [run_dir.name]


def test_compile_an_export_and_skip_what_is_compiled(tmp_path, monkeypatch, capsys):
    sdk_double.install(monkeypatch)
    export = tmp_path / "export"
    assert (
        main(["export", "--random-preset", "tiny", "--tile-w", "16", "--networks-per-group", "8", "--out", str(export)])
        == 0
    )
    assert main(["compile", "--export-dir", str(export), "--hw-arch", "hailo8l", "--calib-count", "4"]) == 0
    out = export / "hailo" / "hailo8l"
    summary = json.loads((out / "compile_manifest.json").read_text())
    # 15 stages optimized to HARs, joined 8 + 7 as networks into 2 HEFs
    assert len(summary["stages"]) == 15 and all(s["har_success"] is True for s in summary["stages"].values())
    assert [len(p["stages"]) for p in summary["packs"].values()] == [8, 7]
    assert all(p["artifacts"]["hef_success"] and p["artifacts"]["hef_sha256"] for p in summary["packs"].values())
    assert main(["compile", "--export-dir", str(export), "--hw-arch", "hailo8l", "--calib-count", "4"]) == 0
    rows = read_tsv(out / "compile_summary.tsv")  # this run's rows only: every job reused
    assert len(rows) == 17 and {r["status"] for r in rows} == {"reused"}


def test_a_dry_run_compile_writes_the_stage_and_pack_jobs(tmp_path, capsys):
    export = tmp_path / "export"
    assert (
        main(["export", "--random-preset", "tiny", "--tile-w", "16", "--networks-per-group", "8", "--out", str(export)])
        == 0
    )
    capsys.readouterr()
    assert main(["compile", "--export-dir", str(export), "--dry-run", "--calib-count", "4"]) == 0
    out = export / "hailo" / "hailo8"
    said = capsys.readouterr().out
    assert f"python -m convtasnet_hailo.dfc.worker --pending {out}" in said and "17 job(s) pending" in said
    jobs = {p.name: json.loads(p.read_text()) for p in (out / "jobs").glob("*_default.json")}
    assert len(jobs) == 17 and jobs["pack1_t16_b0_default.json"]["kind"] == "pack"
    # the calibration arrays the jobs read lie beside the export, not in it
    assert not list(export.rglob("*.npy")) and list((tmp_path / "export.calib").glob("*.npy"))
    assert all(p.startswith("export.calib/") for p in jobs["encoder_t16_b0_default.json"]["calib_paths"])
    assert not jobs["encoder_t16_b0_default.json"]["compile_hef"]  # its HEF is pack0's
    assert jobs["pack0_t16_b0_default.json"]["har_paths"][0].endswith("encoder_t16_b0_default.har")
    # the model script states what the DFC would otherwise decide: the count passed, no compression
    script = jobs["encoder_t16_b0_default.json"]["script_text"]
    assert "model_optimization_config(calibration, calibset_size=4)" in script
    assert "model_optimization_flavor(compression_level=0)" in script


def test_without_the_sdk_compile_and_grid_say_what_to_install(tmp_path, capsys):
    export = tmp_path / "export"
    main(["export", "--random-preset", "tiny", "--tile-w", "16", "--out", str(export)])
    capsys.readouterr()
    assert main(["compile", "--export-dir", str(export)]) == 2
    err = capsys.readouterr().err
    assert "hailo_sdk_client" in err and "--hailo-python" in err and err.count("\n") == 1
    assert main(_grid(tmp_path)) == 2
    assert not (tmp_path / "runs").exists()  # rejected before any work
    assert main(["compile", "--export-dir", str(export), "--hailo-python", "/no/python"]) == 2


def test_decoder_and_masker_grids_together_cover_the_full_chain():
    from convtasnet_hailo.compile.orchestrate import grid_plan
    from convtasnet_hailo.model.config import FULL_SIZE_8K
    from convtasnet_hailo.model.random_init import random_model

    model = random_model(FULL_SIZE_8K)
    for block_chan in (None, 64):
        full_chain, decoder = grid_plan(model, "decoder", block_chan)
        _, masker = grid_plan(model, "masker", block_chan)
        assert sorted(s.name for s in decoder + masker) == sorted(s.name for s in full_chain.stages)
        assert "encoder" in {s.name for s in decoder} and "tcn23_depth" in {s.name for s in masker}


def test_runtime_runs_from_the_covering_manifest(tmp_path, monkeypatch):
    from convtasnet_hailo.backends.registry import load_backend
    from convtasnet_hailo.model.random_init import random_model
    from convtasnet_hailo.model.source import RANDOM_PRESETS
    from convtasnet_hailo.plan import PlanPath, build_plan
    from convtasnet_hailo.runtime.executor import StitchedExecutor
    from tests.doubles import runtime as runtime_double

    sdk_double.install(monkeypatch)
    assert main(_grid(tmp_path, path="decoder")) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    runtime_double.install(monkeypatch)
    model = random_model(RANDOM_PRESETS["tiny"], seed=0)
    n_filters = model.config.n_filters
    trace_inputs = {
        "encoder": np.random.default_rng(0).standard_normal((1, n_filters, 40)).astype(np.float32),
        "mask_output": np.random.default_rng(1).random((2, n_filters, 40)).astype(np.float32),
        "wav": np.zeros((1, 1, 39 * 8 + 16), np.float32),
    }
    out = StitchedExecutor(
        build_plan(model, path=PlanPath.DECODER), load_backend("hailo_runtime", hef_dir=run_dir), 16
    ).run(trace_inputs)
    assert out["final_output"].shape == (2, 1, 39 * 8 + 16)
