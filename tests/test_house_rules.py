"""The house rules a new maintainer relies on (docs/development.md): progress goes to module
loggers, never through report callbacks or print in library code (only ``cli/`` prints); no
module is over 500 lines."""

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "convtasnet_hailo"
MAX_LINES = 500


#: Entry points of their own process: the SDK-side worker prints its usage line (``python -m``).
OWN_ENTRY_POINTS = {"dfc/worker.py"}
EXECUTORS = re.compile(
    r"\b(StitchedExecutor|StreamingExecutor|WindowStreamingExecutor|StatefulExecutor|StitchedSeparator)\("
)


def _library_modules() -> list[Path]:
    return [
        p
        for p in sorted(PACKAGE.rglob("*.py"))
        if "cli" not in p.relative_to(PACKAGE).parts and str(p.relative_to(PACKAGE)) not in OWN_ENTRY_POINTS
    ]


def test_only_runtime_builds_executors():
    """The import-linter contract keeps the executor modules out of reach; this finds a
    constructor called through a re-export."""
    found = [
        f"{p.relative_to(PACKAGE)}:{n}"
        for p in PACKAGE.rglob("*.py")
        if p.parent.name != "runtime"
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if EXECUTORS.search(line)
    ]
    assert not found, f"executors built outside runtime/ (use runtime.engine or a Run): {found}"


def test_no_report_callbacks():
    pattern = re.compile(r"report=print|Callable\[\[str\], None\]")
    found = [
        f"{p.relative_to(PACKAGE)}:{n}"
        for p in PACKAGE.rglob("*.py")
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert not found, f"report callbacks left (use logging.getLogger(__name__)): {found}"


def test_library_code_does_not_print():
    found = []
    for path in _library_modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert not found, f"print in library code (log, or return the lines in the command's Result): {found}"


def test_no_module_over_500_lines():
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"
