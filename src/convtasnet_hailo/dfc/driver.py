"""The Dataflow Compiler driver: one stage's ONNX -> HAR (parse) -> quantized HAR -> HEF.

Written against the documented ``hailo_sdk_client`` surface (docs/hailo_facts.md, "Compiler API"):
``ClientRunner(hw_arch=...)``, ``translate_onnx_model(path, net_name, start_node_names,
end_node_names, net_input_shapes)``, ``save_har``, ``load_model_script``, ``optimize(calib)``,
``compile()``, ``get_hn_dict()``. Imported lazily; no torch, no onnxruntime.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import io
import json
import logging
import re
import time
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..files import write_bytes_atomically, write_text_atomically
from ..hailo.layout import dfc_net_name, input_layer_feed
from .failures import Failure, from_exception

SDK_MODULE = "hailo_sdk_client"
#: Targets seen in the DFC's SUPPORTED_HW_ARCHS (docs/hailo_facts.md, "Compiler API": DFC 3.29).
HW_ARCHS = ("hailo8", "hailo8r", "hailo8l", "hailo15h", "hailo15m", "hailo15l", "hailo10h")
SDK_MISSING = (
    "the Hailo Dataflow Compiler (hailo_sdk_client) is not importable in this Python. Install its "
    "wheel from https://hailo.ai/developer-zone/ into a Python 3.10, 3.11 or 3.12 venv and pass "
    "--hailo-python /path/to/venv/bin/python, or use --dry-run to write the cases, model scripts "
    "and calibration data to take to a machine that has it"
)


def import_sdk():
    """The ``hailo_sdk_client`` module, or UserError saying how to get it."""
    try:
        return importlib.import_module(SDK_MODULE)
    except ImportError:
        raise UserError(SDK_MISSING) from None
    except Exception as exc:  # a broken install raises anything at import (a binding, a missing library)
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
        raise UserError(
            f"the Hailo Dataflow Compiler ({SDK_MODULE}) is installed but fails at import "
            f"({type(exc).__name__}: {first}); repair or reinstall its wheel, or pass --hailo-python "
            "with the Python of a venv where it imports"
        ) from None


def sdk_version(sdk) -> str:
    return str(getattr(sdk, "__version__", "unknown"))


#: Targets by DFC major version (docs/hailo_facts.md, "Versions"): 3.x for Hailo-8/8R/8L (3.32+ dropped
#: Hailo-10H and Hailo-15), 5.x for Hailo-10H/15.
DFC_TARGETS = {"3": ("hailo8", "hailo8r", "hailo8l"), "5": ("hailo10h", "hailo15h", "hailo15m", "hailo15l")}


def check_target(sdk, hw_arch: str) -> None:
    """Refuses, once and before any work, a target this DFC's major version does not compile."""
    version = sdk_version(sdk)
    targets = DFC_TARGETS.get(version.split(".")[0])
    if targets is not None and hw_arch not in targets:
        wanted = next((major for major, archs in DFC_TARGETS.items() if hw_arch in archs), "?")
        raise UserError(
            f"--hw-arch {hw_arch} needs the Dataflow Compiler {wanted}.x; this one is {version}, which "
            f"targets {', '.join(targets)} (install the DFC {wanted}.x wheel from "
            "https://hailo.ai/developer-zone/ in its own venv and pass --hailo-python)"
        )


@dataclasses.dataclass(frozen=True)
class CompileJob:
    """Everything one stage compile needs; JSON-serializable (the worker protocol)."""

    stage: str
    onnx_path: str
    input_names: tuple[str, ...]
    input_shapes: tuple[tuple[int, ...], ...]  # NCHW, as in the ONNX file
    end_node_names: tuple[str, ...]
    hw_arch: str
    script_text: str
    out_dir: str
    run_tag: str
    calib_paths: tuple[str, ...] = ()  # one .npy per input, NHWC float32, same order as input_names
    compile_hef: bool = True  # False: stop at the optimized HAR (a pack joins it into its HEF)

    @property
    def net_name(self) -> str:
        return dfc_net_name(self.stage)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CompileJob:
        data = dict(data)
        for key in ("input_names", "end_node_names", "calib_paths"):
            data[key] = tuple(data.get(key, ()))
        data["input_shapes"] = tuple(tuple(s) for s in data["input_shapes"])
        return cls(**data)


