"""Puts the hailo_platform TEST DOUBLE on the path (and removes it again at teardown)."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

DOUBLE_ROOT = Path(__file__).parent / "runtime_double"


def install(monkeypatch, devices=("0000:01:00.0",), arch: str = "hailo8", io: str = "float32"):
    monkeypatch.syspath_prepend(str(DOUBLE_ROOT))
    monkeypatch.setenv("HAILO_DOUBLE_DEVICES", json.dumps(list(devices)))
    monkeypatch.setenv("HAILO_DOUBLE_ARCH", arch)
    monkeypatch.setenv("HAILO_DOUBLE_IO", io)
    monkeypatch.setitem(sys.modules, "hailo_platform", None)
    del sys.modules["hailo_platform"]
    module = importlib.import_module("hailo_platform")
    module.STATS.update({k: 0 for k in module.STATS})
    module.LOG.clear()
    return module
