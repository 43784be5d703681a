"""The executor seam on both executors: local threads and a Ray cluster started by the test
(``ray.init`` with 2 CPUs and one ``hailo_sdk`` unit: this machine stands for a head node with
the Dataflow Compiler, whose workers import the SDK TEST DOUBLE)."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from convtasnet_hailo.cli import main
from convtasnet_hailo.errors import UserError
from convtasnet_hailo.runs.run_folder import read_tsv
from convtasnet_hailo.tasks.base import Task, TaskFailure
from convtasnet_hailo.tasks.local import LocalExecutor
from tests.conftest import write_librimix_tree
from tests.doubles import sdk as sdk_double
from tests.tasks import case_functions as cases

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ray_cluster():
    import ray

    workers = {"PYTHONPATH": os.pathsep.join([str(ROOT), str(sdk_double.DOUBLE_ROOT)]), "HAILO_DOUBLE_BEHAVIOR": "{}"}
    ray.init(
        num_cpus=2,
        resources={"hailo_sdk": 1},
        include_dashboard=False,
        log_to_driver=False,
        logging_level="ERROR",
        runtime_env={"env_vars": workers},
    )
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def _ray_executor():
    from convtasnet_hailo.tasks.ray_cluster import RayExecutor

    return RayExecutor(max_retries=2)


def _run(executor, tasks):
    return {task.key: outcome for task, outcome in executor.run(tasks)}


def test_local_executor_returns_every_case_and_records_a_failing_one():
    tasks = [Task(f"sq{i}", cases.square, (i,)) for i in range(5)] + [Task("bad", cases.raise_value_error)]
    for jobs in (1, 3):
        out = _run(LocalExecutor(jobs), tasks)
        assert {k: out[k] for k in out if k != "bad"} == {f"sq{i}": i * i for i in range(5)}
        assert out["bad"] == TaskFailure("bad", "ValueError", "bad case")
    with pytest.raises(UserError, match="input is wrong"):
        _run(LocalExecutor(1), [Task("u", cases.raise_user_error)])


def test_ray_retries_a_lost_worker_and_records_a_case_that_keeps_failing(ray_cluster, tmp_path):
    tasks = [
        Task("lost_once", cases.crash_once, (str(tmp_path / "marker"),)),
        Task("lost_always", cases.always_crash),
        Task("raises", cases.raise_value_error),
        Task("fine", cases.square, (7,)),
    ]
    out = _run(_ray_executor(), tasks)
    assert out["lost_once"] == "done on retry" and (tmp_path / "marker").is_file()
    assert out["fine"] == 49
    assert isinstance(out["lost_always"], TaskFailure) and out["lost_always"].error_type == "WorkerCrashedError"
    assert out["lost_always"].attempts == 3  # the first try and two retries, then recorded
    assert out["raises"].error_type == "ValueError" and out["raises"].attempts == 1  # not retried: it would raise again
    with pytest.raises(UserError, match="input is wrong"):
        _run(_ray_executor(), [Task("u", cases.raise_user_error)])


def test_ray_refuses_a_resource_no_node_offers(ray_cluster):
    with pytest.raises(UserError, match="no node of the Ray cluster offers 1 dfc_gpu"):
        _run(_ray_executor(), [Task("t", cases.square, (1,), {"dfc_gpu": 1})])


def _grid_dry_run(tmp_path, name, *extra):
    runs = tmp_path / name
    assert (
        main(
            [
                "grid",
                "masker",
                "--profile",
                "quick",
                "--random-preset",
                "tiny",
                "--calib-count",
                "4",
                "--dry-run",
                "--runs-dir",
                str(runs),
                *extra,
            ]
        )
        == 0
    )
    (run_dir,) = runs.iterdir()
    jobs = {p.name: json.loads(p.read_text()) for p in (run_dir / "jobs").glob("*.json")}
    return read_tsv(run_dir / "masker_allocator_fixes_summary.tsv"), jobs


def test_grid_dry_run_gives_the_same_cases_on_ray_as_locally(ray_cluster, tmp_path):
    local_rows, local_jobs = _grid_dry_run(tmp_path, "local")
    ray_rows, ray_jobs = _grid_dry_run(tmp_path, "ray", "--executor", "ray")
    by_tag = lambda rows: {r["run_tag"]: r for r in rows}  # noqa: E731 (completion order differs)
    assert len(local_rows) > 10 and by_tag(ray_rows) == by_tag(local_rows)
    assert {r["status"] for r in ray_rows} == {"dry-run"}
    assert ray_jobs == local_jobs


def test_compile_on_ray_ships_stages_in_and_hars_and_hefs_back(ray_cluster, tmp_path, monkeypatch):
    """The compile driver on a node (the SDK double there): stage HARs, then the packs joined from
    them, every product back in the export's folder, as the local in-process run makes them."""
    outputs = {}
    for executor in ("local", "ray"):
        export = tmp_path / executor
        assert (
            main(
                [
                    "export",
                    "--random-preset",
                    "tiny",
                    "--tile-w",
                    "16",
                    "--networks-per-group",
                    "8",
                    "--out",
                    str(export),
                ]
            )
            == 0
        )
        with monkeypatch.context() as patch:
            if executor == "local":
                sdk_double.install(patch)
            assert main(["compile", "--export-dir", str(export), "--calib-count", "4", "--executor", executor]) == 0
        out = export / "hailo" / "hailo8"
        manifest = json.loads((out / "compile_manifest.json").read_text())
        rows = read_tsv(out / "compile_summary.tsv")
        outputs[executor] = (
            sorted(p.name for p in out.iterdir() if p.suffix in (".har", ".hef")),
            {r["run_tag"]: (r["status"], r["har_success"], r["hef_success"]) for r in rows},
            [len(p["stages"]) for p in manifest["packs"].values()],
        )
        assert all(Path(r["hef_path"] or r["har_path"]).is_file() for r in rows)  # paths in this run folder
    assert outputs["ray"] == outputs["local"] and outputs["ray"][2] == [8, 7]


