"""convtasnet-hailo: run Asteroid ConvTasNet models exactly on Hailo-8 / Hailo-8L NPUs.

The Python API (``api``): :func:`open_pipeline` opens a model (a checkpoint, or the model an
export folder was made from) on a backend; its ``separate`` / ``separate_file`` give the sources,
and with ``hop_ms`` it streams hop by hop; :func:`run_parity` checks the stitched path stage by
stage. The data flow is in docs/pipeline.md.
"""

from ._version import __version__
__all__ = ["Pipeline", "Streamer", "open_pipeline", "run_parity", "__version__"]


def __getattr__(name: str):
    if name in ("Pipeline", "Streamer", "open_pipeline", "run_parity"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
