"""`compile`: HAR and HEF for every stage of an export (each joined pack's HARs then joined into
one HEF), each finished job recorded in the compile manifest at once
(``compile.export_compile.run_compile``)."""

from __future__ import annotations

import dataclasses
import logging

from ..compile.export_compile import CompileOutcome, CompileRequest
from ..compile.runner import ExecMode

log = logging.getLogger(__name__)

#: `compile`'s request: the export, the script variant, the options, the model it came from, the
#: 16-bit layers, the calibration and output folders, resume (``compile.export_compile.CompileRequest``).
Request = CompileRequest


@dataclasses.dataclass(frozen=True)
class CompileResult:
    """The compile's rows and how it ran (``mode``); exit 1 when a stage or pack failed, or a pack
    compiled multi-context."""

    outcome: CompileOutcome
    mode: ExecMode

    @property
    def failed(self) -> list[str]:
        return [r["run_tag"] for r in self.outcome.rows + self.outcome.pack_rows if r["status"] == "failed"]

    @property
    def exit_status(self) -> int:
        return 1 if self.failed or self.outcome.multi_context_packs else 0

    def lines(self) -> list[str]:
        outcome = self.outcome
        done = lambda some: sum(r["status"] in ("compiled", "reused") for r in some)  # noqa: E731
        hefs = done(outcome.pack_rows) + sum(
            r["status"] in ("compiled", "reused") and r.get("wants_hef", True) for r in outcome.rows
        )
        joined = f", {done(outcome.pack_rows)} of {outcome.joined} pack(s) joined" if outcome.joined else ""
        reused = sum(r["status"] == "reused" for r in outcome.rows + outcome.pack_rows)
        lines = [
            f"{len(outcome.rows)} stage(s) {self.mode.value}: {hefs} HEF(s){joined}, {len(self.failed)} failed"
            f"{f', {reused} reused' if reused else ''}; {outcome.out_dir / 'compile_summary.tsv'}"
        ]
        if self.mode is ExecMode.DRY_RUN:
            from ..compile.export_compile import pending_command

            jobs = len(outcome.rows) + outcome.joined
            lines.append(f"{jobs} job(s) pending; on the machine with the Dataflow Compiler, run them all with:")
            lines.append(f"  {pending_command(outcome.out_dir)}")
        return lines


def run(request: CompileRequest) -> CompileResult:
    """HAR + HEF for every stage of an export; a missing SDK is said before any work."""
    from ..compile.export_compile import run_compile
    from ..compile.orchestrate import exec_mode
    from ..errors import UserError
    from ..tasks.options import open_executor

    mode = exec_mode(request.options)
    if not request.export_dir.is_dir():
        raise UserError(
            f"--export-dir {request.export_dir} is not a folder; pass one written by `convtasnet-hailo export`"
        )
    with open_executor(request.options.executor) as cases:
        outcome = run_compile(request, mode, cases)
    _warn(outcome)
    return CompileResult(outcome, mode)


def _warn(outcome: CompileOutcome) -> None:
    """Packs that did not fit one context, or compiled multi-context: what to change."""
    unmapped = [
        r["stage"]
        for r in outcome.pack_rows
        if r["status"] == "failed" and "Allocator" in (r.get("exception_type") or "")
    ]
    if unmapped:  # the joint script asks for one context (dfc.model_script.joint_script)
        log.warning(
            f"compile: pack {unmapped[0]} did not fit one context ({len(unmapped)} of {outcome.joined} packs), "
            "which its joint model script asks for (context_switch_param(mode=disabled)) since activated_packs "
            "runs only single-context packs; re-export with a smaller --networks-per-group and compile again"
        )
    multi = outcome.multi_context_packs
    if multi:  # HailoRT runs a network of a multi-context group only with all the others
        log.warning(
            f"compile: pack {multi[0]} compiled multi-context ({len(multi)} of {outcome.joined} packs), which "
            "execution mode activated_packs cannot run one network at a time (HailoRT "
            "inference_pipeline.cpp); re-export with --networks-per-group 1, or smaller packs, and compile "
            "again"
        )


def write(result: CompileResult) -> None:
    """Nothing more: the summary rows, HEFs and compile manifest are written as the compile runs."""
