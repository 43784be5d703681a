"""`check`: an export folder against the Hailo parser rules, its manifest and HailoRT's limits;
then the Dataflow Compiler of every compile in it against the HailoRT here, when both are known
(``dfc.versions``)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from ..dfc.versions import VersionCheck
from ..export.hailo_rules import CheckLimits
from ..export.verdicts import Verdict, float_only_note, packing_verdict, rules_verdict

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Request:
    export_dir: Path
    limits: CheckLimits = CheckLimits()


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """The rules' and the packing's verdicts (none for a float-only plan, which ``note`` says is
    not checked) and the compiles' version checks."""

    export_dir: Path
    verdicts: tuple[Verdict, ...] = ()
    note: str = ""
    versions: tuple[VersionCheck, ...] = ()

    @property
    def exit_status(self) -> int:
        return max([0] + [v.exit_status for v in self.verdicts] + [1 for v in self.versions if v.ok is False])

    def lines(self) -> list[str]:
        return (
            ([self.note] if self.note else [])
            + [line for v in self.verdicts for line in v.lines]
            + [f"check {self.export_dir}: {v.detail}" for v in self.versions]
        )


def run(request: Request) -> CheckResult:
    from ..dfc.versions import compiled_versions, installed_hailort
    from ..export.graph_check import check_export
    from ..export.manifest import check_coverage, read_manifest

    export_dir, what = request.export_dir, f"check {request.export_dir}"
    manifest = read_manifest(export_dir)
    check_coverage(manifest, export_dir)
    options = manifest.plan.options.float_only
    verdicts: tuple[Verdict, ...] = ()
    if not options:
        verdicts = (
            rules_verdict(check_export(export_dir, request.limits), what),
            packing_verdict(manifest.packing, what),
        )
        for problem in (p for v in verdicts for p in v.problems):
            log.warning(problem)
    versions = tuple(compiled_versions(export_dir, installed_hailort()))
    return CheckResult(export_dir, verdicts, float_only_note(options) if options else "", versions)


def write(result: CheckResult) -> None:
    """Nothing: `check` only reads."""
