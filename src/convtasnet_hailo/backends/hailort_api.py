"""HailoRT as ``hailo_runtime`` meets it: importing the binding (one line when it is missing or broken),
which API a version offers (HailoRT 5 has only InferModel), and the host side of a quantized stream
(scale and zero point: ``pyhailort.py`` ``quant_info``)."""

from __future__ import annotations

import numpy as np

from ..errors import UserError

RUNTIME_FIX = (
    "install HailoRT with its Python binding (Raspberry Pi OS: `sudo apt install hailo-all` for "
    "Hailo-8/8L, `hailo-h10-all` for Hailo-10H; elsewhere the hailort .deb + wheel from "
    "https://hailo.ai/developer-zone/)"
)
VSTREAMS, INFER_MODEL = "vstreams", "infer_model"
#: hailort.h status 92, which pyhailort.py raises as the generic HailoRTException("libhailort failed
#: with error: 92 (HAILO_HEF_NOT_SUPPORTED)"): ``hef/hef.cpp`` validate_hef_extensions refused the HEF.
HEF_NOT_SUPPORTED = "HAILO_HEF_NOT_SUPPORTED"
IO_FORMATS = ("float32", "quantized")


def quantize(x: np.ndarray, scale: float, zero_point: float, dtype) -> np.ndarray:
    """float -> the HEF's integer format: round(x / scale + zero_point), clipped to the type."""
    info = np.iinfo(dtype)
    # float64: in float32, adding a zero point like 32768 drops the low bits before rounding
    return np.clip(np.rint(np.asarray(x, np.float64) / scale + zero_point), info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: float) -> np.ndarray:
    return ((q.astype(np.float32) - zero_point) * scale).astype(np.float32)


def import_runtime():
    try:
        import hailo_platform
    except ImportError:
        raise UserError(
            f"backend hailo_runtime needs HailoRT (hailo_platform is not importable): {RUNTIME_FIX}"
        ) from None
    except Exception as exc:  # a binding that fails at import (a driver or library mismatch) raises anything
        raise UserError(
            f"backend hailo_runtime: HailoRT (hailo_platform) fails at import ({first_line(exc)}); "
            f"repair the install: {RUNTIME_FIX}"
        ) from None
    return hailo_platform


def one_scale(info) -> tuple[float, float]:
    """The stream's one scale and zero point. A HEF with per-feature output scales (extension
    OUTPUT_SCALE_PER_FEATURE) reports ``quant_info`` as zeros (seen with HailoRT 4.23's own library,
    docs/measured/hailort_build.md): dequantizing with it would give zeros, so it is refused."""
    scale, zero_point = float(info.quant_info.qp_scale), float(info.quant_info.qp_zp)
    if not scale > 0:
        raise UserError(
            f"stream {info.name} has no single scale (per-feature quantization: HailoRT reports "
            f"qp_scale {scale:g}); --io-format quantized cannot convert it on the host: use "
            "--io-format float32"
        )
    return scale, zero_point


def first_line(exc: Exception) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def runtime_api(hailo) -> tuple[str, str]:
    """(HailoRT version, API this backend uses with it): HailoRT 5.x has only InferModel."""
    version = str(getattr(hailo, "__version__", "unknown"))
    return version, INFER_MODEL if version.split(".")[0] == "5" else VSTREAMS
