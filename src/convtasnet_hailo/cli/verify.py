"""The verify and measure commands: parity, noise, finetune, bench."""

from __future__ import annotations

import argparse
from pathlib import Path

from .folders import add_bundle_option
from .options import PATHS, Shared, add_resume_option, backend_options, layout, model_or_random, tile_option
from .values import finite_float, optional_path, positive_float, positive_int

#: Mirror ``quantization.datasets.DEFAULT_CALIB_COUNT`` / ``DEFAULT_CALIB_FILES`` (literal so that
#: --help imports no numpy; tests/quantization/test_calib_input.py checks the two agree).
CALIB_COUNT = 64
CALIB_FILES = 64


def _optional_tuple(values: list[str] | None) -> tuple[str, ...] | None:
    return tuple(values) if values else None


def _parity_model(args: argparse.Namespace, bundle):
    """The float reference: a bundle's model (its weights: --model, checked against its hash), else
    --model or --random-preset."""
    from .folders import bundle_reference

    return bundle_reference(args) if bundle is not None else model_or_random(args)


def cmd_parity(args: argparse.Namespace) -> int:
    from .. import commands
    from ..commands.parity import Request
    from ..parity.runner import ReferencePrecision
    from ..plan.options import PlanPath
    from .dispatch import dispatch
    from .folders import settle

    bundle = settle(args, keep_model=True)
    # keywords are evaluated in order: impossible backend combinations are refused before the model is built
    return dispatch(
        commands.parity,
        Request(
            backend=backend_options(args),
            source=_parity_model(args, bundle),
            path=PlanPath(args.path),
            tile_widths=args.tile_w,
            lengths=args.length,
            seconds=args.seconds,
            layout=layout(args),
            runs_dir=Path(args.runs_dir),
            seed=args.seed,
            reference=ReferencePrecision(args.reference),
        ),
    )


def add_parity(sub, shared: Shared) -> None:
    parity = sub.add_parser(
        "parity",
        parents=[shared.random_model, shared.backend, tile_option(None, many=True), shared.blocks, shared.runs],
        help="stitched tiled execution vs the reference model, per stage",
    )
    parity.add_argument("path", choices=PATHS, help="which part of the model to check")
    parity.add_argument(
        "--length",
        type=positive_int,
        nargs="+",
        help="input lengths: samples for full-chain, latent frames for decoder/masker "
        "(default: edge lengths around each tile width)",
    )
    parity.add_argument("--seconds", type=positive_float, nargs="+", help="input lengths in seconds of audio")
    parity.add_argument(
        "--reference",
        choices=("float32", "float64"),
        default="float32",
        help="compare with the model in float32 (default, as users run it) or float64 (exact math: "
        "the path's own error without the float32 reference's rounding)",
    )
    add_bundle_option(parity)
    parity.set_defaults(func=cmd_parity)


def cmd_noise(args: argparse.Namespace) -> int:
    from .. import commands
    from ..commands.noise import Request
    from ..hailo.quant_scheme import Scheme, WeightGranularity
    from ..quantization.noise_inputs import NoiseAudio
    from ..quantization.noise_types import NoiseSettings
    from .dispatch import dispatch

    audio = NoiseAudio(
        audio=tuple(args.audio),
        sources=tuple(p for p in (args.s1, args.s2) if p),
        calib=_optional_tuple(args.calib),
        heldout=_optional_tuple(args.heldout),
        calib_files=args.calib_files,
        audio_files=args.audio_files,
        heldout_files=args.heldout_files,
    )
    settings = NoiseSettings(
        out=Path(args.out),
        tile_w=args.tile_w or 256,
        target=noise_target(args.target_db, args.target_loss_db),
        calib_count=args.calib_count,
        clipping=args.clipping,
        ort_check=not args.no_ort_check,
        effects=not args.no_effects,
        scheme=Scheme(
            WeightGranularity(args.weight_granularity), not args.no_equalization, not args.no_bias_correction
        ),
    )
    return dispatch(
        commands.noise, Request(source=model_or_random(args), audio=audio, settings=settings, strict=args.strict)
    )


def noise_target(target_db: float | None, target_loss_db: float | None):
    """The target of ``--target-db`` / ``--target-loss-db``: both given, both kept (the loss decides
    where the judging audio has sources); ``--target-db`` alone, SI-SNR against float only; neither,
    the defaults (``noise_types.DEFAULT_TARGET_LOSS_DB``, else ``DEFAULT_TARGET_DB``)."""
    from ..quantization.noise_types import DEFAULT_TARGET_DB, DEFAULT_TARGET_LOSS_DB, Target

    if target_loss_db is None and target_db is not None:
        return Target(target_db, None)
    return Target(
        DEFAULT_TARGET_DB if target_db is None else target_db,
        DEFAULT_TARGET_LOSS_DB if target_loss_db is None else target_loss_db,
    )


