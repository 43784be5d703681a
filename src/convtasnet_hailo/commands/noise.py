"""`noise`: quantization noise without the SDK (``quantization.noise``): writes
``noise_report.json``, ``noise_layers.png`` and ``model_scripts/<stage>.alls`` in ``--out``.
A missed target or more than ``MAX_16BIT_SHARE`` of the layers advised 16-bit is a loud warning
(``noise_record.advice_problems``); exit 1 for it with ``strict``, else 0."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from ..model.source import ModelSource
from ..quantization.noise_inputs import NoiseAudio
from ..quantization.noise_types import NoiseSettings

log = logging.getLogger(__name__)

REPORT_FILE = "noise_report.json"
FIGURE_FILE = "noise_layers.png"


@dataclasses.dataclass(frozen=True)
class Request:
    """What `noise` is asked: the model, the three sets of audio (``audio``), how to analyse
    (``settings``: its ``out`` is the report folder)."""

    source: ModelSource
    audio: NoiseAudio
    settings: NoiseSettings
    strict: bool = False

    @property
    def out(self) -> Path:
        return self.settings.out


@dataclasses.dataclass(frozen=True)
class PredictedRtf:
    """The cost model's device real-time factor at all-8, as advised and at all-16."""

    all8: float
    advised: float
    all16: float


@dataclasses.dataclass(frozen=True)
class NoiseReport:
    """The noise study's verdict (what the summary line and the figure show) and its full record
    (``to_json``: ``noise_report.json``)."""

    out: Path
    model_source: str
    all8_db: float
    advised_db: float
    n_layers: int
    n_layers_16bit: int
    n_layers_not_a8_w8: int
    target_reached: bool
    target_reached_on: str
    si_snri_db: tuple[float, float, float] | None  # float, all-8, advised
    predicted_rtf: PredictedRtf | None
    rescale_problems: tuple[int, int]  # at all-8, as advised
    seconds: float
    per_layer_sqnr_db: tuple[tuple[str, float], ...]
    layers_16bit: tuple[str, ...]
    flagged_below_db: float
    problems: tuple[str, ...] = ()
    strict: bool = False
    record: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)

    @property
    def exit_status(self) -> int:
        """1 for a problem of the advice under ``--strict``, else 0."""
        return 1 if self.strict and self.problems else 0

    @classmethod
    def from_record(cls, out: Path, record: dict, strict: bool = False) -> NoiseReport:
        """The typed verdict of ``analyze_noise``'s record (read here once, where it is made)."""
        from ..quantization.noise_record import advice_problems

        si, rtf = record["si_snri_db"], record["predicted_device_rtf"]
        return cls(
            out=out,
            model_source=record["model_source"],
            all8_db=record["final_output_si_snr_vs_float_db_all8"],
            advised_db=record["final_output_si_snr_vs_float_db_advised"],
            n_layers=record["n_layers"],
            n_layers_16bit=record["n_layers_16bit"],
            n_layers_not_a8_w8=record["n_layers_not_a8_w8"],
            target_reached=record["target_reached"],
            target_reached_on=record["target_reached_on"],
            si_snri_db=None if si["float"] is None else (si["float"], si["all8"], si["advised"]),
            predicted_rtf=PredictedRtf(rtf["all8"]["rtf"], rtf["advised"]["rtf"], rtf["all16"]["rtf"]) if rtf else None,
            rescale_problems=(
                len(record["rescale_feasibility"]["all8"]),
                len(record["rescale_feasibility"]["advised"]),
            ),
            seconds=record["seconds"],
            per_layer_sqnr_db=tuple(record["per_layer_sqnr_db"].items()),
            layers_16bit=tuple(record["layers_16bit"]),
            flagged_below_db=record["per_layer_flagged_below_db"]["threshold_db"],
            problems=tuple(advice_problems(record)),
            strict=strict,
            record=record,
        )

    def to_json(self) -> dict:
        return self.record

    def lines(self) -> list[str]:
        improvement = (
            ""
            if self.si_snri_db is None
            else "; SI-SNRi float {:.2f}, all-8 {:.2f}, advised {:.2f} dB".format(*self.si_snri_db)
        )
        rtf = self.predicted_rtf
        cost = (
            ""
            if rtf is None
            else f"; predicted device RTF all-8 {rtf.all8:.3f}, advised {rtf.advised:.3f}, all-16 {rtf.all16:.3f}"
        )
        return [
            f"noise: all-8 {self.all8_db:.2f} dB, advised {self.advised_db:.2f} dB with {self.n_layers_16bit} of "
            f"{self.n_layers} layers a16_w16 and {self.n_layers_not_a8_w8 - self.n_layers_16bit} a8_w8_a16 "
            f"(target {'reached' if self.target_reached else 'NOT reached'} on the {self.target_reached_on} "
            f"audio){improvement}{cost}; {self.rescale_problems[0]} rescale problem(s) at 8 bits, "
            f"{self.rescale_problems[1]} as advised; {self.out / REPORT_FILE} ({self.seconds:.0f} s)"
        ]


