"""Puts the hailo_sdk_client TEST DOUBLE on the path for in-process and worker tests."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

DOUBLE_ROOT = Path(__file__).parent / "sdk_double"


def install(monkeypatch, behavior: dict | None = None, calls: Path | None = None, dfc: str = "3.33.1"):
    """Makes ``import hailo_sdk_client`` return the double here and in worker subprocesses
    (``dfc``: the DFC version it stands for; 5.x for hailo10h)."""
    import json
    import os

    monkeypatch.setenv("HAILO_DOUBLE_DFC", dfc)
    monkeypatch.syspath_prepend(str(DOUBLE_ROOT))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(DOUBLE_ROOT), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("HAILO_DOUBLE_BEHAVIOR", json.dumps(behavior or {}))
    if calls is not None:
        monkeypatch.setenv("HAILO_DOUBLE_CALLS", str(calls))
    # Recorded as absent, so teardown removes the double from sys.modules again.
    monkeypatch.setitem(sys.modules, "hailo_sdk_client", None)
    del sys.modules["hailo_sdk_client"]
    return importlib.import_module("hailo_sdk_client")
