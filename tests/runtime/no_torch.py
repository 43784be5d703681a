"""Runs the CLI where torch, onnx and matplotlib cannot be imported, as on a device install:
``python no_torch.py ARGS...`` (the test of the device side runs it in a subprocess)."""

import sys
import traceback

BLOCKED = ("torch", "onnx", "matplotlib")


class _Blocked:
    """Refuses those imports to the toolkit. The HailoRT test double stands in for a binary that
    needs none of them, but its own stand-in arithmetic reads the stage ONNX, so it is let through."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED and not any(
            "/tests/doubles/" in frame.filename for frame in traceback.extract_stack()
        ):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the device-side test)", name=name)
        return None


if __name__ == "__main__":
    sys.meta_path.insert(0, _Blocked())
    from convtasnet_hailo.cli import main

    sys.exit(main(sys.argv[1:]))
