"""Which Dataflow Compiler (DFC) release goes with which HailoRT: Hailo's public pairing, in one place.

HailoRT refuses a HEF that uses extensions it does not know (``hef/hef.cpp``
``validate_hef_extensions``: status 92 HAILO_HEF_NOT_SUPPORTED, "HEF file is not supported. Make
sure the DFC version is compatible", ``hailort.h``), which is what a HEF from a newer DFC than the
runtime's may do. The HEF records its DFC (``ProtoHEFHeader.sdk_version``, ``hef.proto``), but
HailoRT's Python API does not expose it, so `compile` records it in ``compile_manifest.json``
(``hailo_sdk_client.__version__``, as HailoRT's own ``hailo --version`` reads it:
``hailo_platform/tools/hailocli/version_action.py``).
"""

from __future__ import annotations

import dataclasses

#: HailoRT release -> the DFC release Hailo shipped with it. Source: the Hailo Model Zoo's
#: ``CHANGELOG.rst`` (hailo-ai/hailo_model_zoo, branch ``update-to-version-v2.18.0`` for the
#: 4.x lines, ``master`` for 5.x): each release "Update to use Dataflow Compiler vX" and "Update to
#: use HailoRT vY"; v2.18 moved to DFC 3.33.1 and kept HailoRT 4.23.0 (its README badges), and
#: v2.11/v2.12 both used HailoRT 4.18 (DFC 3.27, then 3.28). Major versions pair as families:
#: DFC 3.x with HailoRT 4.x (Hailo-8/8R/8L), DFC 5.x with HailoRT 5.x (Hailo-10H/15).
HAILORT_TO_DFC: dict[str, str] = {
    "4.12": "3.22",
    "4.13": "3.23",
    "4.14": "3.24",
    "4.15": "3.25",
    "4.16": "3.26",
    "4.18": "3.28",
    "4.19": "3.29",
    "4.20": "3.30",
    "4.21": "3.31",
    "4.22": "3.32",
    "4.23": "3.33",
    "5.0": "5.0",
    "5.1": "5.1",
    "5.2": "5.2",
}
FAMILIES = {3: 4, 5: 5}  # DFC major -> HailoRT major
SOURCE = "Hailo Model Zoo CHANGELOG"


def release(version: str | None) -> tuple[int, int] | None:
    """``"3.33.1-test-double"`` -> (3, 33); None for an unknown or unparsable version."""
    parts = []
    for part in str(version or "").split("-")[0].split("."):
        if not part.isdigit():
            break
        parts.append(int(part))
    return (parts[0], parts[1]) if len(parts) >= 2 else None


def _pairs() -> list[tuple[tuple[int, int], tuple[int, int]]]:
    return sorted((release(rt), release(dfc)) for rt, dfc in HAILORT_TO_DFC.items())  # type: ignore[misc]


def dfc_for_hailort(hailort: str | None) -> str | None:
    """The DFC release Hailo shipped with ``hailort`` (major.minor), None when the table has no row."""
    return HAILORT_TO_DFC.get(".".join(map(str, release(hailort) or ())))


def hailort_for_dfc(dfc: str | None) -> str | None:
    """The oldest HailoRT release shipped with ``dfc`` or a newer DFC of its family."""
    wanted = release(dfc)
    if wanted is None:
        return None
    for rt, paired in _pairs():
        if paired[0] == wanted[0] and paired >= wanted:
            return f"{rt[0]}.{rt[1]}"
    return None


@dataclasses.dataclass(frozen=True)
class VersionCheck:
    """``ok``: True (this HailoRT reads HEFs of this DFC), False (it refuses them, or may), None
    (either version unknown, or not in the table); ``detail``: one line saying so."""

    ok: bool | None
    detail: str


def compare(dfc: str | None, hailort: str | None) -> VersionCheck:
    """A HEF from DFC ``dfc`` against HailoRT ``hailort``, by Hailo's pairing (``HAILORT_TO_DFC``)."""
    made, runs = release(dfc), release(hailort)
    if made is None or runs is None:
        return VersionCheck(None, f"DFC {dfc or 'unknown'}, HailoRT {hailort or 'unknown'}: not compared")
    if FAMILIES.get(made[0]) != runs[0]:
        return VersionCheck(
            False,
            f"DFC {dfc} HEFs do not run on HailoRT {hailort}: DFC 3.x goes with HailoRT 4.x "
            "(Hailo-8/8L), DFC 5.x with HailoRT 5.x (Hailo-10H)",
        )
    paired = dfc_for_hailort(hailort)
    if paired is None:
        return VersionCheck(None, f"HailoRT {hailort} is not in {SOURCE}'s pairs; not compared with DFC {dfc}")
    reads = release(paired)
    assert reads is not None
    if made > reads:
        return VersionCheck(
            False,
            f"HEFs of DFC {dfc} are newer than HailoRT {hailort} reads (it came with DFC "
            f"{reads[0]}.{reads[1]}) and may be refused (HAILO_HEF_NOT_SUPPORTED): "
            f"{advice(dfc, hailort)}",
        )
    return VersionCheck(
        True, f"DFC {dfc} HEFs run on HailoRT {hailort} (it came with DFC {reads[0]}.{reads[1]}; {SOURCE})"
    )


def advice(dfc: str | None, hailort: str) -> str:
    """What to do about a HEF of DFC ``dfc`` that HailoRT ``hailort`` refuses."""
    paired = dfc_for_hailort(hailort)
    runtime = hailort_for_dfc(dfc)
    steps = [
        f"recompile with DFC {paired}.x (Hailo's release for HailoRT {hailort}, {SOURCE})"
        if paired
        else f"recompile with the DFC release that matches HailoRT {hailort} ({SOURCE})"
    ]
    if runtime:
        steps.append(f"install HailoRT {runtime} or newer")
    return " or ".join(steps)


def not_supported_line(what: str, hef_name: str, dfc: str | None, hailort: str) -> str:
    """The one line for HAILO_HEF_NOT_SUPPORTED (status 92) when ``HEF(path)`` refuses a HEF."""
    made = f"DFC {dfc}" if dfc else "a DFC this folder does not record (no compile_manifest.json)"
    return (
        f"{what}: HailoRT {hailort} cannot read {hef_name}, compiled by {made} (HAILO_HEF_NOT_SUPPORTED: "
        f"the HEF is newer than this HailoRT); {advice(dfc, hailort)}"
    )


def installed_hailort() -> str | None:
    """HailoRT's version here (``hailo_platform.__version__``), None when it does not import."""
    try:
        import hailo_platform  # type: ignore[import-not-found]
    except Exception:  # absent, or a binding that fails at import: nothing to compare
        return None
    return str(getattr(hailo_platform, "__version__", "")) or None


def compiled_versions(export_dir, hailort: str | None) -> list[VersionCheck]:
    """Every compile of ``export_dir`` (``hailo/<arch>/compile_manifest.json``) that records its
    DFC, compared with HailoRT ``hailort`` (None: not installed here, so only the DFC is named)."""
    from pathlib import Path

    from .manifest import read_compile_manifest

    checks = []
    for folder in sorted(Path(export_dir).glob("hailo/*")):
        compiled = read_compile_manifest(folder) if folder.is_dir() else None
        if compiled is None:
            continue
        verdict = compare(compiled.dfc_version, hailort)
        checks.append(dataclasses.replace(verdict, detail=f"{folder.name} HEFs: {verdict.detail}"))
    return checks
