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


def _audio_model(args: argparse.Namespace):
    """``--model`` or the shipped demo model (audio commands need trained weights)."""
    from .assets import DEMO_MODEL
    from .model.checkpoint import file_sha256, load_model
    from .parity.runner import ModelSource

    spec = args.model or str(DEMO_MODEL)
    if not args.model and not DEMO_MODEL.is_file():
        raise UserError(f"the demo model {DEMO_MODEL} is missing from this install; pass --model PATH_OR_ID")
    model, path = load_model(spec)
    return ModelSource(model, f"checkpoint {spec}", path=str(path), sha256=file_sha256(path))


def _separator(args: argparse.Namespace, source, scratch: Path):
    """The stitched separator for ``--backend`` (onnxruntime exports into ``scratch`` unless
    ``--export-dir`` is given)."""
    from .backends import load_backend
    from .separation.separator import StitchedSeparator

    if args.export_dir and args.backend != "onnxruntime":
        raise UserError(f"--export-dir is read by --backend onnxruntime, not {args.backend}: drop one of them")
    options = _hailo_options(args)
    if args.backend == "onnxruntime":
        from .hailo.plan import PlanPath, build_plan

        if not args.export_dir:
            plan = build_plan(source.model, PlanPath.FULL_CHAIN, block_chan=args.block_chan)
            _export_for_parity(plan, source, [args.tile_w], scratch)
        options["export_dir"] = args.export_dir or scratch
    backend = load_backend(args.backend, **options)
    return StitchedSeparator(source.model, backend, args.tile_w, args.block_chan)


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


HAILO_BACKENDS = ("hailo_runtime", "hailo_emulator")


def _hailo_options(args: argparse.Namespace) -> dict:
    """Backend options for the Hailo backends; --hef-dir with any other backend is an error."""
    hef_dir = getattr(args, "hef_dir", None)
    if args.backend not in HAILO_BACKENDS:
        if hef_dir:
            raise UserError(f"--hef-dir is read by --backend hailo_runtime or hailo_emulator, not {args.backend}")
        return {}
    if args.backend == "hailo_runtime":
        return {"hef_dir": hef_dir, "io_format": args.io_format, "batch_size": args.batch_size}
    return {"hef_dir": hef_dir, "context": args.context}


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
    options = _hailo_options(args)
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
    """The main job on shipped defaults: separate the shipped real two-speaker mixture with the
    shipped demo model through the stitched path, check parity, report SI-SNRi."""
    from .assets import DEMO_MIXTURE, DEMO_SOURCES

    args.mix, (args.s1, args.s2), args.model = str(DEMO_MIXTURE), map(str, DEMO_SOURCES), None
    print(f"demo: separating {DEMO_MIXTURE.name} (two real speakers) with the shipped demo model, "
          f"backend {args.backend}, tile_w {args.tile_w}")
    return cmd_forward(args)


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


def cmd_separate(args: argparse.Namespace) -> int:
    from .separation.segments import SegmentPolicy
    from .separation.workflows import separate_files

    policy = SegmentPolicy(args.segment, args.overlap)
    source = _audio_model(args)
    out = Path(args.out)
    separator = _separator(args, source, out / "onnx")
    run_info = {"backend": args.backend, "tile_w": args.tile_w, "block_chan": args.block_chan, **source.to_json()}
    separate_files(separator, args.mixtures, out, policy, args.subtype, run_info)
    return 0


