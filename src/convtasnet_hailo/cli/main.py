"""convtasnet-hailo: run Asteroid ConvTasNet speech separation exactly on Hailo-8 / Hailo-8L NPUs.

The command line parses and dispatches, nothing more: each ``cmd_*`` turns its arguments into
plain values and calls one function of the layer that does the work. Heavy imports happen inside
the command (fast ``--help``). Errors reach the user through :func:`main`'s one handler."""

from __future__ import annotations

import argparse
import contextlib
import sys

from .._version import __version__
from ..errors import UserError
from . import build, run, verify
from .options import Parser, shared_parsers


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _stop_on_sigterm() -> None:
    """A process manager's SIGTERM ends a run like Ctrl-C: finished files kept, partial ones removed."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)


#: Exit status of a genuine bug (its traceback is shown under a line saying so).
BUG_EXIT = 3


#: What the [host] extra installs: a device install lacks them by design.
HOST_PACKAGES = ("torch", "onnx", "matplotlib", "pesq", "pystoi")


#: What torch's allocators say when an allocation fails (a RuntimeError, not a MemoryError):
#: c10/core/impl/alloc_cpu.cpp ("DefaultCPUAllocator: not enough memory" / "can't allocate memory")
#: and the CUDA caching allocator ("CUDA out of memory", torch.cuda.OutOfMemoryError).
ALLOCATOR_FAILURES = ("DefaultCPUAllocator", "not enough memory", "can't allocate memory", "out of memory")


def _allocator_failure(exc: BaseException) -> bool:
    return isinstance(exc, RuntimeError) and any(text in str(exc) for text in ALLOCATOR_FAILURES)


def _environment_error(exc: BaseException) -> str | None:
    """The one line for an error of the machine rather than of this code, or None."""
    missing = getattr(exc, "name", None) or ""
    if isinstance(exc, ImportError) and missing.split(".")[0] in HOST_PACKAGES:
        return (
            f"this needs {missing.split('.')[0]}, which a device install leaves out: pip install "
            "'convtasnet-hailo[host]' (or run from an export folder: --export-dir EXPORT without --model)"
        )
    if isinstance(exc, MemoryError) or _allocator_failure(exc):
        return (
            f"out of memory ({_first_line(exc) or 'MemoryError'}); process shorter inputs (separate --segment), "
            "a smaller --tile-w, or free memory"
        )
    if isinstance(exc, OSError):  # the environment (disk full, permissions) rather than a bug
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror or exc}{where}; check the path and free space (files already finished are kept)"
    soundfile = sys.modules.get("soundfile")
    if soundfile is not None and isinstance(exc, getattr(soundfile, "LibsndfileError", ())):
        return (
            f"libsndfile: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}; check the audio path "
            "and free space (files already finished are kept)"
        )
    return None


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else ""


#: Characters that would break a message's one line (or move the cursor): C0/C1 controls and
#: Unicode's line and paragraph separators, as a file name may hold them.
_CONTROL = {c: f"\\x{c:02x}" for c in (*range(32), 127, *range(0x80, 0xA0))} | {
    ord("\n"): "\\n",
    ord("\r"): "\\r",
    ord("\t"): "\\t",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


def one_line(text: str) -> str:
    """``text`` with every control character escaped (a name holding a newline stays one line)."""
    return text.translate(_CONTROL)


class _OneLineFormatter:
    """Formats a log record's message as one line (control characters escaped)."""

    def __init__(self) -> None:
        import logging

        self._plain = logging.Formatter("%(message)s")

    def format(self, record) -> str:
        return one_line(self._plain.format(record))


def _bug(prefix: str, exc: BaseException) -> int:
    import traceback

    print(
        f"{prefix}: internal error, a bug in convtasnet-hailo rather than in your input ({type(exc).__name__}); "
        "please report it with the traceback below",
        file=sys.stderr,
    )
    traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    return BUG_EXIT


_HANDLER_NAME = "convtasnet-hailo cli"