@dataclasses.dataclass
class CompileResult:
    run_tag: str
    stage: str
    har_success: bool = False
    hef_success: bool = False
    exception_type: str = ""
    failure_head: str = ""
    signature: str = ""
    har_path: str = ""
    hef_path: str = ""
    wants_hef: bool = True  # False for a stage whose HEF is its pack's
    log: str = ""
    hef_log: str = ""
    failure_file: str = ""
    seconds_parse: float = 0.0
    seconds_optimize: float = 0.0
    seconds_compile: float = 0.0
    sdk_version: str = ""
    #: the HEF's network group is multi-context (HailoRT's ``is_multi_context``); None: not known
    #: where it was compiled (HailoRT not importable there; hailo_runtime reads it at run time)
    multi_context: bool | None = None

    def record_failure(self, failure: Failure, out_dir: Path) -> None:
        self.exception_type, self.failure_head, self.signature = (
            failure.exception_type,
            failure.failure_head,
            failure.signature,
        )
        path = out_dir / f"{self.run_tag}_compile_failure.txt"
        path.write_text(
            f"exception_type: {failure.exception_type}\nfailure_head: {failure.failure_head}\n"
            f"signature: {failure.signature}\n"
        )
        self.failure_file = str(path)

    @property
    def ok(self) -> bool:
        """Made what was asked: the HEF, or only the optimized HAR for a stage of a pack."""
        return self.hef_success if self.wants_hef else self.har_success

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class PackJob:
    """One HEF of several stages: their optimized HARs joined (``ClientRunner.join``, docs/hailo_facts.md
    "Compiler API") into one network group of one network per stage, then compiled."""

    pack: str
    har_paths: tuple[str, ...]  # one optimized HAR per stage, in the pack's stage order
    stages: tuple[str, ...]
    hw_arch: str
    out_dir: str
    run_tag: str
    kind: str = "pack"
    #: the joint model script loaded after the join, before ``compile()`` (model_script.joint_script)
    script_text: str = ""

    @property
    def stage(self) -> str:  # the worker protocol names every job by its ``stage``
        return self.pack

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PackJob:
        data = dict(data)
        for key in ("har_paths", "stages"):
            data[key] = tuple(data[key])
        return cls(**data)


def job_from_json(data: dict[str, Any]) -> CompileJob | PackJob:
    return PackJob.from_json(data) if data.get("kind") == "pack" else CompileJob.from_json(data)


@contextlib.contextmanager
def _captured(log_path: Path):
    """Sends the SDK's logging and prints of one phase to ``log_path``."""
    handler = logging.FileHandler(log_path, mode="a")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    stream = io.StringIO()
    try:
        with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
            yield
    finally:
        root.removeHandler(handler)
        handler.close()
        with open(log_path, "a") as handle:
            handle.write(stream.getvalue())


def _calibration_feed(runner, job: CompileJob):
    """Calibration arrays keyed as the parsed net names its inputs (``layout.input_layer_feed``)."""
    from ..records import load_array

    arrays = [load_array(Path(path), "calibration array", "compile again") for path in job.calib_paths]
    return input_layer_feed(runner.get_hn_dict() if len(arrays) > 1 else {}, job.net_name, job.input_names, arrays)


#: The layer arguments `noise` writes with ONNX node names: ``quantization_param(<node>, ...)`` /
#: ``quantization_param([<node>, ...], ...)`` and ``activation_clipping, layers=[<node>, ...]``.
_LAYER_PARAM = re.compile(r"^(\s*quantization_param\(\s*)(\[[^\]]*\]|[^,\s)\[{]+)(.*)$")
_CLIP_LAYERS = re.compile(
    r"^(\s*pre_quantization_optimization\(\s*activation_clipping\s*,\s*layers\s*=\s*)"
    r"(\[[^\]]*\])(.*)$"
)


