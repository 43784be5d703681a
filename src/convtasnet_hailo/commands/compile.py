"""`compile`: HAR and HEF for every stage of an export (each joined pack's HARs then joined into
one HEF), each finished job recorded in the compile manifest at once
(``compile.export_compile.run_compile``)."""

from __future__ import annotations

import dataclasses

from ..compile.export_compile import CompileOutcome, CompileRequest
from ..compile.runner import ExecMode

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
    """HAR + HEF for every stage of an export; a missing SDK is said before any work
    (``compile.export_compile.compile_export``, which also warns about packs that missed one context)."""
    from ..compile.export_compile import compile_export

    outcome, mode = compile_export(request)
    return CompileResult(outcome, mode)


def write(result: CompileResult) -> None:
    """Nothing more: the summary rows, HEFs and compile manifest are written as the compile runs."""
