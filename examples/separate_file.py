"""Separate one recording into one WAV per source.

    python examples/separate_file.py MIXTURE.wav OUT_DIR                        # the shipped demo model
    python examples/separate_file.py MIXTURE.wav OUT_DIR --model my.pth         # your Asteroid checkpoint
    python examples/separate_file.py MIXTURE.wav OUT_DIR --export-dir EXPORT --backend onnxruntime  # no torch
"""

import argparse

from convtasnet_hailo import open_pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mixture")
    parser.add_argument("out_dir")
    parser.add_argument("--model", help="Asteroid checkpoint or hub id (default: the shipped demo model)")
    parser.add_argument("--export-dir", help="an export folder (`convtasnet-hailo export`): run its plan")
    parser.add_argument("--backend", default="torch_proxy", help="torch_proxy, onnxruntime, hailo_runtime, ...")
    args = parser.parse_args()
    with open_pipeline(args.model, export_dir=args.export_dir, backend=args.backend) as pipeline:
        sources = pipeline.separate_file(args.mixture)  # (n_src, T) at the model's rate
        for path in pipeline.write_sources(sources, args.out_dir, "separated"):
            print(path)


if __name__ == "__main__":
    main()
