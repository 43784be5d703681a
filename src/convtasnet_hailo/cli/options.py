"""Arguments to plain values, and the option groups several commands share (argparse parent parsers,
each option declared once)."""

from __future__ import annotations

import argparse
import dataclasses

from ..plan.options import DEFAULT_TILE_W
from .folders import default as marked
from .values import non_negative_int, optional_path, override, positive_float, positive_int, seed_int

PATHS = ("decoder", "masker", "full-chain")


#: Mirrors ``model.source.RANDOM_PRESETS`` (kept literal so that --help imports no torch; a test
#: checks the two agree).
RANDOM_PRESET_NAMES = ("full-8k", "full-16k", "full-8k-causal", "tiny")


HAILO_CONTEXTS = ("native", "fp_optimized", "quantized")


def model_or_random(args: argparse.Namespace):
    """--model, else seeded random weights of --random-preset and --seed (refused when neither)."""
    return _resolve(args, "random", export_dir=None)


def trained_model(args: argparse.Namespace):
    """--model, else the model --export-dir recorded (no torch), else the shipped demo model."""
    return _resolve(args, "demo", export_dir=getattr(args, "export_dir", None))


def enhancement_model(args: argparse.Namespace):
    """--model, else the model --export-dir recorded; never a shipped model in its place."""
    return _resolve(args, "enhancement", export_dir=getattr(args, "export_dir", None))


def model_or_export(args: argparse.Namespace):
    """--model, else the model --export-dir recorded, else seeded random weights of
    --random-preset, else the shipped causal demo model (`stream`)."""
    return _resolve(args, "random" if args.random_preset else "causal_demo", export_dir=args.export_dir)


def _resolve(args: argparse.Namespace, default: str, export_dir: str | None):
    from ..runtime.sources import ModelChoice, ModelDefault, resolve

    return resolve(
        ModelChoice(
            model=args.model,
            export_dir=optional_path(export_dir),
            default=ModelDefault(default),
            preset=getattr(args, "random_preset", None),
            seed=getattr(args, "seed", 0),
        )
    )


def backend_options(args: argparse.Namespace):
    from ..runtime.backend_setup import BackendOptions

    return BackendOptions(
        args.backend,
        optional_path(args.export_dir),
        optional_path(args.hef_dir),
        args.context,
        args.io_format,
        args.batch_size,
        optional_path(args.noise_dir),
    )


def layout(args: argparse.Namespace):
    from ..plan.options import PlanOptions

    return PlanOptions(
        block_chan=args.block_chan,
        fuse=not args.no_fuse,
        device_norms=args.device_norms,
        gln_in_stages=args.gln_in_stages,
        halo_edges=args.halo_edges,
        skip_sums_in_stages=args.skip_sums_in_stages,
    )


def run_spec(args: argparse.Namespace, source, **fields):
    from ..runtime import RunSpec

    backend = backend_options(args)  # impossible combinations are refused before the model is built
    return RunSpec(source=source(args), options=layout(args), backend=backend, **fields)


