"""Files shipped with the package: the demo model and a real two-speaker mixture."""

from __future__ import annotations

from pathlib import Path

DEMO_DIR = Path(__file__).parent / "demo"
DEMO_MODEL = DEMO_DIR / "convtasnet_demo_8k.pth"
DEMO_MIXTURE = DEMO_DIR / "mixture.wav"
DEMO_SOURCES = (DEMO_DIR / "s1.wav", DEMO_DIR / "s2.wav")
