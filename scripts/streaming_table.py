#!/usr/bin/env python3
"""The streaming table (docs/measured/streaming.md): causal model x hop, receptive-field windows
against the per-hop plan. Per hop: device calls, recomputed MACs, bytes across the link,
predicted device time and end-to-end latency on a Hailo-8L behind a Pi 5 (Gen2; the cost model's
stated assumptions, execution mode as `stream` chooses it), and the host time per hop outside the
device calls measured here (`stream` on onnxruntime, simulated real time), with parity against
the offline model on every sample.

    .venv/bin/python scripts/streaming_table.py --out docs/measured/streaming.md
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

MODELS = {
    "demo causal (shipped)": ["--model", "src/convtasnet_hailo/assets/demo/convtasnet_demo_8k_causal.pth"],
    "full-size causal (random)": ["--random-preset", "full-8k-causal", "--device-norms"],
}
HOPS_MS = (4, 8, 16, 32)
ANCHORS = "DTLN 32 ms, DeepFilterNet2 40 ms (its zero-lookahead model at least 20 ms), RNNoise about 10 ms"


def run(model_args: list[str], hop_ms: int, plan: str, seconds: float, work: Path) -> dict:
    import soundfile

    from convtasnet_hailo.assets import DEMO_MIXTURE
    from convtasnet_hailo.cli import main

    audio, rate = soundfile.read(DEMO_MIXTURE, dtype="float32")
    clip = work / f"clip_{seconds:g}.wav"
    soundfile.write(clip, audio[: int(seconds * rate)], rate, subtype="FLOAT")
    out = work / f"{abs(hash(tuple(model_args)))}_{hop_ms}_{plan}"
    code = main(
        [
            "stream",
            str(clip),
            *model_args,
            "--hop-ms",
            str(hop_ms),
            "--plan",
            plan,
            "--backend",
            "onnxruntime",
            "--out",
            str(out),
        ]
    )
    record = json.loads((out / "stream_run.json").read_text())
    record["exit"] = code
    return record


def row(name: str, hop_ms: int, plan: str, record: dict) -> str:
    p, lat = record["device_prediction"], record["latency"]
    parity = record["parity_vs_offline"]
    return (
        f"| {name} | {hop_ms} | {plan} ({p['execution_mode']}) | {p['calls_per_hop']} | "
        f"{p['recomputed_macs_per_hop'] / 1e6:.1f} M | {p['boundary_bytes_per_hop'] / 1e3:.1f} kB | "
        f"{p['device_ms_per_hop']:.2f} | {p['end_to_end_latency_ms']:.1f} | {lat['host_ms_per_hop']['p50']:.2f} | "
        f"{parity['max_abs']:.1e} / {parity['bound']:.1e} ({parity['samples_compared']} samples) |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/measured/streaming.md")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of the streamed clip (demo mixture)")
    args = parser.parse_args()
    lines = [
        "| model | hop ms | plan (mode) | calls/hop | recomputed MACs/hop | bytes/hop | predicted device ms/hop "
        "| predicted end-to-end ms | host ms/hop here (p50) | vs offline max-abs / bound |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for name, model_args in MODELS.items():
            for hop_ms in HOPS_MS:
                for plan in ("rf-windows", "per-hop"):
                    seconds = args.seconds if "demo" in name else min(args.seconds, 1.0)
                    lines.append(row(name, hop_ms, plan, run(model_args, hop_ms, plan, seconds, Path(tmp))))
    import datetime

    text = (
        "# Streaming on the device: receptive-field windows against the per-hop plan\n\n"
        f"Measured {datetime.date.today().isoformat()} by `scripts/streaming_table.py` ({args.seconds:g} s of "
        "the demo mixture; 1 s for the "
        "full-size model). Predictions: Hailo-8L, Pi 5 PCIe Gen2 x1, the cost model's parameters "
        "(`stream_run.json` `device_prediction.parameters`, each sourced or marked ASSUMPTION), the "
        "execution mode `stream --plan auto` would pick for that plan. Host time: this machine, onnxruntime, "
        f"outside the device calls. Anchors: {ANCHORS}.\n\n" + "\n".join(lines) + "\n"
    )
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