def _evaluate(csv_path, checkpoint, runs, *extra):
    return main(
        [
            "evaluate",
            "--metadata",
            str(csv_path),
            "--model",
            str(checkpoint),
            "--tile-w",
            "16",
            "--runs-dir",
            str(runs),
            *extra,
        ]
    )


def _rows(run_dir):
    with open(run_dir / "evaluate_per_utterance.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def _assert_same_rows(a, b):
    """Same mixtures in the same order, the same scores (other processes' thread counts may round
    the last digits differently: scores within 1e-3 dB, parity both inside the contract)."""
    assert [r["mixture_ID"] for r in a] == [r["mixture_ID"] for r in b]
    for x, y in zip(a, b, strict=False):
        assert x["num_samples"] == y["num_samples"] and x["parity_ok"] == y["parity_ok"] == "True"
        for key in (
            "si_snr_s1_db",
            "si_snr_s2_db",
            "si_snri_db",
            "mixture_si_snr_db",
            "reference_si_snri_db",
            "pesq",
            "pesq_mixture",
            "stoi",
            "stoi_mixture",
        ):
            assert float(x[key]) == pytest.approx(float(y[key]), abs=1e-3), key


def test_evaluate_gives_the_same_rows_on_ray_and_resumes(ray_cluster, tmp_path, tiny_checkpoint, capsys):
    csv_path = write_librimix_tree(tmp_path, n=4)
    assert _evaluate(csv_path, tiny_checkpoint, tmp_path / "local") == 0
    assert _evaluate(csv_path, tiny_checkpoint, tmp_path / "ray", "--executor", "ray") == 0
    ((local_dir,), (ray_dir,)) = (list((tmp_path / "local").iterdir()), list((tmp_path / "ray").iterdir()))
    full = _rows(ray_dir)
    _assert_same_rows(full, _rows(local_dir))
    # an interrupted run: the driver had written two rows
    lines = (ray_dir / "evaluate_per_utterance.csv").read_text().splitlines(keepends=True)
    (ray_dir / "evaluate_per_utterance.csv").write_text("".join(lines[:3]))
    capsys.readouterr()
    assert _evaluate(csv_path, tiny_checkpoint, tmp_path / "ray", "--executor", "ray", "--resume", str(ray_dir)) == 0
    assert "2 mixture(s) already evaluated, 2 to go" in capsys.readouterr().err  # progress, on stderr
    _assert_same_rows(_rows(ray_dir), full)
    summary = json.loads((ray_dir / "evaluate_summary.json").read_text())
    assert summary["n_mixtures"] == 4 and summary["failed"] == [] and summary["executor"] == "ray"


def test_evaluate_resumes_after_its_driver_is_killed(ray_cluster, tmp_path, tiny_checkpoint):
    csv_path = write_librimix_tree(tmp_path, n=10, seconds=2.0)
    runs = tmp_path / "runs"
    argv = [
        sys.executable,
        "-m",
        "convtasnet_hailo.cli",
        "evaluate",
        "--metadata",
        str(csv_path),
        "--model",
        str(tiny_checkpoint),
        "--tile-w",
        "16",
        "--runs-dir",
        str(runs),
        "--executor",
        "ray",
        "--ray-address",
        ray_cluster,
    ]
    driver = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ, OMP_NUM_THREADS="1")
    )
    deadline = time.time() + 240
    while time.time() < deadline and driver.poll() is None:
        done = list(runs.glob("*/evaluate_per_utterance.csv"))
        if done and len(done[0].read_text().splitlines()) >= 2:  # the header and a finished mixture
            break
        time.sleep(0.05)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    (run_dir,) = runs.iterdir()
    written = len(_rows(run_dir))
    assert 1 <= written < 10, "the driver finished before it could be killed; make the mixtures longer"
    assert _evaluate(csv_path, tiny_checkpoint, runs, "--executor", "ray", "--resume", str(run_dir)) == 0
    rows = _rows(run_dir)
    assert len(rows) == 10 and len({r["mixture_ID"] for r in rows}) == 10


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--executor", "ray", "--jobs", "2"], "--jobs is for --executor local"),
        (["--ray-address", "10.0.0.1:6379"], "--ray-address needs --executor ray"),
        (["--jobs", "2"], "runs one mixture at a time"),
        (["--resume", "/no/such/run"], "is not a folder"),
    ],
)
def test_executor_options_that_cannot_work_are_refused(tmp_path, tiny_checkpoint, capsys, argv, message):
    csv_path = write_librimix_tree(tmp_path, n=1)
    assert _evaluate(csv_path, tiny_checkpoint, tmp_path / "runs", *argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_without_ray_installed_the_executor_says_how_to_install_it(monkeypatch, tmp_path, tiny_checkpoint, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    csv_path = write_librimix_tree(tmp_path, n=1)
    assert _evaluate(csv_path, tiny_checkpoint, tmp_path / "runs", "--executor", "ray") == 2
    assert "pip install 'convtasnet-hailo[ray]'" in capsys.readouterr().err
