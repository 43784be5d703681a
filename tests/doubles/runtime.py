"""Puts the hailo_platform TEST DOUBLE on the path (and removes it again at teardown)."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

DOUBLE_ROOT = Path(__file__).parent / "runtime_double"


def install(
    monkeypatch, devices=("0000:01:00.0",), arch: str = "hailo8", io: str = "float32", hailort: str | None = None
):
    """``hailort``: the HailoRT version the double stands for (default 4.23.0, or 5.1.1 on hailo10h)."""
    monkeypatch.syspath_prepend(str(DOUBLE_ROOT))
    if hailort:
        monkeypatch.setenv("HAILO_DOUBLE_HAILORT", hailort)
    else:
        monkeypatch.delenv("HAILO_DOUBLE_HAILORT", raising=False)
    monkeypatch.setenv("HAILO_DOUBLE_DEVICES", json.dumps(list(devices)))
    monkeypatch.setenv("HAILO_DOUBLE_ARCH", arch)
    monkeypatch.setenv("HAILO_DOUBLE_IO", io)
    for name in ("hailo_platform", "hailo_platform.pyhailort", "hailo_platform.pyhailort.pyhailort"):
        monkeypatch.setitem(sys.modules, name, None)
        del sys.modules[name]
    module = importlib.import_module("hailo_platform")
    module.STATS.update({k: 0 for k in module.STATS})
    module.LOG.clear()
    return module
