"""An independent cross-check of `noise`: ONNX Runtime's own static quantization of the same stages.

Each stage's ONNX graph (the file `export` writes, with a free batch dimension) is quantized by
``onnxruntime.quantization.quantize_static`` in QDQ form: int8 weights per output channel, uint8
activations, min/max ranges, calibrated on the very tiles the emulator calibrates on (the
``quantization.calibration`` files). The stitched executor then runs the quantized graphs on the
evaluation audio, and each stage's SQNR against float on the same inputs is set beside the
emulator's (``per_stage_sqnr_db_all8``). ONNX Runtime is not Hailo: where the two disagree by
more than ``DISAGREE_DB`` the report lists, per stage, the ops ONNX Runtime leaves in float (a
per-frame norm's Sqrt and Div, for one) and the known differences of arithmetic.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..backends.base import Backend
from ..hailo.range_stats import tile_chunks
from ..metrics.sqnr import PowerSums
from ..plan.stage_plan import StagePlan
from ..plan.stages import Stage
from ..progress import Progress

log = logging.getLogger(__name__)

#: Per-stage SQNR difference (dB) above which the report explains the disagreement.
DISAGREE_DB = 3.0
#: What differs between the two by construction (quant_scheme.py is the emulator's side).
KNOWN_DIFFERENCES = (
    "ONNX Runtime rescales in float32, the emulator in 16-bit mantissas with shifts",
    "ONNX Runtime keeps ops it cannot quantize (a ChannelNorm's Sqrt and Div) in float between DequantizeLinear "
    "and QuantizeLinear; its quantized LeakyRelu (the PReLU) is a 256-entry lookup table, the emulator computes "
    "the slope as the datapath holds it",
    "ONNX Runtime's biases are int32 at the accumulator's scale without saturation; the emulator saturates them "
    "to the accumulator width",
)


class _TileReader:
    """``CalibrationDataReader`` over a stage's calibration files: paired input tiles, NCHW, in
    batches read as they are asked for (memory: one batch, not the files)."""

    def __init__(self, stage: Stage, files: Mapping[str, Path], batch: int = 64) -> None:
        paths = {p.name: files[p.name] for p in stage.inputs}
        self._batches = (
            {name: tiles.astype(np.float32) for name, tiles in chunk.items()} for _, chunk in tile_chunks(paths, batch)
        )

    def get_next(self) -> dict | None:
        return next(self._batches, None)


def quantize_stage(stage: Stage, tile_w: int, files: Mapping[str, Path], directory: Path) -> Path:
    """Writes ``<stage>.float.onnx`` and ``<stage>.qdq.onnx`` (QDQ, per-channel int8 weights, uint8
    activations, min/max calibration on ``files``); returns the quantized file."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    from ..export.onnx_graph import stage_to_onnx, with_symbolic_batch

    float_path, qdq_path = directory / f"{stage.name}.float.onnx", directory / f"{stage.name}.qdq.onnx"
    onnx.save(with_symbolic_batch(stage_to_onnx(stage, tile_w)), float_path)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_static warns once per stage that no pre-processing ran; none is needed
    try:
        quantize_static(
            str(float_path),
            str(qdq_path),
            _TileReader(stage, files),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
    finally:
        root.setLevel(level)
    return qdq_path


def ops_left_in_float(float_path: Path) -> list[str]:
    """Op types of a stage that ONNX Runtime's quantizer has no quantized form for: they compute
    in float on dequantized inputs (their outputs are quantized again by the next op's input)."""
    import onnx
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    quantizable = set(QDQRegistry) | set(QLinearOpsRegistry)
    return sorted({node.op_type for node in onnx.load(str(float_path)).graph.node} - quantizable)


class OrtQdqProbe(Backend):
    """Runs each stage's ONNX Runtime-quantized graph and its float graph on the same inputs:
    per-stage SQNR. The quantized output flows on, as on a device."""

    name = "ort_qdq_probe"
    quantized = True

    def __init__(self, quantized: Mapping[str, Path], floats: Mapping[str, Path]) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.sessions = {
            name: (
                ort.InferenceSession(str(quantized[name]), options, providers=["CPUExecutionProvider"]),
                ort.InferenceSession(str(floats[name]), options, providers=["CPUExecutionProvider"]),
            )
            for name in quantized
        }
        self.powers = PowerSums()

    def run_stage(self, stage: Stage, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        quantized, exact = self.sessions[stage.name]
        feed = {name: np.ascontiguousarray(array, np.float32) for name, array in inputs.items()}
        names = [p.name for p in stage.outputs]
        out = dict(zip(names, quantized.run(names, feed), strict=False))
        for name, reference in zip(names, exact.run(names, feed), strict=False):
            self.powers.add(stage.name, reference, out[name])
        return out


def ort_cross_check(
    plan: StagePlan,
    tile_w: int,
    files: Mapping[str, Path],
    audio: list[np.ndarray],
    emulator_per_stage_db: Mapping[str, float],
) -> dict:
    """Quantizes every stage with ONNX Runtime, runs ``audio`` through the stitched path, and
    compares per-stage SQNR with the emulator's."""
    from ..runtime.engine import stitched_executor

    with tempfile.TemporaryDirectory(prefix="ort_qdq_") as temporary:
        directory = Path(temporary)
        progress = Progress(log, "noise: ONNX Runtime quantization", len(plan.stages), "stages")
        quantized = {}
        for stage in plan.stages:
            quantized[stage.name] = quantize_stage(stage, tile_w, files, directory)
            progress.step()
        progress.finish()
        floats = {name: directory / f"{name}.float.onnx" for name in quantized}
        left_float = {name: ops_left_in_float(path) for name, path in floats.items()}
        probe = OrtQdqProbe(quantized, floats)
        executor = stitched_executor(plan, probe, tile_w)
        for wav in audio:
            executor.run({"wav": wav[None, None].astype(np.float32)})
    ort_db = probe.powers.db()
    rows = []
    for stage in plan.stages:
        emulator, onnxruntime = emulator_per_stage_db[stage.name], ort_db[stage.name]
        row = {
            "stage": stage.name,
            "emulator_db": emulator,
            "onnxruntime_qdq_db": onnxruntime,
            "difference_db": emulator - onnxruntime,
            "ops_onnxruntime_keeps_float": left_float[stage.name],
        }
        rows.append(row)
    disagreeing = [r for r in rows if abs(r["difference_db"]) > DISAGREE_DB]
    log.info(
        f"noise: ONNX Runtime QDQ cross-check: median per-stage difference "
        f"{np.median([r['difference_db'] for r in rows]):+.2f} dB (emulator - onnxruntime); "
        f"{len(disagreeing)} of {len(rows)} stage(s) differ by more than {DISAGREE_DB:g} dB"
    )
    return {
        "settings": {
            "quant_format": "QDQ",
            "per_channel": True,
            "activation_type": "QUInt8",
            "weight_type": "QInt8",
            "calibrate_method": "MinMax",
            "calibration": "the same tiles as the emulator",
        },
        "disagree_threshold_db": DISAGREE_DB,
        "per_stage": rows,
        "stages_disagreeing": [r["stage"] for r in disagreeing],
        "known_differences": list(KNOWN_DIFFERENCES),
    }
