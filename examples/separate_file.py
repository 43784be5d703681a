"""Separate one recording into one WAV per source.

python examples/separate_file.py MIXTURE.wav OUT_DIR                        # the shipped demo model
python examples/separate_file.py MIXTURE.wav OUT_DIR --model my.pth         # your Asteroid checkpoint
python examples/separate_file.py MIXTURE.wav OUT_DIR --export-dir EXPORT --backend onnxruntime  # no torch
"""

import argparse

from convtasnet_hailo import Separator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mixture")
    parser.add_argument("out_dir")
    parser.add_argument("--model", help="Asteroid checkpoint or hub id (default: the shipped demo model)")
    parser.add_argument("--export-dir", help="an export folder (`convtasnet-hailo export`): run its plan")
    parser.add_argument("--backend", help="torch_proxy (a checkpoint's default) or onnxruntime (an export's)")
    args = parser.parse_args()
    if args.model:
        separator = Separator.from_checkpoint(args.model, backend=args.backend or "torch_proxy")
    elif args.export_dir:
        separator = Separator.from_export(args.export_dir, backend=args.backend or "onnxruntime")
    else:
        separator = Separator.demo(backend=args.backend or "torch_proxy")
    with separator:
        sources = separator.separate_file(args.mixture)  # (n_src, T) at the model's rate
        for path in separator.write_sources(sources, args.out_dir, "separated"):
            print(path)


if __name__ == "__main__":
    main()
