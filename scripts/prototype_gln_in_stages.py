#!/usr/bin/env python3
"""Timing prototype for issue 15's open target (host share <= 10%): gLN moved into the stages.

NOT a product path and not exact: it answers one question for the design, "on this CPU, does
moving gLN into the ONNX stages make the stitched onnxruntime path faster, or only move time
from host to stages?". The stage before each gLN gets two extra outputs (per-tile
GlobalAveragePool of x and of x*x); the host combines them into the per-channel affine
(``gln_fold``); the stage after takes the raw tensor plus scale and shift inputs and applies
them first (Mul, Add). Left out, so outputs differ from the model near the edges: the edge mask
a halo stage would need and the correction for the last tile's padding columns.

    .venv/bin/python scripts/prototype_gln_in_stages.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def main() -> int:
    import onnx
    import onnxruntime as ort
    import torch
    from onnx import helper

    import convtasnet_hailo.tiling.executor as executor_module
    from convtasnet_hailo.backends import load_backend
    from convtasnet_hailo.backends.base import Backend
    from convtasnet_hailo.backends.onnxruntime_backend import session_options
    from convtasnet_hailo.bench.workflow import StageTimer, speech_like_signal
    from convtasnet_hailo.export.exporter import export_plan
    from convtasnet_hailo.export.onnx_graph import stage_to_onnx, with_symbolic_batch
    from convtasnet_hailo.model.config import NormType
    from convtasnet_hailo.model.source import random_source
    from convtasnet_hailo.plan.builder import PlanOptions, PlanPath
    from convtasnet_hailo.plan.host_steps import Normalize, gln_fold
    from convtasnet_hailo.tiling.executor import HostClock, StitchedExecutor

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tile-w", type=int, default=256)
    args = parser.parse_args()

    source = random_source("full-8k", 0)
    plan = PlanOptions().build(source.model, PlanPath.FULL_CHAIN)
    wav = speech_like_signal(10, 8000)[None, None]
    norms = [s for s in plan.steps if isinstance(s, Normalize) and s.norm is NormType.GLN]
    before_norm = {s.input: s for s in norms}
    after_norm = {s.output: s for s in norms}
    moments: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    affines: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    class GlnInStages(Backend):
        name = "prototype_gln_in_stages"

        def _prepare(self, plan, tile_w):
            self.sessions = {}
            for stage in plan.stages:
                graph = with_symbolic_batch(stage_to_onnx(stage, tile_w))
                g = graph.graph
                for port in stage.outputs:
                    if port.name in before_norm:
                        u = port.name
                        g.node.extend([helper.make_node("GlobalAveragePool", [u], [u + "#m"]),
                                       helper.make_node("Mul", [u, u], [u + "#sq"]),
                                       helper.make_node("GlobalAveragePool", [u + "#sq"], [u + "#q"])])
                        g.output.extend([helper.make_tensor_value_info(u + "#m", onnx.TensorProto.FLOAT, None),
                                         helper.make_tensor_value_info(u + "#q", onnx.TensorProto.FLOAT, None)])
                for port in stage.inputs:
                    if port.name in after_norm:
                        v = port.name
                        for value in g.input:
                            if value.name == v:
                                value.name = v + "#raw"
                        g.input.extend([helper.make_tensor_value_info(v + "#scale", onnx.TensorProto.FLOAT,
                                                                      [1, port.channels, 1, 1]),
                                        helper.make_tensor_value_info(v + "#shift", onnx.TensorProto.FLOAT,
                                                                      [1, port.channels, 1, 1])])
                        g.node.insert(0, helper.make_node("Add", [v + "#scaled", v + "#shift"], [v]))
                        g.node.insert(0, helper.make_node("Mul", [v + "#raw", v + "#scale"], [v + "#scaled"]))
                self.sessions[stage.name] = ort.InferenceSession(graph.SerializeToString(), session_options(),
                                                                 providers=["CPUExecutionProvider"])

        def run_stage(self, stage, inputs):
            feeds = {}
            for port in stage.inputs:
                tiles = np.ascontiguousarray(inputs[port.name], dtype=np.float32)
                if port.name in after_norm:
                    scale, shift = affines[port.name]
                    feeds.update({port.name + "#raw": tiles, port.name + "#scale": scale, port.name + "#shift": shift})
                else:
                    feeds[port.name] = tiles
            names = [p.name for p in stage.outputs]
            extra = [n + suffix for n in names if n in before_norm for suffix in ("#m", "#q")]
            results = dict(zip(names + extra, self.sessions[stage.name].run(names + extra, feeds)))
            for n in names:
                if n in before_norm:
                    moments[n] = (results[n + "#m"], results[n + "#q"])
            return {n: results[n] for n in names}

    def gln_from_moments(step, x):
        m, q = moments[step.input]  # per tile and channel: means of x and x*x over the tile's columns
        mean = float(np.mean(m, dtype=np.float64))
        var = float(np.mean(q, dtype=np.float64)) - mean * mean
        scale, shift = gln_fold(step.gamma, step.beta, torch.tensor(mean, dtype=torch.float32).view(1, 1, 1),
                                torch.tensor(var, dtype=torch.float32).view(1, 1, 1))
        affines[step.output] = (scale.numpy()[..., None], shift.numpy()[..., None])  # (1, C, 1, 1)
        return x  # the raw tensor: the stage after applies the affine

    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as scratch:
        export_plan(plan, args.tile_w, Path(scratch) / f"tile{args.tile_w}", source.to_json(), report=lambda _: None)
        original = executor_module.global_norm_affine
        runs = {}
        for label in ("host gLN (main)", "gLN in stages (prototype)"):
            backend = load_backend("onnxruntime", export_dir=scratch) if label.startswith("host") else GlnInStages()
            timer, clock = StageTimer(backend), HostClock()
            runs[label] = (StitchedExecutor(plan, timer, args.tile_w, clock), timer, clock)
        results = {label: {"wall": [], "stage": [], "host": []} for label in runs}
        outputs = {}
        for _ in range(args.rounds + 1):  # the first round warms up
            for label, (executor, timer, clock) in runs.items():
                executor_module.global_norm_affine = original if label.startswith("host") else gln_from_moments
                timer.seconds = 0.0
                started = time.perf_counter()
                outputs[label] = executor.run({"wav": wav})
                wall = time.perf_counter() - started
                results[label]["wall"].append(wall)
                results[label]["stage"].append(timer.seconds)
                results[label]["host"].append(wall - timer.seconds)
        executor_module.global_norm_affine = original
    for label, r in results.items():
        wall, stage, host = (statistics.median(r[k][1:]) for k in ("wall", "stage", "host"))
        clock = runs[label][2]
        top = sorted(clock.seconds.items(), key=lambda kv: -kv[1])[:4]
        kinds = ", ".join(f"{k} {v / (args.rounds + 1):.3f}" for k, v in top)
        print(f"{label:28s} wall {wall:.3f} s  stages {stage:.3f} s  host {host:.3f} s ({host / wall:.0%}; {kinds})")
    (a,), (b,) = (list(o.values()) for o in outputs.values())
    print(f"output difference (prototype has no edge mask or padding correction): max {np.abs(a - b).max():.2e} "
          f"at peak {np.abs(a).max():.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