def _layers_holding(argument: str, owner: dict[str, str], layers: dict, net_name: str) -> str:
    """``argument`` (one name or a ``[...]`` list) with every ONNX node replaced by the parsed
    layer holding it (qualified ``<net>/<layer>``), each layer once, in the same form."""
    listed = argument.startswith("[")
    names = [n.strip() for n in argument.strip("[]").split(",") if n.strip()] if listed else [argument]
    resolved = []
    for node in names:
        if "/" not in node or node in layers:
            resolved.append(node)
            continue
        if node not in owner:
            raise ValueError(f"model script names ONNX node {node}, which no parsed layer of {net_name} holds")
        resolved.append(owner[node] if "/" in owner[node] else f"{net_name}/{owner[node]}")
    resolved = list(dict.fromkeys(resolved))
    return "[" + ", ".join(resolved) + "]" if listed else resolved[0]


def resolve_layer_names(script_text: str, hn: dict, net_name: str) -> str:
    """The layer arguments of ``quantization_param`` and ``activation_clipping`` lines (from
    `noise`, which names ONNX nodes) rewritten with the parsed layers that hold those nodes (the
    HN layer whose ``original_names`` list it; unconfirmed field name, the one ``input_layer_feed``
    uses); other lines unchanged. A node no layer holds is an error naming it. Several nodes in one
    layer (a conv and its activation) give that layer once; a line that comes out twice is kept once."""
    layers = hn.get("layers", {})
    owner = {original: name for name, layer in layers.items() for original in layer.get("original_names") or []}
    lines, seen = [], set()
    for line in script_text.splitlines():
        match = _LAYER_PARAM.match(line) or _CLIP_LAYERS.match(line)
        if match:
            line = f"{match.group(1)}{_layers_holding(match.group(2), owner, layers, net_name)}{match.group(3)}"
            if line in seen:
                continue
            seen.add(line)
        lines.append(line)
    return "\n".join(lines) + ("\n" if script_text.endswith("\n") else "")


def hef_multi_context(hef_path: Path) -> bool | None:
    """Whether the HEF's network group is multi-context, read with HailoRT's own HEF reader
    (``HEF(path).get_network_groups_infos()[i].is_multi_context``, docs/hailo_facts.md, "Runtime
    limits"); None when HailoRT is not importable in this Python, or when this HailoRT cannot read
    the HEF (one older than the DFC, or of the other family: compile.versions), which is logged."""
    try:
        from hailo_platform import HEF  # type: ignore[import-not-found]
    except Exception:  # absent, or a broken binding: the fact stays unknown, never guessed
        return None
    try:
        handle = HEF(str(hef_path))
    except Exception as exc:  # HailoRTException, e.g. status 92 HAILO_HEF_NOT_SUPPORTED
        logging.getLogger(__name__).warning(
            "the HailoRT here cannot read %s (%s: %s); its context count stays unknown",
            Path(hef_path).name,
            type(exc).__name__,
            exc,
        )
        return None
    return any(info.is_multi_context for info in handle.get_network_groups_infos())


