"""convtasnet-hailo: run Asteroid ConvTasNet models exactly on Hailo-8 / Hailo-8L NPUs.

The data flow (see docs/pipeline.md): checkpoint -> reference model (``model``) -> stage plan
(``hailo``) -> stitched executor (``tiling``) over a backend (``backends``) -> parity
reports (``parity``, ``runs``).
"""

__version__ = "0.1.0"