def run(request: Request) -> NoiseReport:
    """Every input checked before the first output, then the study (calibration tiles and model
    scripts written into ``--out`` as it goes)."""
    from ..errors import UserError
    from ..guard import check_run_files
    from ..quantization.noise import analyze_noise, parse_clipping
    from ..quantization.noise_inputs import load_noise_inputs

    source, out = request.source, request.out
    parse_clipping(request.settings.clipping)  # a bad value is refused before any work
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; pass a folder")
    inputs = load_noise_inputs(source, request.audio)
    check_run_files(
        source.given()
        + [("the --audio input", r.path) for r in inputs.evaluation.recordings]
        + [("the --calib input", r.path) for r in inputs.calibration.recordings],
        [out / REPORT_FILE, out / FIGURE_FILE],
    )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create --out {out}: {exc.strerror}; pass a writable folder") from None
    record = analyze_noise(source, inputs, request.settings)
    record.update(
        {
            "audio": list(request.audio.audio),
            "sources": list(request.audio.sources),
            "calibration": [str(r.path) for r in inputs.calibration.recordings],
        }
    )
    report = NoiseReport.from_record(out, record, request.strict)
    for problem in report.problems:
        log.warning(f"noise: {problem}" + (" (--strict: exit 1)" if request.strict else ""))
    return report


def write(result: NoiseReport) -> None:
    """``noise_report.json`` and ``noise_layers.png`` in ``--out``."""
    from ..runs.run_folder import write_json

    write_json(result.out / REPORT_FILE, result.to_json())
    plot_layer_noise(result.out / FIGURE_FILE, result)


def plot_layer_noise(path: Path, report: NoiseReport) -> None:
    """Per-layer SQNR bars (plan order), the advised 16-bit layers in red, the flag threshold dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..files import written_atomically

    names = [name for name, _ in report.per_layer_sqnr_db]
    values = [min(db, 120.0) for _, db in report.per_layer_sqnr_db]
    chosen = set(report.layers_16bit)
    fig, ax = plt.subplots(figsize=(max(8, len(names) * 0.06), 4))
    ax.bar(range(len(names)), values, color=["C3" if n in chosen else "C0" for n in names], width=1.0)
    ax.axhline(report.flagged_below_db, color="black", lw=0.6, ls="--")
    ax.set_xlabel("layer (plan order); red: advised a16_w16")
    ax.set_ylabel("SQNR, layer alone (dB)")
    ax.set_title(
        f"{report.model_source}: final output {report.all8_db:.1f} dB all 8-bit, {report.advised_db:.1f} dB "
        f"with {report.n_layers_16bit} layer(s) 16-bit",
        fontsize=9,
    )
    fig.tight_layout()
    with written_atomically(path) as temporary:
        fig.savefig(temporary, dpi=100, format="png")
    plt.close(fig)
