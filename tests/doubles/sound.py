"""Puts the sounddevice TEST DOUBLE on the path (and removes it again at teardown)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

DOUBLE_ROOT = Path(__file__).parent / "sounddevice_double"


def install(monkeypatch, recording: Path, **env: str):
    """``import sounddevice`` returns the double, which plays ``recording`` as the microphone;
    ``env``: its other SOUNDDEVICE_DOUBLE_* settings (keys without the prefix, lower case)."""
    monkeypatch.syspath_prepend(str(DOUBLE_ROOT))
    monkeypatch.setenv("SOUNDDEVICE_DOUBLE_INPUT", str(recording))
    for key, value in env.items():
        monkeypatch.setenv(f"SOUNDDEVICE_DOUBLE_{key.upper()}", value)
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    del sys.modules["sounddevice"]
    module = importlib.import_module("sounddevice")
    module.PLAYED.clear()
    return module
