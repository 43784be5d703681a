"""`check-audio` (formerly `forward`, kept as an alias; runbook step 6): the reference model and
the stitched path on one mixture, with parity (the verdict: exit 1 when it breaks the contract)
and, with ground-truth sources, SI-SNR(i), PESQ and STOI.

Writes into a new run folder: ``hailo_src<i>.wav``, ``mixture.wav``, ``separation.png``,
``spectrograms.png`` (in ``run``) and ``librimix_hailo_forward_metrics.json`` (in ``write``)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from ..audio.librimix import sources_beside
from ..errors import UserError
from ..guard import check_run_files
from ..runs.run_folder import new_run_dir, write_json
from ..runtime import RunSpec, open_run
from ..separation.forward import forward_metrics, forward_one, load_forward_inputs, write_forward_outputs

log = logging.getLogger(__name__)

#: The metrics record the runbook names.
METRICS_FILE = "librimix_hailo_forward_metrics.json"


@dataclasses.dataclass(frozen=True)
class Request:
    """One mixture, with its ground-truth sources (given, found beside a LibriMix mixture, or
    none), into a new run folder under ``runs_dir``."""

    spec: RunSpec
    mix: Path
    sources: tuple[str, ...] = ()
    runs_dir: Path = Path("module_runs")


@dataclasses.dataclass(frozen=True)
class Quality:
    """Scores against the ground truth: per source SI-SNR (dB), the mean SI-SNRi of the stitched
    path and of the reference model, PESQ and STOI of the mixture and of the output (means)."""

    si_snr_db: tuple[float, ...]
    si_snri_db: float
    reference_si_snri_db: float
    pesq: tuple[float, float]
    stoi: tuple[float, float]
    silent: tuple[str, ...] = ()  # references left unscored (silent): "s1", "s2", ...

    def per_source(self) -> str:
        """Each source's SI-SNR, a silent reference named instead of a number."""
        names = [f"s{i}" for i in range(1, len(self.si_snr_db) + 1)]
        return " / ".join(
            f"{name} silent, not scored" if name in self.silent else f"{v:.2f}"
            for name, v in zip(names, self.si_snr_db, strict=False)
        )


@dataclasses.dataclass(frozen=True)
class CheckAudioResult:
    """The verdict (parity of the stitched path against the reference model), the scores when the
    sources were known, and ``record``: the metrics JSON as written (the runbook's keys)."""

    run_dir: Path
    parity_max_abs: float
    parity_bound: float
    parity_ok: bool
    quality: Quality | None
    record: dict

    @property
    def exit_status(self) -> int:
        return 0 if self.parity_ok else 1

    def to_json(self) -> dict:
        return self.record

    def lines(self) -> list[str]:
        line = (
            f"parity max_abs vs reference {self.parity_max_abs:.2e} (bound {self.parity_bound:.1e}: "
            f"{'ok' if self.parity_ok else 'FAILED'})"
        )
        q = self.quality
        if q is None:
            line += "; no ground-truth sources, parity only"
        else:
            line += (
                f"; SI-SNR {q.per_source()} dB, SI-SNRi {q.si_snri_db:.2f} dB "
                f"(reference model {q.reference_si_snri_db:.2f} dB); PESQ {q.pesq[0]:.2f} -> {q.pesq[1]:.2f}, "
                f"STOI {q.stoi[0]:.2f} -> {q.stoi[1]:.2f} (input -> output)"
            )
        return [line, f"run folder: {self.run_dir}"]


def _quality(metrics: dict, n_src: int) -> Quality | None:
    if "si_snri_hailo_mean_db" not in metrics:
        return None
    return Quality(
        tuple(metrics[f"si_snr_hailo_src{i}_vs_gt_s{i}_db"] for i in range(1, n_src + 1)),
        metrics["si_snri_hailo_mean_db"],
        metrics["si_snri_reference_mean_db"],
        (metrics["pesq_mixture_mean"], metrics["pesq_hailo_mean"]),
        (metrics["stoi_mixture_mean"], metrics["stoi_hailo_mean"]),
        tuple(metrics.get("silent_references", ())),
    )


def _source_paths(request: Request) -> list:
    n_src = request.spec.config.n_src
    if request.sources and len(request.sources) != n_src:
        flags = " and ".join(f"--s{i}" for i in range(1, n_src + 1))
        raise UserError(f"the model has {n_src} source(s): pass {flags}, or none")
    return list(request.sources) or sources_beside(request.mix, n_src) or []


def run(request: Request) -> CheckAudioResult:
    """Every input read and checked first; then the run, the WAVs and the figures."""
    spec, mix = request.spec, request.mix
    source_paths = _source_paths(request)
    inputs = load_forward_inputs(spec.config, mix, source_paths)
    check_run_files(
        spec.source.given()
        + spec.backend.given()
        + [("the --mix input", mix)]
        + [(f"the --s{i} reference", p) for i, p in enumerate(source_paths, 1)],
        [],
    )
    run_dir = new_run_dir(request.runs_dir)
    if spec.scratch is None:  # onnxruntime's own export goes into the run folder
        spec = dataclasses.replace(spec, scratch=run_dir / "onnx")
    with open_run(spec) as opened:
        mixture, result = forward_one(opened.separator(), mix, source_paths, inputs)
        rate = opened.separator().config.sample_rate
        metrics = {
            "mixture": str(mix),
            "sources": [str(p) for p in source_paths],
            "notes": list(mixture.notes),
            **opened.spec.info(),
            **forward_metrics(result, rate),
        }
    metrics |= write_forward_outputs(run_dir, result, rate, mix.name)
    return CheckAudioResult(
        run_dir,
        result.parity_max_abs,
        result.parity_bound,
        result.parity_ok,
        _quality(metrics, len(result.stitched)),
        metrics,
    )


def write(result: CheckAudioResult) -> None:
    """``librimix_hailo_forward_metrics.json`` in the run folder."""
    write_json(result.run_dir / METRICS_FILE, result.to_json())