def add_noise(sub, shared: Shared) -> None:
    noise = sub.add_parser(
        "noise",
        parents=[shared.random_model, tile_option(None)],
        help="quantization noise without the SDK: per-layer SQNR on the emulated device "
        "arithmetic, the layers that need 16 bits, model scripts, rescale checks",
    )
    noise.add_argument(
        "--audio",
        nargs="+",
        required=True,
        help="evaluation audio: files, folders of them, or LibriMix metadata CSVs (with sources)",
    )
    noise.add_argument("--s1", help="ground-truth source 1 of the (one) --audio file, for SI-SNRi")
    noise.add_argument("--s2", help="ground-truth source 2")
    noise.add_argument(
        "--calib",
        nargs="+",
        help="calibration audio: files, folders or LibriMix metadata CSVs "
        "(default: the shipped recordings; never the --audio/--heldout ones)",
    )
    noise.add_argument(
        "--calib-files",
        type=positive_int,
        default=CALIB_FILES,
        help=f"at most this many calibration recordings, drawn with a fixed seed (default {CALIB_FILES})",
    )
    noise.add_argument(
        "--heldout",
        nargs="+",
        help="audio that chooses the clipping and the 16-bit set (default: the --audio); files, "
        "folders or LibriMix CSVs, never used for calibration",
    )
    noise.add_argument("--heldout-files", type=positive_int, help="at most this many --heldout recordings")
    noise.add_argument("--audio-files", type=positive_int, help="at most this many --audio recordings")
    noise.add_argument(
        "--calib-count",
        type=positive_int,
        default=CALIB_COUNT,
        help=f"calibration tiles per stage input (default {CALIB_COUNT}, as compile and build: the DFC's own "
        "calibset_size default; compile with the same --calib-count for the device to match)",
    )
    noise.add_argument(
        "--target-loss-db",
        type=finite_float,
        help="the target: SI-SNRi at most this far below float on judging audio with sources (default 0.3, as build)",
    )
    noise.add_argument(
        "--target-db",
        type=finite_float,
        help="the target where the judging audio has no sources: final output SI-SNR against float (default 25: "
        "the same 0.3 dB loss for a float output of up to 13.5 dB SI-SNR); given alone, the only target",
    )
    noise.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when the target is missed or more than 20%% of the layers are advised 16-bit (by default "
        "a warning, exit 0)",
    )
    noise.add_argument(
        "--no-effects",
        action="store_true",
        help="skip re-running all-8 with each assumption flipped (the report's assumption_effects_all8)",
    )
    noise.add_argument(
        "--clipping",
        default="auto",
        help="activation ranges: auto (default: min/max, percentiles or headroom, whichever is best "
        "on the held-out audio), minmax, headroom:F or percentile:P",
    )
    noise.add_argument(
        "--no-ort-check",
        action="store_true",
        help="skip the cross-check against ONNX Runtime's static quantization of the same stages",
    )
    noise.add_argument(
        "--weight-granularity",
        choices=("per_layer", "per_channel"),
        default="per_layer",
        help="one weight scale per layer (default, as public material shows for Hailo-8) or per "
        "output channel (the report gives both figures)",
    )
    noise.add_argument(
        "--no-equalization",
        action="store_true",
        help="skip the emulated DFC equalization (the model scripts then disable it too)",
    )
    noise.add_argument(
        "--no-bias-correction",
        action="store_true",
        help="skip the emulated DFC bias correction (the model scripts then disable it too)",
    )
    noise.add_argument("--out", required=True, help="report folder")
    noise.set_defaults(func=cmd_noise)


def cmd_finetune(args: argparse.Namespace) -> int:
    from .. import commands
    from ..commands.finetune import Request
    from ..quantization.finetune import FinetuneSettings
    from .dispatch import dispatch

    settings = FinetuneSettings(
        data=tuple(args.data),
        out=Path(args.out),
        steps=args.steps,
        max_minutes=args.max_minutes,
        segment_seconds=args.segment_seconds,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        mix_pairs=args.mix_pairs,
        data_files=args.data_files,
        seed=args.seed,
        log_every=args.log_every,
        device=args.device,
    )
    return dispatch(commands.finetune, Request(source=model_or_random(args), settings=settings, resume=args.resume))