def _install_log_handler(verbosity: int) -> None:
    """Progress from the module loggers to stderr, one plain line each (``-q``: warnings only,
    ``-v``: debug too)."""
    import logging

    handler = logging.StreamHandler(sys.stderr)  # the stderr of this call (tests replace it per call)
    handler.setFormatter(_OneLineFormatter())  # type: ignore[arg-type]
    handler.name = _HANDLER_NAME
    root = logging.getLogger("convtasnet_hailo")
    root.handlers = [h for h in root.handlers if h.name != _HANDLER_NAME] + [handler]
    root.setLevel({-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG))


@contextlib.contextmanager
def _warnings_as_notes():
    """Python warnings during a command, as one-line notes: a library's ``warnings.warn`` prints two
    lines (and its source line) before whatever follows. Floating-point RuntimeWarnings (numpy's
    "divide by zero encountered", a spectrogram of silence) are symptoms the checks already name or
    that a result states itself (-inf dB): logged at debug level only. When the command fails, every
    warning is: the error's one line stays alone."""
    import logging
    import warnings

    log = logging.getLogger("convtasnet_hailo.cli")
    failed = True
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        try:
            yield
            failed = False
        finally:
            seen = set()
            for warning in caught:
                text = f"{warning.category.__name__}: {warning.message}"
                if text in seen:
                    continue
                seen.add(text)
                quiet = failed or issubclass(warning.category, RuntimeWarning)  # an error line stays alone
                log.log(logging.DEBUG if quiet else logging.WARNING, f"note: {warning.message}")


def main(argv: list[str] | None = None) -> int:
    """Parses, dispatches, and turns every error a user can cause into one line and an exit
    status: 2 for bad input or environment (full disk, no memory), 130 for Ctrl-C (finished files
    are kept), 3 for a bug (its traceback under a line saying it is one). The command runs inside
    ``guard.session()``: no file it reads is overwritten."""
    from ..guard import session

    parser = build_parser()
    args = parser.parse_args(argv)
    _install_log_handler(args.verbosity)
    prefix = f"convtasnet-hailo {args.command}"
    _stop_on_sigterm()
    try:
        with session(), _warnings_as_notes():
            return args.func(args)
    except UserError as exc:
        print(f"{prefix}: error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prefix}: interrupted; files already written are kept", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001  (the top level: one line for the machine's errors, a bug report else)
        line = _environment_error(exc)
        if line is None:
            return _bug(prefix, exc)
        print(f"{prefix}: error: {one_line(line)}", file=sys.stderr)
        return 2


#: The commands in pipeline order, as --help lists them.
COMMAND_GROUPS = (
    ("build", ("build", "plan", "export", "check", "compile", "compile-grid")),
    ("run", ("separate", "enhance", "stream", "check-audio")),
    ("verify", ("parity", "evaluate", "noise")),
    ("measure", ("bench",)),
    ("tools", ("import-onnx", "finetune", "doctor", "demo")),
)


_ADDERS = {
    "build": build.add_build,
    "plan": build.add_plan,
    "export": build.add_export,
    "check": build.add_check,
    "compile": build.add_compile,
    "compile-grid": build.add_grid,
    "separate": run.add_separate,
    "enhance": run.add_enhance,
    "stream": run.add_stream,
    "check-audio": run.add_check_audio,
    "parity": verify.add_parity,
    "evaluate": run.add_evaluate,
    "noise": verify.add_noise,
    "bench": verify.add_bench,
    "import-onnx": build.add_import_onnx,
    "finetune": verify.add_finetune,
    "doctor": build.add_doctor,
    "demo": run.add_demo,
}


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="convtasnet-hailo",
        description=__doc__.splitlines()[0] if __doc__ else None,
        epilog="commands in pipeline order: "
        + "; ".join(f"{group}: {', '.join(names)}" for group, names in COMMAND_GROUPS),
    )
    parser.add_argument(
        "-q",
        "--quiet",
        dest="verbosity",
        action="store_const",
        const=-1,
        default=0,
        help="print warnings, errors and each command's summary only",
    )
    parser.add_argument(
        "-v", "--verbose", dest="verbosity", action="store_const", const=1, help="print debugging detail too"
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    shared = shared_parsers()
    for _, names in COMMAND_GROUPS:
        for name in names:
            _ADDERS[name](sub, shared)
    return parser