class Parser(argparse.ArgumentParser):
    """argparse with its errors in the toolkit's one-line form (``prog: error: ...``, exit 2)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def parent_parser(parents: list[argparse.ArgumentParser] = ()) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(add_help=False, parents=list(parents))


def model_or_random_options() -> argparse.ArgumentParser:
    parser = parent_parser()
    parser.add_argument(
        "--model", help="Asteroid checkpoint (.pth/.bin) or Hugging Face id owner/name (or --random-preset)"
    )
    parser.add_argument(
        "--random-preset",
        choices=RANDOM_PRESET_NAMES,
        help="instead of --model: seeded random weights of this size, which separate nothing (structure, parity "
        "and compile tests)",
    )
    parser.add_argument("--seed", type=seed_int, default=0, help="seed of random weights and test audio")
    return parser


def trained_model_options() -> argparse.ArgumentParser:
    parser = parent_parser()
    parser.add_argument("--model", help="Asteroid checkpoint or hub id (default: the shipped demo model)")
    return parser


def runs_options() -> argparse.ArgumentParser:
    """``--out DIR`` for commands whose runs are auto-named: each run makes its own folder inside
    it (``DIR/<YYYYmmdd_HHMMSS>``). ``--runs-dir`` is the old name, kept as an alias."""
    parser = parent_parser()
    parser.add_argument(
        "--out",
        "--runs-dir",
        dest="runs_dir",
        default="module_runs",
        metavar="DIR",
        help="the folder each run makes its own auto-named folder in (default ./module_runs; "
        "--runs-dir is the old name)",
    )
    return parser


def add_resume_option(parser: argparse.ArgumentParser, what: str, out_is_the_run: bool = False) -> None:
    """The one ``--resume``: go on from the saved state of an interrupted run. Alone it takes the
    newest run in ``--out`` (or ``--out`` itself where that is the run folder, ``out_is_the_run``);
    ``--resume RUN_FOLDER`` names the run (``what`` says what is kept)."""
    alone = "the --out folder's run" if out_is_the_run else "the newest run in --out"
    parser.add_argument(
        "--resume",
        nargs="?",
        const=RESUME_LATEST,
        metavar="RUN_FOLDER",
        help=f"go on from an interrupted run ({what}): alone, {alone}; or the run folder given",
    )


#: A DFC worker never waited on without end (issue 39): stage compiles take minutes to an hour.
WORKER_TIMEOUT_S = 4 * 3600.0

#: ``--resume`` given without a folder.
RESUME_LATEST = "latest"


def block_options() -> argparse.ArgumentParser:
    parser = parent_parser()
    parser.add_argument(
        "--block-chan",
        type=positive_int,
        help="split 1x1 convs wider than this into channel blocks (the allocator workaround, e.g. 64)",
    )
    parser.add_argument(
        "--no-fuse",
        action="store_true",
        help="one stage per conv group instead of fusing runs of stages that no host step separates",
    )
    parser.add_argument(
        "--device-norms",
        action="store_true",
        help="cLN models: run the per-frame norms on the device inside the fused stages "
        "(Hailo layer_norm_decomposition; unconfirmed) instead of on the host",
    )
    parser.add_argument(
        "--gln-in-stages",
        action="store_true",
        help="gLN models, float backends (onnxruntime, torch_proxy): take gLN's statistics and "
        "affine inside the stages instead of on the host (faster on a CPU; refused by compile "
        "and the Hailo backends)",
    )
    parser.add_argument(
        "--halo-edges",
        action="store_true",
        help="float backends: stages with a halo read their tile plus the neighbours' edge frames and "
        "join them themselves, instead of host-cut windows (refused by compile and the Hailo "
        "backends)",
    )
    parser.add_argument(
        "--skip-sums-in-stages",
        action="store_true",
        help="float backends: each stage that makes a skip output also adds it to the running skip "
        "sum, instead of a host step (refused by compile and the Hailo backends)",
    )
    return parser


def tile_option(default: int | None, many: bool = False, many_default: str = "64 128 256") -> argparse.ArgumentParser:
    parser = parent_parser()
    if many:
        parser.add_argument(
            "--tile-w", type=positive_int, nargs="+", help=f"tile widths in latent frames (default {many_default})"
        )
    else:
        parser.add_argument(
            "--tile-w",
            type=positive_int,
            default=default if default is None else marked(default),
            help=f"tile width in latent frames (default {default or 256})",
        )
    return parser


def backend_options_parser() -> argparse.ArgumentParser:
    parser = parent_parser()
    parser.add_argument(
        "--backend",
        default=marked("torch_proxy"),
        help="backend running the stages (default torch_proxy; with --bundle: hailo_runtime where HailoRT "
        "imports, else onnxruntime)",
    )
    parser.add_argument(
        "--export-dir",
        help="an export folder: the stages --backend onnxruntime runs (default: "
        "export into the run or output folder first); without --model, also "
        "the plan and model the run takes, read without torch",
    )
    parser.add_argument(
        "--hef-dir",
        help="for hailo_runtime / hailo_emulator: the compiled stages (EXPORT/hailo/<hw_arch>, written by `compile`)",
    )
    parser.add_argument(
        "--context",
        default="quantized",
        choices=HAILO_CONTEXTS,
        help="hailo_emulator inference context (default quantized)",
    )
    parser.add_argument(
        "--io-format",
        default="float32",
        choices=("float32", "quantized"),
        help="hailo_runtime host<->device format (default float32)",
    )
    parser.add_argument("--batch-size", type=positive_int, default=8, help="hailo_runtime tiles per device call")
    parser.add_argument(
        "--noise-dir",
        help="the folder `noise --out DIR` wrote: what --backend hailo_quant runs "
        "(calibrated ranges, advised 16-bit layers); with hailo_runtime or "
        "hailo_emulator, parity also compares every stage with that emulation",
    )
    return parser


def executor_options_parser() -> argparse.ArgumentParser:
    from ..tasks.options import EXECUTORS

    parser = parent_parser()
    parser.add_argument(
        "--executor",
        default="local",
        choices=EXECUTORS,
        help="where cases run: local (this machine) or ray (a Ray cluster; the [ray] extra)",
    )
    parser.add_argument("--jobs", type=int, default=1, help="--executor local: cases run at once (default 1)")
    parser.add_argument(
        "--ray-address", help="--executor ray: the cluster's address (default: a cluster of this machine alone)"
    )
    parser.add_argument(
        "--max-retries",
        type=non_negative_int,
        default=2,
        help="--executor ray: retries of a case whose worker or node was lost (default 2)",
    )
    return parser


def add_timeout_option(parser: argparse.ArgumentParser) -> None:
    """``--timeout``: seconds a compile worker gets per case (compile, compile-grid and build alike)."""
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=WORKER_TIMEOUT_S,
        help=f"seconds per case before a worker counts as Timeout (worker mode; default {WORKER_TIMEOUT_S:g}: "
        "a stage the DFC has not compiled in 4 hours is stuck, not slow)",
    )


def compile_options() -> argparse.ArgumentParser:
    from ..dfc.driver import HW_ARCHS

    parser = parent_parser(parents=[executor_options_parser()])
    parser.add_argument("--hw-arch", default="hailo8", choices=HW_ARCHS, help="target (default hailo8)")
    parser.add_argument(
        "--calib",
        nargs="+",
        help="audio for calibration tiles: files, folders of them or LibriMix metadata CSVs, as noise --calib "
        "takes (default: the shipped demo mixture)",
    )
    parser.add_argument("--calib-count", type=positive_int, default=64, help="calibration tiles per input (default 64)")
    parser.add_argument("--hailo-python", help="the Python of a venv with hailo_sdk_client (runs a worker there)")
    add_timeout_option(parser)
    parser.add_argument(
        "--dry-run", action="store_true", help="write cases, model scripts and calibration data; compile nothing"
    )
    return parser


def file_output_options() -> argparse.ArgumentParser:
    from ..separation.segments import SEGMENT_AUTO_SECONDS, SEGMENT_SECONDS

    parser = parent_parser()
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--subtype",
        default="PCM_16",
        choices=("PCM_16", "PCM_24", "FLOAT"),
        help="output sample format (FLOAT keeps exact values; default PCM_16; PCM outputs that "
        "would clip are scaled down, never clipped)",
    )
    parser.add_argument(
        "--segment",
        default="auto",
        help=f"auto (segments of {SEGMENT_SECONDS:g} s above {SEGMENT_AUTO_SECONDS:g} s), off, or seconds",
    )
    parser.add_argument("--overlap", type=positive_float, default=2.0, help="segment overlap in seconds (default 2)")
    return parser


def packing_options() -> argparse.ArgumentParser:
    from ..dfc.driver import HW_ARCHS
    from ..plan.packing import EXECUTION_MODES

    parser = parent_parser()
    parser.add_argument(
        "--execution-mode",
        choices=EXECUTION_MODES,
        help="how HailoRT will run the stages: scheduled_groups (one network group per stage under "
        "the scheduler; the default, the only one on hailo10h) or activated_packs (stages "
        "joined into single-context packs, activated one at a time; default when "
        "--networks-per-group > 1)",
    )
    parser.add_argument(
        "--networks-per-group",
        type=positive_int,
        help="activated_packs: stages joined as networks of one network group (one HEF) (default 8, HailoRT's limit)",
    )
    parser.add_argument(
        "--hw-arch",
        default="hailo8",
        choices=HW_ARCHS,
        help="the target whose runtime limits the packing follows (default hailo8; hailo10h: "
        "HailoRT 5, 26 network groups per device)",
    )
    return parser


STREAM_PLANS = ("auto", "per-hop", "rf-windows", "stateful")  # mirrors runtime.stream_choice.PLAN_KINDS


def stream_plan_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--plan",
        choices=STREAM_PLANS,
        default=marked("auto"),
        help="streaming plan: per-hop (a call per stage, the host keeps each conv's past), rf-windows "
        "(causal cLN models: one call per receptive-field span, context recomputed on the "
        "device), stateful (CPU backends: one onnxruntime call per hop, the history as tensors; "
        "`export --stateful`), or auto (default: stateful on the CPU backends torch_proxy and "
        "onnxruntime where the model or export has it, else the cheapest by the device cost model)",
    )
    parser.add_argument(
        "--max-width", type=positive_int, default=512, help="widest window a span may take, in frames (default 512)"
    )


def link_option() -> argparse.ArgumentParser:
    """``--link``: the PCIe link the device cost model prices (``plan.cost_model.DEFAULT_LINK``, whose
    source the JSON states; kept literal here so that --help imports nothing heavy)."""
    parser = parent_parser()
    parser.add_argument(
        "--link",
        choices=("gen2", "gen3"),
        default="gen3",
        help="the Pi 5's PCIe x1 link the device cost model prices: gen3 (default: the Raspberry Pi AI HAT+ "
        "is detected at Gen 3 automatically; hailo-rpi5-examples doc/install-raspberry-pi5.md, "
        "docs/hailo_facts.md) or gen2 (the M.2 HAT unless set to Gen 3 by hand)",
    )
    return parser


def device_model_options() -> argparse.ArgumentParser:
    parser = parent_parser(parents=[link_option()])
    parser.add_argument(
        "--device", default="hailo8l", help="device the cost model predicts: hailo8l (default) or hailo8"
    )
    parser.add_argument(
        "--device-param",
        action="append",
        type=override,
        help="override a cost-model parameter, NAME=VALUE (repeatable; names and sources in the JSON)",
    )
    return parser


def limit_options() -> argparse.ArgumentParser:
    parser = parent_parser()
    parser.add_argument(
        "--max-width",
        type=non_negative_int,
        default=512,
        help="widest conv output (default 512: widths that compiled in published runs; 0 = no limit)",
    )
    parser.add_argument("--max-kernel", type=positive_int, help="widest conv kernel (default: no limit, unconfirmed)")
    parser.add_argument("--max-dilation", type=positive_int, help="largest dilation (default: no limit, unconfirmed)")
    parser.add_argument(
        "--max-channels", type=positive_int, help="most channels of a 1x1 conv (default: no limit, unconfirmed)"
    )
    return parser


@dataclasses.dataclass(frozen=True)
class Shared:
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


def shared_parsers() -> Shared:
    return Shared(
        model_or_random_options(),
        trained_model_options(),
        runs_options(),
        block_options(),
        backend_options_parser(),
        tile_option(DEFAULT_TILE_W),
        file_output_options(),
        compile_options(),
        device_model_options(),
    )


def executor_options(args: argparse.Namespace):
    from ..tasks.options import ExecutorOptions

    return ExecutorOptions(args.executor, args.jobs, args.ray_address, args.max_retries)
