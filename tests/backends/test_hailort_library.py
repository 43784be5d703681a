"""HailoRT's own library, where no chip is needed (``make test-hailort``; marker ``hailort``).

The project's HEF reading runs through the REAL ``hailo_platform.HEF`` (built offline by
scripts/build_hailort.sh) on a real HEF, and through the runtime test double on the same file;
the two must agree on every query (tests/backends/hef_report.py lists them). Each side runs in its
own Python, since both are a package named ``hailo_platform``.

Environment: HAILORT_BUILD (the OUT folder of scripts/build_hailort.sh), HAILORT_TEST_HEF (a real
HEF file; the one recorded in docs/measured/hailort_build.md is hailo-rpi5-examples'
arcface_mobilefacenet.hef). Without them the tier is skipped, with the reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.backends.hef_samples import SAMPLES

pytestmark = pytest.mark.hailort

REPO = Path(__file__).resolve().parents[2]
DOUBLE_ROOT = REPO / "tests" / "doubles" / "runtime_double"
REPORT = Path(__file__).with_name("hef_report.py")


def _real_library() -> Path:
    build = os.environ.get("HAILORT_BUILD")
    if not build:
        pytest.skip(
            "HailoRT's library is not built here: run scripts/build_hailort.sh HAILORT_SRC OUT, then "
            "make test-hailort HAILORT_BUILD=OUT"
        )
    python = Path(build) / "python"
    if not (python / "hailo_platform" / "__init__.py").is_file():
        pytest.skip(
            f"HAILORT_BUILD={build} holds no hailo_platform (python/hailo_platform): build it with "
            "scripts/build_hailort.sh HAILORT_SRC OUT"
        )
    return python


def _real_hef() -> Path:
    hef = os.environ.get("HAILORT_TEST_HEF")
    if not hef or not Path(hef).is_file():
        pytest.skip(
            "no real HEF: set HAILORT_TEST_HEF to one, e.g. community_projects/face_recognition/resources/"
            "arcface_mobilefacenet.hef of github.com/hailo-ai/hailo-rpi5-examples (docs/measured/"
            "hailort_build.md)"
        )
    return Path(hef)


def _report(path_first: Path, hef: Path, workdir: Path) -> dict:
    """One side's answers; HailoRT writes its hailort.log into ``workdir`` (HAILORT_LOGGER_PATH,
    common/env_vars.hpp), not into the repository."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(path_first), str(REPO / "src")]),
        "HAILO_DOUBLE_ARCH": "hailo8",
        "HAILORT_LOGGER_PATH": str(workdir),
    }
    run = subprocess.run(
        [sys.executable, str(REPORT), str(hef)],
        capture_output=True,
        text=True,
        env=env,
        cwd=workdir,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


def _leaves(tree, prefix: str = "") -> dict[str, object]:
    """Flattens a report to ``path -> value`` so each query is compared (and reported) on its own."""
    if isinstance(tree, list) and any(isinstance(item, dict) for item in tree):
        tree = {f"[{i}]": item for i, item in enumerate(tree)} | {"len": len(tree)}
    if isinstance(tree, dict):
        return {k: v for key, sub in tree.items() for k, v in _leaves(sub, f"{prefix}/{key}").items()}
    return {prefix: tree}


def _compare(real: dict, double: dict) -> None:
    real, double = (_leaves({k: v for k, v in r.items() if k != "library"}) for r in (real, double))
    assert set(real) == set(double), sorted(set(real) ^ set(double))
    differing = {k: (real[k], double[k]) for k in real if real[k] != double[k]}
    assert not differing, json.dumps(differing, indent=1)


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> tuple[dict, dict]:
    python, hef = _real_library(), _real_hef()
    work = tmp_path_factory.mktemp("hailort_tier")
    return _report(python, hef, work / "hailort"), _report(DOUBLE_ROOT, hef, work / "double")


def test_the_real_library_answered(reports):
    real, double = reports
    assert Path(real["library"]["file"]).resolve().is_relative_to(Path(os.environ["HAILORT_BUILD"]).resolve()), real[
        "library"
    ]
    assert real["library"]["version"] == "4.23.0"
    assert "runtime_double" in double["library"]["file"]


def test_the_double_agrees_with_hailort_on_every_query(reports):
    _compare(*reports)


@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_the_double_agrees_with_hailort_on_hand_written_hefs(sample, tmp_path):
    """What the one real HEF cannot show (several contexts and networks, outputs sorted unlike
    file order, NHW and NC shapes, Hailo-8L's partial groups, outputs quantized per feature), on
    HEFs HailoRT itself opens (tests/backends/hef_samples.py)."""
    python = _real_library()
    hef = tmp_path / f"{sample}.hef"
    hef.write_bytes(SAMPLES[sample]())
    _compare(_report(python, hef, tmp_path / "hailort"), _report(DOUBLE_ROOT, hef, tmp_path / "double"))


def test_the_project_reads_what_hailort_reads(reports):
    real, _ = reports
    assert real["project_hef_multi_context"] == any(multi for _, multi in real["network_groups_infos"])