def cmd_forward(args: argparse.Namespace) -> int:
    from .audio.librimix import sources_beside
    from .runs.run_folder import new_run_dir
    from .separation.workflows import forward_run, forward_summary
    from .tolerances import ATOL

    source = _audio_model(args)
    given = [p for p in (args.s1, args.s2) if p]
    if len(given) == 1:
        raise UserError("pass both --s1 and --s2, or neither")
    source_paths = given or sources_beside(args.mix, source.model.config.n_src)
    run_dir = new_run_dir(Path(args.runs_dir))
    separator = _separator(args, source, run_dir / "onnx")
    run_info = {"backend": args.backend, "tile_w": args.tile_w, "block_chan": args.block_chan, **source.to_json()}
    metrics = forward_run(separator, Path(args.mix), source_paths, run_dir, run_info)
    print(forward_summary(metrics))
    print(f"run folder: {run_dir}")
    return 0 if metrics["parity_max_abs_vs_reference"] <= ATOL else 1


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .audio.librimix import read_metadata
    from .runs.run_folder import new_run_dir
    from .separation.workflows import evaluate_entries

    entries = read_metadata(args.metadata)[: args.limit]
    source = _audio_model(args)
    run_dir = new_run_dir(Path(args.runs_dir))
    separator = _separator(args, source, run_dir / "onnx")
    run_info = {"metadata": str(args.metadata), "backend": args.backend, "tile_w": args.tile_w, **source.to_json()}
    summary = evaluate_entries(separator, entries, run_dir, run_info)
    print(f"{summary['n_mixtures']} mixtures: SI-SNRi mean {summary['si_snri_db']['mean']:.2f} dB, median "
          f"{summary['si_snri_db']['median']:.2f} dB; parity max_abs {summary['parity_max_abs']:.1e}; {run_dir}")
    return 0 if summary["parity_all_ok"] else 1


def _compile_mode(args: argparse.Namespace):
    from .compile.orchestrate import exec_mode

    if args.jobs < 1:
        raise UserError(f"--jobs {args.jobs} must be >= 1")
    return exec_mode(args.dry_run, args.hailo_python, args.jobs)


def cmd_compile(args: argparse.Namespace) -> int:
    from .compile.model_script import ScriptVariant
    from .compile.orchestrate import run_compile

    mode = _compile_mode(args)  # a missing SDK is reported before any work
    variant = ScriptVariant(args.variant_name, tuple(args.script_line or ()))
    outcome = run_compile(Path(args.export_dir), args.hw_arch, args.model, args.calib, args.calib_count, variant, mode,
                          args.hailo_python, args.jobs, args.timeout)
    rows = outcome["rows"]
    failed = [r["run_tag"] for r in rows if r["status"] == "failed"]
    print(f"{len(rows)} stage(s) {mode.value}: {sum(r['status'] in ('compiled', 'reused') for r in rows)} HEF(s), "
          f"{len(failed)} failed; {outcome['out_dir'] / 'compile_summary.tsv'}")
    return 1 if failed else 0


def cmd_grid(args: argparse.Namespace) -> int:
    from .compile.grid import load_profile
    from .compile.orchestrate import calibration_audio, run_grid
    from .runs.run_folder import new_run_dir

    mode = _compile_mode(args)
    profile = load_profile(args.path, args.profile, Path(args.grid) if args.grid else None)
    if args.resume:
        run_dir = Path(args.resume)
        if not run_dir.is_dir():
            raise UserError(f"--resume {run_dir} is not a run folder")
    source = _model_source(args)
    audio = calibration_audio(args.calib, source.model.config.sample_rate)
    run_dir = Path(args.resume) if args.resume else new_run_dir(Path(args.runs_dir))
    print(f"grid {args.path} --profile {args.profile} ({mode.value}), {source.description}; run folder {run_dir}")
    outcome = run_grid(source, profile, args.hw_arch, run_dir, audio, args.calib_count, mode, args.hailo_python,
                       args.jobs, args.timeout)
    covering = outcome["covering"]
    print(f"{outcome['n_cases']} case(s); summary {outcome['summary']}; report {run_dir / 'grid_report.tsv'}; "
          + (f"covering: tile_w {covering['tile_w']} block_chan {covering['block_chan']}" if covering
             else "no configuration passes every stage yet"))
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from .backends import BUILTIN_BACKENDS
    from .doctor import format_checks, run_checks

    checks = run_checks()
    print(format_checks(checks))
    by_name = {c.name: c.ok for c in checks}
    usable = {"torch_proxy": by_name.get("torch", False),
              "onnxruntime": by_name.get("onnxruntime", False) and by_name.get("onnx", False),
              "hailo_runtime": by_name.get("HailoRT (hailo_platform)", False) and by_name.get("Hailo device", False),
              "hailo_emulator": by_name.get("Hailo Dataflow Compiler", False)}
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
    _add_hailo_backend_options(parser)
    parser.add_argument("--reference", choices=("float32", "float64"), default="float32",
                        help="compare with the model in float32 (default, as users run it) or float64 (exact math: "
                             "the path's own error without the float32 reference's rounding)")
    parser.add_argument("--export-dir", help="for --backend onnxruntime: an export folder (default: export into "
                                             "the run folder)")


