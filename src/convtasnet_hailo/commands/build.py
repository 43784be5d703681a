"""`build`: a checkpoint to ``BUILD/device/`` (the Pi's bundle) in one command, every choice
recorded in ``BUILD/build.json`` and explained in ``BUILD/report.md`` (``build.pipeline``).
Exit 1 when the build stopped short of the bundle (a compile pending on another machine or
failed) or, with ``--strict``, when the precision advice warned."""

from __future__ import annotations

import dataclasses
import logging

from ..build.pipeline import BuildOutcome, BuildRun

log = logging.getLogger(__name__)

#: `build`'s request is the pipeline's (``build.pipeline.BuildRun``).
Request = BuildRun


@dataclasses.dataclass(frozen=True)
class BuildResult:
    """The build as it ended: where it stopped, what to do next, the warnings."""

    outcome: BuildOutcome

    @property
    def exit_status(self) -> int:
        return self.outcome.exit_status

    def lines(self) -> list[str]:
        from ..build.report import report_path

        outcome, out = self.outcome, self.outcome.out
        steps = outcome.record.steps
        done = sum(state.status == "done" for state in steps.values())
        head = f"build {out}: {done} of {len(steps)} step(s) done; report {report_path(out)}" + (
            f"; bundle {out / 'device'} and {out / 'device.tar.gz'}" if outcome.stopped_at is None else ""
        )
        lines = [head] + [f"WARNING: {w}" for w in outcome.warnings]
        if outcome.next_line:
            lines.append(f"stopped at {outcome.stopped_at}: {outcome.next_line}")
        return lines

    def to_json(self) -> dict:
        return self.outcome.record.to_json()


def run(request: BuildRun) -> BuildResult:
    from ..build.pipeline import run_build

    return BuildResult(run_build(request))


def write(result: BuildResult) -> None:
    """Nothing more: build.json, the report and the bundle are written as the steps finish."""
