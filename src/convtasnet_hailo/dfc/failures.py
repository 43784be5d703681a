"""Maps compile exceptions and logs to the runbook's ``exception_type`` / ``failure_head``.

``exception_type`` is the exception's class name (or ``Timeout``); ``failure_head`` is the first
line of the log or message that carries a failure signature; ``signature`` is a short stable key
for grouping (numbers and layer names stripped).
"""

from __future__ import annotations

import dataclasses
import re

#: Lines that mark the real cause in DFC logs and messages (docs/hailo_facts.md, "Errors seen").
FAILURE_MARKERS = (
    "Agent infeasible",
    "Mapping Failed",
    "No successful assignments",
    "Unsupported",
    "not supported",
    "Failed to",
    "failed",
    "Error",
    "error",
    "Exception",
    "Timeout",
    "timed out",
    "infeasible",
)
_CLASS_IN_TEXT = re.compile(r"\b([A-Z][A-Za-z0-9]*(?:Exception|Error|NonFixable))\b")
_VOLATILE = re.compile(r"(0x[0-9a-fA-F]+|\d+(\.\d+)?|'[^']*'|\"[^\"]*\"|\b[a-z_]+\d+\b)")


@dataclasses.dataclass(frozen=True)
class Failure:
    exception_type: str
    failure_head: str
    signature: str

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def _head(text: str) -> str:
    """The first line with a specific failure signature, else with a generic one, else ''."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for marker in FAILURE_MARKERS[:5]:  # specific signatures, most telling first
        for line in lines:
            if marker in line:
                return line
    for line in lines:
        if any(marker in line for marker in FAILURE_MARKERS[5:]):
            return line
    return ""


def _signature(exception_type: str, head: str) -> str:
    stripped = _VOLATILE.sub("#", head)
    stripped = re.sub(r"\s+", " ", stripped).strip()[:120]
    return f"{exception_type}: {stripped}" if stripped else exception_type


def normalize(exception_type: str | None = None, message: str = "", log: str = "") -> Failure:
    """One failure from what we have: an exception's class name and message and/or a log text.
    Without a class name, the first ``...Exception``/``...Error`` named in the text is used."""
    text = f"{message}\n{log}"
    if not exception_type:
        match = _CLASS_IN_TEXT.search(text)
        exception_type = match.group(1) if match else "UnknownError"
    head = _head(f"{log}\n{message}")
    if not head:
        first = [line.strip() for line in message.splitlines() if line.strip()]
        head = first[0] if first else exception_type
    return Failure(exception_type, head[:300], _signature(exception_type, head))


def from_exception(exc: BaseException, log: str = "") -> Failure:
    name = "Timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
    return normalize(name, str(exc), log)