def _add_audio_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="Asteroid checkpoint or hub id (default: the shipped demo model)")
    parser.add_argument("--backend", default="torch_proxy", help="backend running the stages (default torch_proxy)")
    parser.add_argument("--tile-w", type=_positive_int, default=128, help="tile width in latent frames (default 128)")
    parser.add_argument("--block-chan", type=_positive_int, help="split 1x1 convs wider than this into channel blocks")
    parser.add_argument("--export-dir", help="for --backend onnxruntime: an export folder (default: export first)")
    _add_hailo_backend_options(parser)


def _add_hailo_backend_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hef-dir", help="for hailo_runtime / hailo_emulator: the compiled stages "
                                          "(EXPORT/hailo/<hw_arch>, written by `compile`)")
    parser.add_argument("--context", default="quantized", choices=("native", "fp_optimized", "quantized"),
                        help="hailo_emulator inference context (default quantized)")
    parser.add_argument("--io-format", default="float32", choices=("float32", "quantized"),
                        help="hailo_runtime host<->device format (default float32)")
    parser.add_argument("--batch-size", type=_positive_int, default=8, help="hailo_runtime tiles per device call")


def _add_compile_options(parser: argparse.ArgumentParser) -> None:
    from .compile.driver import HW_ARCHS

    parser.add_argument("--hw-arch", default="hailo8", choices=HW_ARCHS, help="target (default hailo8)")
    parser.add_argument("--calib", nargs="+", help="audio for calibration tiles (default: the shipped demo mixture)")
    parser.add_argument("--calib-count", type=_positive_int, default=64, help="calibration tiles per input (default 64)")
    parser.add_argument("--hailo-python", help="the Python of a venv with hailo_sdk_client (runs a worker there)")
    parser.add_argument("--jobs", type=int, default=1, help="cases compiled in parallel processes (default 1)")
    parser.add_argument("--timeout", type=_positive_float, help="seconds per case before it counts as Timeout "
                                                                "(worker mode)")
    parser.add_argument("--dry-run", action="store_true",
                        help="write cases, model scripts and calibration data; compile nothing")


def _add_limit_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-width", type=int, default=512,
                        help="widest conv output (default 512: widths that compiled in published runs; 0 = no limit)")
    parser.add_argument("--max-kernel", type=_positive_int, help="widest conv kernel (default: no limit, unconfirmed)")
    parser.add_argument("--max-dilation", type=_positive_int, help="largest dilation (default: no limit, unconfirmed)")
    parser.add_argument("--max-channels", type=_positive_int,
                        help="most channels of a 1x1 conv (default: no limit, unconfirmed)")