def add_finetune(sub, shared: Shared) -> None:
    finetune = sub.add_parser(
        "finetune",
        parents=[shared.random_model],
        help="quantization-aware fine-tuning (8-bit fake quantization, distilled from the "
        "float model): writes an Asteroid checkpoint and its calibration ranges",
    )
    finetune.add_argument(
        "--data",
        nargs="+",
        required=True,
        help="training audio: files, folders or LibriMix metadata CSVs (e.g. corpus/librispeech_8k/train)",
    )
    finetune.add_argument("--data-files", type=positive_int, help="at most this many recordings (seeded draw)")
    finetune.add_argument(
        "--mix-pairs",
        action="store_true",
        help="two-source models on single-speaker speech: each example sums two recordings",
    )
    finetune.add_argument("--steps", type=positive_int, default=300, help="optimizer steps (default 300)")
    finetune.add_argument(
        "--max-minutes", type=positive_float, default=10.0, help="stop (state saved) after this long (default 10)"
    )
    finetune.add_argument("--segment-seconds", type=positive_float, default=2.0, help="training segment (default 2)")
    finetune.add_argument("--batch-size", type=positive_int, default=4, help="segments per step (default 4)")
    finetune.add_argument("--lr", type=positive_float, default=1e-4, help="Adam learning rate (default 1e-4)")
    finetune.add_argument("--log-every", type=positive_int, default=10, help="progress every N steps (default 10)")
    finetune.add_argument("--device", default="cpu", help="torch device (default cpu; cuda where there is one)")
    add_resume_option(finetune, "its steps so far; another folder than --out is refused", out_is_the_run=True)
    finetune.add_argument("--out", required=True, help="output folder (finetuned.pth, calibration_ranges.json)")
    finetune.set_defaults(func=cmd_finetune)


def cmd_bench(args: argparse.Namespace) -> int:
    from .. import commands
    from ..commands.bench import Request
    from .dispatch import dispatch

    return dispatch(
        commands.bench, Request(spec=_bench_spec(args), out=optional_path(args.out), json_path=optional_path(args.json))
    )


def _bench_spec(args: argparse.Namespace):
    """``bench --stream``'s spec, else the offline one."""
    from ..bench.measure import BenchSpec
    from ..plan.cost_model import DeviceModel, parse_overrides

    if args.stream:
        return _stream_spec(args)
    # keywords are evaluated in order: impossible backend combinations are refused before the model is built
    return BenchSpec(
        backend=backend_options(args),
        source=model_or_random(args),
        seconds=args.seconds,
        tile_widths=tuple(args.tile_w or (256,)),
        repeats=args.repeats,
        device=DeviceModel(args.device, args.link, parse_overrides(args.device_param)),
        block_chan=args.block_chan,
        long_seconds=args.long_seconds,
    )


def _stream_spec(args: argparse.Namespace):
    """``bench --stream``'s spec; the offline paths' options are refused with it."""
    from ..bench.stream import StreamBenchSpec
    from ..errors import UserError
    from ..runtime.backend_setup import BackendOptions

    offline = [f"--{n.replace('_', '-')}" for n in ("tile_w", "block_chan", "long_seconds") if getattr(args, n)]
    if backend_options(args) != BackendOptions():
        offline.append("--backend and its options")
    if offline:
        raise UserError(
            f"--stream times the streaming plans on onnxruntime: drop {', '.join(offline)} (offline paths only)"
        )
    return StreamBenchSpec(
        source=model_or_random(args),
        hops_ms=tuple(args.stream),
        threads=tuple(args.threads or (1,)),
        plans=tuple(args.plans) if args.plans else None,
        seconds=args.seconds,
        repeats=args.repeats,
    )


def add_bench(sub, shared: Shared) -> None:
    bench = sub.add_parser(
        "bench",
        parents=[
            shared.device_model,
            shared.random_model,
            tile_option(None, many=True, many_default="256"),
            shared.backend,
        ],
        help="speed and memory of the torch reference, the monolithic ONNX and the stitched "
        "paths, side by side (table; --out DIR: bench.json and bench.png); --backend hailo_runtime "
        "(with --hef-dir) adds the device's path and its measured vs predicted device time",
    )
    bench.add_argument("--seconds", type=positive_float, default=10.0, help="seconds of audio (default 10)")
    bench.add_argument("--repeats", type=positive_int, default=3, help="timed runs per path (default 3)")
    bench.add_argument("--out", metavar="DIR", help="write the record (DIR/bench.json) and its figure (DIR/bench.png)")
    bench.add_argument(
        "--json", metavar="FILE", help="deprecated, use --out DIR: the record at FILE, the PNG beside it"
    )
    bench.add_argument(
        "--block-chan",
        type=positive_int,
        help="also time the plan with 1x1 convs split into blocks of this many channels",
    )
    bench.add_argument(
        "--long-seconds",
        type=positive_float,
        help="also run `separate`'s path once over this many seconds of audio (default segmenting) "
        "and report its peak memory, e.g. 600 for 10 minutes",
    )
    stream = bench.add_argument_group("streaming (--stream)")
    stream.add_argument(
        "--stream",
        nargs="+",
        type=positive_float,
        metavar="HOP_MS",
        help="time the streaming plans of a causal model hop by hop instead, at these hops (ms): host time per "
        "hop (p50/p95/max), RTF, MACs per hop and per second beside this machine's single-thread matmul rate "
        "(--out DIR: DIR/bench_stream.json)",
    )
    stream.add_argument(
        "--threads", nargs="+", type=positive_int, metavar="N", help="with --stream: onnxruntime threads (default 1)"
    )
    stream.add_argument(
        "--plans",
        nargs="+",
        choices=("stateful", "per-hop", "rf-windows"),
        help="with --stream: the plans to time (default: every plan the model allows)",
    )
    bench.set_defaults(func=cmd_bench)
