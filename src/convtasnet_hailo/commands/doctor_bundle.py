"""``doctor --bundle DIR``: does this machine run that bundle? The bundle itself (every file and
hash), the HailoRT version against the DFC that compiled its HEFs (``dfc.versions``), the chip
against the HEFs' architecture, and the PCIe link against the one the bundle was built for."""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path

from ..errors import UserError

#: Where Linux lists PCI devices by their address (HailoRT's Device.scan() returns those addresses).
PCI_DEVICES = Path("/sys/bus/pci/devices")
#: current_link_speed (PCIe transfer rate) -> the generation.
LINK_SPEEDS = {"2.5": "gen1", "5.0": "gen2", "8.0": "gen3", "16.0": "gen4"}
#: HailoRT device_internal.cpp ``is_hef_compatible``: device -> the HEF architectures it runs.
RUNS_HEF_ARCHS = {"hailo8": ("hailo8", "hailo8l"), "hailo8l": ("hailo8l",), "hailo10h": ("hailo10h",)}
GEN3_FIX = (
    "set the Pi 5's PCIe link to Gen 3 (`sudo raspi-config`, Advanced Options, PCIe Speed; or "
    "`dtparam=pciex1_gen=3` in /boot/firmware/config.txt) and reboot (hailo-rpi5-examples "
    "doc/install-raspberry-pi5.md); the AI HAT+ is set to Gen 3 automatically"
)


@dataclasses.dataclass(frozen=True)
class Check:
    """One line of `doctor`: ``ok`` or a problem, with its fix (and, for a backend or toolchain,
    what it is ``needed_for``)."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    needed_for: str = ""


def format_bundle_checks(checks: list[Check]) -> str:
    """One line per check of the bundle: ok or problem, and the fix of a problem."""
    return "\n".join(
        f"[{'ok' if c.ok else 'problem'}] {c.name}: {c.detail}" + (f"; fix: {c.fix}" if not c.ok and c.fix else "")
        for c in checks
    )


def _summary(bundle) -> str:
    job = (
        f"separate at tile {bundle.tile_w}"
        if bundle.job == "separate"
        else (f"stream, hop {bundle.hop_ms:g} ms ({bundle.stream_plan})")
    )
    hefs = f"{bundle.hw_arch} HEFs" if bundle.has_hefs else "no HEFs (CPU stages only)"
    return (
        f"{bundle.directory}: {bundle.model.name} ({bundle.model.n_src} sources, {bundle.model.sample_rate} Hz), "
        f"{job}, {hefs}, link {bundle.link}; {len(bundle.files)} files, every sha256 checked"
    )


def _hailort_check(bundle) -> Check:
    from ..backends.hailort_api import RUNTIME_FIX
    from ..dfc.versions import compare, installed_hailort

    need = bundle.hailort
    wanted = f"HailoRT {need.major_minor} or newer" if need and need.major_minor else "a HailoRT of the HEFs' DFC"
    version = installed_hailort()
    if version is None:
        return Check("HailoRT", False, f"hailo_platform does not import; the HEFs need {wanted}", RUNTIME_FIX)
    verdict = compare(need.dfc if need else None, version)
    fix = (
        "" if verdict.ok is not False else f"install {wanted}, or rebuild the bundle with the DFC of HailoRT {version}"
    )
    detail = verdict.detail if verdict.ok is not None else f"unconfirmed: {verdict.detail}"
    return Check("HailoRT", verdict.ok is not False, detail, fix)


def _architecture(hailo, device_id: str) -> str | None:
    """The chip's architecture as HailoRT identifies it (``control.identify().device_architecture``,
    e.g. HAILO8L), as a DFC target name; None where it cannot be read."""
    try:
        with hailo.Device(device_id) as device:  # pyhailort.py Device, Control.identify, DeviceArchitectureTypes
            name = str(device.control.identify().device_architecture).upper()
    except Exception:  # a device held by another process, or a binding without the control API
        return None
    if "8L" in name:
        return "hailo8l"
    if "10" in name:
        return "hailo10h"
    return "hailo8" if "8" in name else None


def _devices() -> tuple[object | None, list[str]]:
    try:
        hailo = importlib.import_module("hailo_platform")
        return hailo, [str(d) for d in hailo.Device.scan()]
    except Exception:  # absent (reported by the HailoRT check) or a failed scan
        return None, []


def _chip_check(bundle, hailo, devices: list[str]) -> Check:
    if hailo is None or not devices:
        return Check(
            "chip",
            False,
            f"no Hailo device found; the bundle's HEFs need a {bundle.hw_arch}",
            "check the PCIe connection and the driver: `hailortcli scan` should list the device",
        )
    arch = _architecture(hailo, devices[0])
    if arch is None:
        return Check(
            "chip",
            True,
            f"unconfirmed: device {devices[0]} found, its chip not identified here; the HEFs are {bundle.hw_arch} "
            "(`hailortcli fw-control identify` names the chip)",
        )
    ok = bundle.hw_arch in RUNS_HEF_ARCHS.get(arch, ())
    return Check(
        "chip",
        ok,
        f"device {devices[0]} is a {arch}; the HEFs are {bundle.hw_arch}"
        + ("" if ok else f", which a {arch} cannot run"),
        "" if ok else f"rebuild the bundle with --hw-arch {arch} (build on the x86 machine)",
    )


def _link_check(bundle, devices: list[str]) -> Check:
    if not devices:
        return Check("PCIe link", True, "unconfirmed: no device to read the link of")
    try:
        speed = (PCI_DEVICES / devices[0] / "current_link_speed").read_text().split()[0]
    except (OSError, IndexError):
        return Check("PCIe link", True, f"unconfirmed: {PCI_DEVICES / devices[0]} has no readable link speed")
    link = LINK_SPEEDS.get(speed, f"{speed} GT/s")
    ok = link >= bundle.link if link in LINK_SPEEDS.values() else False
    detail = f"device {devices[0]} links at {link} ({speed} GT/s); the bundle was built for {bundle.link}"
    return Check(
        "PCIe link", ok, detail + ("" if ok else ": transfers are slower than its predictions"), "" if ok else GEN3_FIX
    )


def bundle_checks(directory: Path) -> list[Check]:
    """The bundle read, then HailoRT, chip and link against it (the last three only for HEFs)."""
    from ..runtime.bundle import read_bundle

    try:
        bundle = read_bundle(directory)
    except UserError as exc:
        detail, _, fix = str(exc).partition("; ")
        return [Check("bundle", False, detail, fix)]
    checks = [Check("bundle", True, _summary(bundle))]
    if not bundle.has_hefs:
        return checks + [Check("HailoRT", True, "not needed: the bundle runs its CPU stages (--backend onnxruntime)")]
    hailo, devices = _devices()
    return checks + [_hailort_check(bundle), _chip_check(bundle, hailo, devices), _link_check(bundle, devices)]