def build_parser() -> argparse.ArgumentParser:
    from .separation.segments import SEGMENT_AUTO_SECONDS, SEGMENT_SECONDS

    parser = argparse.ArgumentParser(prog="convtasnet-hailo", description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)

    parity = sub.add_parser("parity", help="stitched tiled execution vs the reference model, per stage")
    parity.add_argument("path", choices=PATHS, help="which part of the model to check")
    _add_model_options(parity)
    _add_run_options(parity)
    parity.set_defaults(func=cmd_parity)

    separate = sub.add_parser("separate", help="separate mixtures into one WAV per source through the stitched path")
    separate.add_argument("mixtures", nargs="+", help="mixture files (WAV/FLAC; stereo is downmixed, other rates resampled)")
    separate.add_argument("--out", required=True, help="output folder")
    separate.add_argument("--subtype", default="PCM_16", choices=("PCM_16", "PCM_24", "FLOAT"),
                          help="output sample format (FLOAT keeps exact values; default PCM_16)")
    separate.add_argument("--segment", default="auto",
                          help=f"auto (segments of {SEGMENT_SECONDS:g} s above {SEGMENT_AUTO_SECONDS:g} s), off, or seconds")  # noqa
    separate.add_argument("--overlap", type=_positive_float, default=2.0, help="segment overlap in seconds (default 2)")
    _add_audio_options(separate)
    separate.set_defaults(func=cmd_separate)

    forward = sub.add_parser("forward", help="runbook step 6: reference vs stitched on a mixture, parity and SI-SNR")
    forward.add_argument("--mix", required=True, help="mixture WAV (inside a LibriMix tree its s1/s2 are found)")
    forward.add_argument("--s1", help="ground-truth source 1")
    forward.add_argument("--s2", help="ground-truth source 2")
    _add_audio_options(forward)
    forward.add_argument("--runs-dir", default="module_runs", help="where run folders go (default ./module_runs)")
    forward.set_defaults(func=cmd_forward)

    evaluate = sub.add_parser("evaluate", help="SI-SNR/SI-SNRi and parity over a LibriMix-format metadata CSV")
    evaluate.add_argument("--metadata", required=True, help="mixture_<subset>_<mix_type>.csv")
    evaluate.add_argument("--limit", type=_positive_int, help="first N mixtures only")
    _add_audio_options(evaluate)
    evaluate.add_argument("--runs-dir", default="module_runs", help="where run folders go (default ./module_runs)")
    evaluate.set_defaults(func=cmd_evaluate)

    demo = sub.add_parser("demo", help="the main job: separate the shipped real mixture with the shipped model")
    demo.add_argument("--backend", default="torch_proxy", help="backend running the stages (default torch_proxy)")
    demo.add_argument("--tile-w", type=_positive_int, default=128, help="tile width in latent frames (default 128)")
    demo.add_argument("--runs-dir", default="module_runs", help="where run folders go (default ./module_runs)")
    demo.set_defaults(func=cmd_demo, block_chan=None, export_dir=None, hef_dir=None, io_format="float32",
                      batch_size=8, context="quantized")

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

    compile_ = sub.add_parser("compile", help="compile an export's stages to HAR and HEF (Hailo Dataflow Compiler)")
    compile_.add_argument("--export-dir", required=True, help="folder written by `convtasnet-hailo export`")
    compile_.add_argument("--model", help="the checkpoint the export came from (default: as the manifest records)")
    compile_.add_argument("--variant-name", default="default", help="name of the model script (default 'default')")
    compile_.add_argument("--script-line", action="append",
                          help="a model-script line, e.g. 'allocator_param(timeout=25m)' (repeatable)")
    _add_compile_options(compile_)
    compile_.set_defaults(func=cmd_compile)

    grid = sub.add_parser("grid", help="allocator / block grid: compile every case of a grid profile")
    grid.add_argument("path", choices=("decoder", "masker"), help="which path's stages")
    grid.add_argument("--profile", default="quick", help="profile in the grid file (quick, full)")
    grid.add_argument("--grid", help="your own grid TOML (default: the package's grids/default.toml)")
    grid.add_argument("--resume", help="a run folder of an interrupted grid: finished cases are skipped")
    grid.add_argument("--runs-dir", default="module_runs", help="where run folders go (default ./module_runs)")
    _add_model_options(grid)
    _add_compile_options(grid)
    grid.set_defaults(func=cmd_grid)

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
