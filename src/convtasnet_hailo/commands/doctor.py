"""``convtasnet-hailo doctor``: which backends and toolchains are usable here, and how to get the rest."""

from __future__ import annotations

import dataclasses
import importlib
import sys
from collections.abc import Callable
from pathlib import Path

from .doctor_bundle import Check, bundle_checks, format_bundle_checks

#: Model Zoo GETTING_STARTED.rst (v2.18 and master): Python 3.10/3.11/3.12; DFC 3.x for
#: Hailo-8/8R/8L, 5.x for Hailo-10H (docs/hailo_facts.md, "Versions").
SDK_FIX = (
    "install the Hailo Dataflow Compiler wheel (hailo_dataflow_compiler-3.x for Hailo-8/8L, 5.x for "
    "Hailo-10H; Linux x86_64, Python 3.10, 3.11 or 3.12) from https://hailo.ai/developer-zone/ into a separate "
    "venv, then pass --hailo-python /path/to/that/venv/bin/python to compile/grid"
)
#: Raspberry Pi OS: ``hailo-all`` (HailoRT 4.x) for Hailo-8/8L, ``hailo-h10-all`` (HailoRT 5.x) for
#: Hailo-10H; the two cannot be installed together (hailo-rpi5-examples #193).
RUNTIME_FIX = (
    "install HailoRT with its Python binding (Raspberry Pi OS: `sudo apt install hailo-all` for "
    "Hailo-8/8L, HailoRT 4.x, or `hailo-h10-all` for Hailo-10H, HailoRT 5.x; elsewhere the hailort .deb "
    "and hailort-*.whl from https://hailo.ai/developer-zone/)"
)


def _import_check(
    module: str,
    name: str,
    fix: str,
    needed_for: str,
    version: Callable[[object], str] = lambda m: getattr(m, "__version__", "?"),
) -> Check:
    try:
        imported = importlib.import_module(module)
    except Exception as exc:  # ImportError, or a broken install raising anything at import
        return Check(name, False, f"not importable ({type(exc).__name__}: {exc})".splitlines()[0], fix, needed_for)
    return Check(name, True, f"{module} {version(imported)}", needed_for=needed_for)


def _hailort_api(module) -> str:
    """HailoRT's version and the API hailo_runtime uses with it (5.x: InferModel only, Hailo-10H)."""
    from ..backends.hailort_api import INFER_MODEL, runtime_api

    version, api = runtime_api(module)
    if api == INFER_MODEL:
        return f"{version}: InferModel API (HailoRT 5, Hailo-10H; 26 network groups per device)"
    return f"{version}: vstream API (HailoRT 4, Hailo-8/8L; 32 network groups per device)"


def _device_check() -> Check:
    needed = "backend hailo_runtime"
    try:
        from hailo_platform import Device  # type: ignore[import-not-found]
    except Exception:
        return Check("Hailo device", False, "cannot look: hailo_platform is not importable", RUNTIME_FIX, needed)
    try:
        devices = list(Device.scan())
    except Exception as exc:
        return Check(
            "Hailo device",
            False,
            f"scan failed ({type(exc).__name__}: {exc})",
            "check the driver (`lsmod | grep hailo`) and `hailortcli scan`",
            needed,
        )
    if not devices:
        return Check(
            "Hailo device",
            False,
            "no device found",
            "check the PCIe connection and driver: `hailortcli scan` should list the device",
            needed,
        )
    return Check("Hailo device", True, ", ".join(str(d) for d in devices), needed_for=needed)


def _version_of(module: str) -> str | None:
    """``module.__version__`` when it imports (the DFC's ``hailo_sdk_client``, HailoRT's
    ``hailo_platform``), else None."""
    try:
        return str(importlib.import_module(module).__version__)
    except Exception:  # absent or broken: reported by its own check
        return None


