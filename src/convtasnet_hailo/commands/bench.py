"""`bench`: speed and memory of every host path side by side (``bench.measure``), the table on
stdout, and with ``--out DIR`` the record (``DIR/bench.json``) and its figure (``DIR/bench.png``).
``--json FILE`` is the old spelling: the record at FILE, the PNG beside it. With ``--stream``, the
streaming plans hop by hop instead (``bench.stream``): the table, and the record at
``DIR/bench_stream.json`` (no figure)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from ..bench.measure import BenchSpec
from ..bench.stream import StreamBenchSpec

log = logging.getLogger(__name__)

RECORD_FILE = "bench.json"
STREAM_RECORD_FILE = "bench_stream.json"


@dataclasses.dataclass(frozen=True)
class Request:
    """What `bench` is asked: what to time (``spec``) and where the record goes: ``out`` (a folder:
    bench.json and bench.png in it) or ``json_path`` (deprecated: the record's file, the PNG beside
    it); neither: the table only."""

    spec: BenchSpec | StreamBenchSpec
    out: Path | None = None
    json_path: Path | None = None

    def record_path(self) -> Path | None:
        """Where the record goes (its PNG beside it), or None."""
        from ..errors import UserError

        if self.out is not None and self.json_path is not None:
            raise UserError("--out and --json both given: pass --out DIR (--json FILE is its deprecated old form)")
        if self.out is not None:
            if self.out.exists() and not self.out.is_dir():
                raise UserError(f"--out {self.out} is a file; pass a folder (bench.json and bench.png go in it)")
            return self.out / (STREAM_RECORD_FILE if isinstance(self.spec, StreamBenchSpec) else RECORD_FILE)
        return self.json_path


@dataclasses.dataclass(frozen=True)
class BenchReport:
    """The timings' summary (the table and the device prediction, as printed) and the record
    (``to_json``), with where the record and its figure go (None: not written)."""

    table: tuple[str, ...]
    record_path: Path | None
    record: dict = dataclasses.field(repr=False, compare=False)
    figure: bool = True

    exit_status = 0

    @property
    def figure_path(self) -> Path | None:
        return None if self.record_path is None or not self.figure else self.record_path.with_suffix(".png")

    def to_json(self) -> dict:
        return self.record

    def lines(self) -> list[str]:
        figure = f" and {self.figure_path}" if self.figure_path is not None else ""
        wrote = [] if self.record_path is None else [f"wrote {self.record_path}{figure}"]
        return list(self.table) + wrote


def run(request: Request) -> BenchReport:
    """Checks every input and output first, then times every path."""
    from ..bench.measure import measure_bench
    from ..bench.report import device_lines, path_lines
    from ..guard import check_run_files
    from ..resources import refuse_unless_fits

    spec, record_path = request.spec, request.record_path()
    if isinstance(spec, StreamBenchSpec):
        return _run_stream(spec, record_path)
    config, seconds = spec.source.config, spec.seconds
    refuse_unless_fits(
        config.forward_bytes(round(seconds * config.sample_rate)),
        f"bench over {seconds:g} s of audio",
        "pass a shorter --seconds",
    )
    if spec.long_seconds:
        refuse_unless_fits(
            4 * (1 + config.n_src) * round(spec.long_seconds * config.sample_rate),
            f"--long-seconds {spec.long_seconds:g} (the audio and its separated sources)",
            "pass a shorter --long-seconds",
        )
    check_run_files(
        spec.source.given() + (spec.backend.given() if spec.backend else []),
        [record_path, record_path.with_suffix(".png") if record_path else None],
    )
    record = measure_bench(spec)
    table = path_lines(record) + device_lines(record["device_prediction"], spec.device)
    return BenchReport(tuple(table), record_path, record)


def _run_stream(spec: StreamBenchSpec, record_path: Path | None) -> BenchReport:
    """``bench --stream``: the streaming plans timed hop by hop (``bench.stream``)."""
    from ..bench.stream import measure_stream_bench, stream_lines
    from ..guard import check_run_files

    check_run_files(spec.source.given(), [record_path])
    record = measure_stream_bench(spec)
    return BenchReport(tuple(stream_lines(record)), record_path, record, figure=False)


def write(result: BenchReport) -> None:
    """The record and its PNG, where asked for."""
    from ..bench.report import plot_bench
    from ..runs.run_folder import write_json

    if result.record_path is None:
        return
    result.record_path.parent.mkdir(parents=True, exist_ok=True)
    write_json(result.record_path, result.to_json())
    if result.figure_path is not None:
        plot_bench(result.figure_path, result.to_json())
