"""convtasnet-hailo: run Asteroid ConvTasNet speech separation exactly on Hailo-8 / Hailo-8L NPUs.

One function per command; heavy imports happen inside the command (fast --help).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import UserError

RANDOM_PRESETS = ("full-8k", "full-16k", "tiny")
PATHS = ("decoder", "masker", "full-chain")


def _random_config(preset: str):
    from .model.config import FULL_SIZE_8K, FULL_SIZE_16K, ConvTasNetConfig

    return {
        "full-8k": FULL_SIZE_8K,
        "full-16k": FULL_SIZE_16K,
        "tiny": ConvTasNetConfig(n_filters=32, bn_chan=16, hid_chan=24, skip_chan=16, n_blocks=3, n_repeats=2),
    }[preset]


def _model_source(args: argparse.Namespace):
    """The model a command works on: ``--model`` if given, else a seeded random one."""
    from .model.checkpoint import file_sha256, load_model
    from .model.random_init import random_model
    from .parity.runner import ModelSource

    if args.model:
        model, path = load_model(args.model)
        return ModelSource(model, f"checkpoint {args.model}", path=str(path), sha256=file_sha256(path))
    model = random_model(_random_config(args.random_preset), seed=args.seed)
    return ModelSource(model, f"random {args.random_preset} weights, seed {args.seed}", random_seed=args.seed)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be >= 1")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{value} must be > 0")
    return value


def _parity_cases(args: argparse.Namespace, path, config):
    from .hailo.plan import PlanPath
    from .parity.runner import ParityCase, default_cases, samples_for_frames

    tile_widths = args.tile_w or [64, 128, 256]
    if args.length and args.seconds:
        raise UserError("--length and --seconds both given: pass one of them")
    if not args.length and not args.seconds:
        return default_cases(path, config, tile_widths)
    if args.seconds:
        samples = [round(s * config.sample_rate) for s in args.seconds]
    elif path is PlanPath.FULL_CHAIN:
        samples = list(args.length)
    else:
        samples = [samples_for_frames(config, frames) for frames in args.length]
    for wav_t in samples:
        if wav_t < config.kernel_size:
            raise UserError(f"length of {wav_t} samples is shorter than one encoder window "
                            f"({config.kernel_size} samples): pass a longer --length/--seconds")
    return [ParityCase(path, tile_w, wav_t) for tile_w in tile_widths for wav_t in samples]


def _export_for_parity(plan, source, tile_widths, export_root: Path) -> None:
    """Exports the plan at every tile width (``export_root/tile<W>``) for the onnxruntime backend."""
    from .export.exporter import export_plan

    for tile_w in sorted(set(tile_widths)):
        result = export_plan(plan, tile_w, export_root / f"tile{tile_w}", source.to_json(), report=print)
        print(f"exported {len(result.manifest.stages)} stages at tile_w {tile_w} to {result.directory}")


def _run_parity(args: argparse.Namespace, path_name: str) -> int:
    from .backends import load_backend
    from .hailo.plan import PlanPath, build_plan
    from .parity.runner import SUMMARY_FILES, ReferencePrecision, run_parity
    from .runs.run_folder import new_run_dir

    path = PlanPath(path_name)
    if args.export_dir and args.backend != "onnxruntime":
        raise UserError(f"--export-dir is read by --backend onnxruntime, not {args.backend}: drop one of them")
    source = _model_source(args)
    cases = _parity_cases(args, path, source.model.config)
    plan = build_plan(source.model, path, block_chan=args.block_chan)
    out_dir = new_run_dir(Path(args.runs_dir))
    print(f"parity {path.value}: {len(cases)} case(s), backend {args.backend}, {len(plan.stages)} stages, "
          f"{source.description}")
    print(f"run folder: {out_dir}")
    options = {}
    if args.backend == "onnxruntime":
        options["export_dir"] = args.export_dir or out_dir / "onnx"
        if not args.export_dir:
            _export_for_parity(plan, source, [c.tile_w for c in cases], out_dir / "onnx")
    backend = load_backend(args.backend, **options)
    with backend:
        outcomes = run_parity(plan, source, backend, cases, out_dir, seed=args.seed,
                              precision=ReferencePrecision(args.reference))
    failed = [o.run_tag for o in outcomes if not o.success]
    worst = max((o.record["max_abs"] for o in outcomes), default=float("nan"))
    print(f"{len(outcomes) - len(failed)}/{len(outcomes)} case(s) all_close (tol {outcomes[0].record['tol']:g}); "
          f"largest stage max_abs {worst:.2e}; summary {out_dir / SUMMARY_FILES[path]}")
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def cmd_parity(args: argparse.Namespace) -> int:
    return _run_parity(args, args.path)


def cmd_demo(args: argparse.Namespace) -> int:
    """The main job on shipped defaults: full-chain parity of a full-size 8 kHz model."""
    args.path, args.model, args.random_preset, args.length = "full-chain", None, "full-8k", None
    args.tile_w = args.tile_w or [64, 128, 256]
    args.seconds = args.seconds or [10.0]
    return _run_parity(args, "full-chain")


def _check_limits(args: argparse.Namespace):
    from .export.hailo_rules import CheckLimits

    return CheckLimits(max_width=args.max_width or None, max_kernel=args.max_kernel,
                       max_dilation=args.max_dilation, max_channels=args.max_channels)


def _report_violations(violations, what: str) -> int:
    for violation in violations:
        print(violation)
    if violations:
        stages = len({v.stage for v in violations})
        print(f"{what}: {len(violations)} rule violation(s) in {stages} stage(s); the Hailo parser would reject them",
              file=sys.stderr)
        return 1
    print(f"{what}: every graph passes the Hailo parser rules")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .export.exporter import export_monolithic, export_plan
    from .hailo.plan import PlanPath, build_plan

    out = Path(args.out)
    source = _model_source(args)
    if args.monolithic:
        if args.length is None:
            raise UserError("--monolithic needs --length T (the fixed input length in samples)")
        if args.block_chan or args.tile_w:
            raise UserError("--monolithic exports the whole model: drop --tile-w/--block-chan")
        result = export_monolithic(source.model, args.length, out, source.to_json(), _check_limits(args))
        print(f"wrote {out / result.manifest.stages[0].file} (whole model at {args.length} samples)")
        return _report_violations(result.violations, "monolithic check")
    if args.length is not None:
        raise UserError("--length is for --monolithic; staged exports are length-independent")
    plan = build_plan(source.model, PlanPath(args.path), block_chan=args.block_chan)
    result = export_plan(plan, args.tile_w or 256, out, source.to_json(), _check_limits(args))
    print(f"{len(plan.stages)} stages at tile_w {result.manifest.tile_w} in {out}: {len(result.written)} written, "
          f"{len(result.reused)} unchanged and reused (same sha256)")
    return _report_violations(result.violations, "check")


def cmd_check(args: argparse.Namespace) -> int:
    from .export.graph_check import check_export

    return _report_violations(check_export(Path(args.export_dir), _check_limits(args)), f"check {args.export_dir}")


def cmd_doctor(args: argparse.Namespace) -> int:
    from .backends import BUILTIN_BACKENDS
    from .doctor import format_checks, run_checks

    checks = run_checks()
    print(format_checks(checks))
    by_name = {c.name: c.ok for c in checks}
    usable = {"torch_proxy": by_name.get("torch", False),
              "onnxruntime": by_name.get("onnxruntime", False) and by_name.get("onnx", False)}
    print("backends: " + ", ".join(
        f"{name} ({'usable' if usable.get(name) else 'unavailable'})" for name in sorted(BUILTIN_BACKENDS)))
    return 0


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="Asteroid checkpoint (.pth/.bin) or Hugging Face id owner/name; "
                                        "default: seeded random weights")
    parser.add_argument("--random-preset", choices=RANDOM_PRESETS, default="full-8k",
                        help="size of the random model used without --model (default full-8k)")
    parser.add_argument("--seed", type=int, default=0, help="seed of random weights and test audio")


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", default="torch_proxy", help="backend running the stages (default torch_proxy)")
    parser.add_argument("--tile-w", type=_positive_int, nargs="+", help="tile widths in latent frames (default 64 128 256)")
    parser.add_argument("--length", type=_positive_int, nargs="+",
                        help="input lengths: samples for full-chain, latent frames for decoder/masker "
                             "(default: edge lengths around each tile width)")
    parser.add_argument("--seconds", type=_positive_float, nargs="+", help="input lengths in seconds of audio")
    parser.add_argument("--runs-dir", default="module_runs", help="where run folders go (default ./module_runs)")
    parser.add_argument("--block-chan", type=_positive_int,
                        help="split 1x1 convs wider than this into channel blocks (the allocator workaround, e.g. 64)")
    parser.add_argument("--reference", choices=("float32", "float64"), default="float32",
                        help="compare with the model in float32 (default, as users run it) or float64 (exact math: "
                             "the path's own error without the float32 reference's rounding)")
    parser.add_argument("--export-dir", help="for --backend onnxruntime: an export folder (default: export into "
                                             "the run folder)")


def _add_limit_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-width", type=int, default=512,
                        help="widest conv output (default 512: widths that compiled in published runs; 0 = no limit)")
    parser.add_argument("--max-kernel", type=_positive_int, help="widest conv kernel (default: no limit, unconfirmed)")
    parser.add_argument("--max-dilation", type=_positive_int, help="largest dilation (default: no limit, unconfirmed)")
    parser.add_argument("--max-channels", type=_positive_int,
                        help="most channels of a 1x1 conv (default: no limit, unconfirmed)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="convtasnet-hailo", description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)

    parity = sub.add_parser("parity", help="stitched tiled execution vs the reference model, per stage")
    parity.add_argument("path", choices=PATHS, help="which part of the model to check")
    _add_model_options(parity)
    _add_run_options(parity)
    parity.set_defaults(func=cmd_parity)

    demo = sub.add_parser("demo", help="the main job on shipped defaults (full-chain parity, full-size model)")
    _add_run_options(demo)
    demo.set_defaults(func=cmd_demo, seed=0)

    export = sub.add_parser("export", help="one ONNX file per stage (static NCHW, H=1) + manifest.json, then check")
    _add_model_options(export)
    export.add_argument("--out", required=True, help="export folder")
    export.add_argument("--tile-w", type=_positive_int, help="tile width in latent frames (default 256)")
    export.add_argument("--path", choices=PATHS, default="full-chain", help="which part of the model (default full-chain)")
    export.add_argument("--block-chan", type=_positive_int, help="split 1x1 convs wider than this into channel blocks")
    export.add_argument("--monolithic", action="store_true", help="export the whole model at one length instead")
    export.add_argument("--length", type=_positive_int, help="input length in samples for --monolithic")
    _add_limit_options(export)
    export.set_defaults(func=cmd_export)

    check = sub.add_parser("check", help="check an export folder against the Hailo parser rules and its manifest")
    check.add_argument("export_dir", help="folder written by `convtasnet-hailo export`")
    _add_limit_options(check)
    check.set_defaults(func=cmd_check)

    doctor = sub.add_parser("doctor", help="which backends and toolchains are usable here, and how to get the rest")
    doctor.set_defaults(func=cmd_doctor)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"convtasnet-hailo {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"convtasnet-hailo {args.command}: interrupted; files already written are kept", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