def _versions_check() -> Check:
    """The DFC here against the HailoRT here, by Hailo's pairing (compile.versions)."""
    from ..dfc.versions import compare

    dfc, hailort = _version_of("hailo_sdk_client"), _version_of("hailo_platform")
    verdict = compare(dfc, hailort)
    fix = "" if verdict.ok is not False else "compile with the DFC that matches the HailoRT the HEFs will run on"
    return Check(
        "DFC and HailoRT", verdict.ok is not False, verdict.detail, fix, "HEFs compiled here running on this HailoRT"
    )


def run_checks() -> list[Check]:
    python_ok = sys.version_info >= (3, 10)
    checks = [
        Check("python", python_ok, sys.version.split()[0], "" if python_ok else "use Python >= 3.10", "everything"),
        _import_check("torch", "torch", "pip install torch==2.13.0", "the reference model, plans, backend torch_proxy"),
        _import_check("numpy", "numpy", "pip install numpy", "everything"),
        _import_check("onnx", "onnx", "pip install onnx", "export and check (ONNX)"),
        _import_check("onnxruntime", "onnxruntime", "pip install onnxruntime", "backend onnxruntime"),
        _import_check("hailo_sdk_client", "Hailo Dataflow Compiler", SDK_FIX, "compile, grid, backend hailo_emulator"),
        _import_check(
            "hailo_platform", "HailoRT (hailo_platform)", RUNTIME_FIX, "backend hailo_runtime", version=_hailort_api
        ),
        _device_check(),
        _versions_check(),
        _import_check(
            "ray", "Ray", "pip install 'convtasnet-hailo[ray]'", "--executor ray (grid, compile, evaluate on a cluster)"
        ),
    ]
    return checks


def format_checks(checks: list[Check]) -> str:
    lines = []
    for check in checks:
        mark = "ok  " if check.ok else "MISS"
        lines.append(f"[{mark}] {check.name}: {check.detail}  (for {check.needed_for})")
        if not check.ok and check.fix:
            lines.append(f"       fix: {check.fix}")
    return "\n".join(lines)


#: What each built-in backend needs, by check name.
BACKEND_NEEDS = {
    "torch_proxy": ("torch",),
    "onnxruntime": ("onnxruntime", "onnx"),
    "hailo_runtime": ("HailoRT (hailo_platform)", "Hailo device"),
    "hailo_emulator": ("Hailo Dataflow Compiler",),
    "hailo_quant": ("torch",),  # calibrated ranges come from `noise`
}


def format_backends(checks: list[Check]) -> str:
    """One line: every built-in backend and whether its needs are met here."""
    ok = {c.name: c.ok for c in checks}
    usable = {name: all(ok.get(need, False) for need in needs) for name, needs in BACKEND_NEEDS.items()}
    return "backends: " + ", ".join(
        f"{name} ({'usable' if usable[name] else 'unavailable'})" for name in sorted(usable)
    )


@dataclasses.dataclass(frozen=True)
class Request:
    """`doctor` looks at this machine; with ``bundle`` (a device bundle's folder) it also checks
    that this machine runs that bundle (HailoRT version, chip, PCIe link)."""

    bundle: Path | None = None


@dataclasses.dataclass(frozen=True)
class DoctorResult:
    checks: tuple[Check, ...]
    bundle_checks: tuple[Check, ...] = ()

    @property
    def exit_status(self) -> int:
        """0; 1 when a bundle was given and this machine cannot run it on its HEFs (a missing
        toolchain alone is a finding, not a failure)."""
        return 1 if any(not c.ok for c in self.bundle_checks) else 0

    def lines(self) -> list[str]:
        lines = [format_checks(list(self.checks)), format_backends(list(self.checks))]
        if self.bundle_checks:
            lines.append(format_bundle_checks(list(self.bundle_checks)))
        return lines


def run(request: Request) -> DoctorResult:
    checks = tuple(bundle_checks(request.bundle)) if request.bundle is not None else ()
    return DoctorResult(tuple(run_checks()), checks)


def write(result: DoctorResult) -> None:
    """Nothing: `doctor` only looks."""
