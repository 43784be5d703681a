"""convtasnet-hailo: run Asteroid ConvTasNet models exactly on Hailo-8 / Hailo-8L NPUs.

The Python API (``api``): :class:`Separator` separates recordings and :class:`StreamingSeparator`
streams a causal model hop by hop, each opened ``from_checkpoint``, ``from_export`` (no torch) or
as the shipped ``demo``, on a backend config (:class:`TorchProxy`, :class:`OnnxRuntime`,
:class:`HailoRuntime`, :class:`HailoEmulator`, :class:`HailoQuant`); :func:`load_audio`,
:func:`read_librimix` and :func:`score` read files and sets and score estimates; :func:`run_parity`
checks the stitched path stage by stage. The data flow is in docs/pipeline.md.
"""

import logging

from ._version import __version__

# Library modules log to module loggers (``logging.getLogger(__name__)``); the CLI installs the
# handler. A program using the API sees nothing unless it configures logging itself.
logging.getLogger(__name__).addHandler(logging.NullHandler())

_API = (
    "Separator",
    "StreamingSeparator",
    "TorchProxy",
    "OnnxRuntime",
    "HailoRuntime",
    "HailoEmulator",
    "HailoQuant",
    "load_audio",
    "read_librimix",
    "score",
    "open_pipeline",
    "run_parity",
)
__all__ = [*_API, "__version__"]


def __getattr__(name: str):
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