def compile_stage(job: CompileJob, sdk=None) -> CompileResult:
    """Parses, optimizes (with calibration) and compiles one stage. Never raises for SDK
    failures: they are normalized into the result (and ``*_compile_failure.txt``)."""
    sdk = sdk or import_sdk()
    out_dir = Path(job.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = CompileResult(
        job.run_tag,
        job.stage,
        sdk_version=sdk_version(sdk),
        log=str(out_dir / f"{job.run_tag}.log"),
        hef_log=str(out_dir / f"{job.run_tag}_hef.log"),
    )
    log_path, hef_log_path = Path(result.log), Path(result.hef_log)
    log_path.write_text(f"stage {job.stage} ({job.run_tag}) hw_arch {job.hw_arch}, SDK {result.sdk_version}\n")
    phase = "parse"
    try:
        with _captured(log_path):
            started = time.perf_counter()
            runner = sdk.ClientRunner(hw_arch=job.hw_arch)
            runner.translate_onnx_model(
                job.onnx_path,
                job.net_name,
                start_node_names=list(job.input_names),
                end_node_names=list(job.end_node_names),
                net_input_shapes={n: list(s) for n, s in zip(job.input_names, job.input_shapes, strict=False)},
            )
            parsed = out_dir / f"{job.run_tag}_parsed.har"
            runner.save_har(str(parsed))
            result.seconds_parse = time.perf_counter() - started
            phase = "optimize"
            started = time.perf_counter()
            runner.load_model_script(resolve_layer_names(job.script_text, runner.get_hn_dict(), job.net_name))
            runner.optimize(_calibration_feed(runner, job))
            quantized = out_dir / f"{job.run_tag}.har"
            runner.save_har(str(quantized))
            result.har_path, result.har_success = str(quantized), True
            result.seconds_optimize = time.perf_counter() - started
        if not job.compile_hef:
            result.wants_hef = False
            return result
        phase = "compile"
        with _captured(hef_log_path):
            started = time.perf_counter()
            hef = runner.compile()
            hef_path = out_dir / f"{job.run_tag}.hef"
            write_bytes_atomically(hef_path, hef)
            result.hef_path, result.hef_success = str(hef_path), True
            result.seconds_compile = time.perf_counter() - started
        result.multi_context = hef_multi_context(hef_path)
    except Exception as exc:  # the SDK raises many classes; all are normalized
        log_text = (hef_log_path if phase == "compile" else log_path).read_text() if log_path.exists() else ""
        result.record_failure(from_exception(exc, log_text), out_dir)
    return result


def compile_pack(job: PackJob, sdk=None) -> CompileResult:
    """Joins the stages' optimized (quantized) HARs in order, loads the joint model script and
    compiles them into ``<run_tag>.hef``, as the Model Zoo joins networks (``multi_main.py``: join,
    ``load_model_script``, ``compile``). Never raises for SDK failures (normalized like
    ``compile_stage``'s)."""
    sdk = sdk or import_sdk()
    out_dir = Path(job.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = CompileResult(
        job.run_tag,
        job.pack,
        har_success=True,
        sdk_version=sdk_version(sdk),
        log=str(out_dir / f"{job.run_tag}.log"),
        hef_log=str(out_dir / f"{job.run_tag}_hef.log"),
    )
    hef_log_path = Path(result.hef_log)
    hef_log_path.write_text(
        f"pack {job.pack} ({job.run_tag}): join {', '.join(job.stages)}; hw_arch {job.hw_arch}; "
        f"joint model script:\n{job.script_text}"
    )
    try:
        with _captured(hef_log_path):
            started = time.perf_counter()
            runner = sdk.ClientRunner(hw_arch=job.hw_arch, har=job.har_paths[0])
            for har in job.har_paths[1:]:
                runner.join(sdk.ClientRunner(hw_arch=job.hw_arch, har=har))
            if job.script_text:
                runner.load_model_script(job.script_text)
            hef = runner.compile()
            hef_path = out_dir / f"{job.run_tag}.hef"
            write_bytes_atomically(hef_path, hef)
            result.hef_path, result.hef_success = str(hef_path), True
            result.seconds_compile = time.perf_counter() - started
        result.multi_context = hef_multi_context(hef_path)
    except Exception as exc:
        result.record_failure(from_exception(exc, hef_log_path.read_text()), out_dir)
    return result


def run_job(job: CompileJob | PackJob, sdk=None) -> CompileResult:
    return compile_pack(job, sdk) if isinstance(job, PackJob) else compile_stage(job, sdk)


def write_result(path: Path, result: CompileResult) -> None:
    write_text_atomically(path, json.dumps(result.to_json(), indent=1))
