"""What `export` and `check` say about an export: the Hailo parser rules and the packing against
HailoRT's limits, as verdicts (the lines for the summary, the problems for the log, an exit
status: 0 clean, 1 a rule or limit broken)."""

from __future__ import annotations

import dataclasses

from ..plan.packing import Packing
from .graph_check import Violation


@dataclasses.dataclass(frozen=True)
class Verdict:
    """``lines``: the summary; ``problems``: what breaks a rule or limit, said as warnings."""

    lines: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    exit_status: int = 0


def rules_verdict(violations: list[Violation], what: str) -> Verdict:
    """Every violation of the Hailo parser rules, or that every graph passes."""
    lines = tuple(str(v) for v in violations)
    if violations:
        stages = len({v.stage for v in violations})
        return Verdict(
            lines,
            (f"{what}: {len(violations)} rule violation(s) in {stages} stage(s); the Hailo parser would reject them",),
            1,
        )
    return Verdict((f"{what}: every graph passes the Hailo parser rules",))


def packing_verdict(packing: Packing | None, what: str) -> Verdict:
    """Exit status 1 when the export's packing breaks a limit (network groups per HEF, networks
    per group) or cannot run in its execution mode. More network groups than a device holds at
    once is said, not failed: hailo_runtime runs such a plan in configuration windows, at the
    cost the message states."""
    if packing is None:
        return Verdict(
            (f"{what}: no packing recorded (an export from before packing); re-export to check the runtime limits",)
        )
    problems = tuple(f"{what}: {problem}" for problem in packing.hard_violations())
    note = packing.window_note()
    if note:
        lines = (f"{what}: {note}",)
    elif not problems:
        lines = (
            f"{what}: {len(packing.hefs)} HEF(s), {len(packing.network_groups)} network group(s) within "
            f"HailoRT's limits ({packing.limits.network_groups_per_device} network groups per device), "
            f"execution mode {packing.mode.value}",
        )
    else:
        lines = ()
    return Verdict(lines, problems, 1 if problems else 0)


def float_only_note(options: tuple[str, ...]) -> str:
    return (
        f"check: built with {' and '.join(options)}, for the float backends (onnxruntime, torch_proxy): not "
        "checked against the Hailo parser rules or runtime limits (compile refuses it)"
    )
