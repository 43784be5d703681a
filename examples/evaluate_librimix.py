"""SI-SNR improvement over a LibriMix-format metadata CSV (mixture_ID, mixture_path, source_*_path),
one line per mixture and the mean. (`convtasnet-hailo evaluate` does the same with PESQ, STOI,
parity, resume and Ray.)

    python examples/evaluate_librimix.py metadata/mixture_test_mix_clean.csv [--model my.pth] [--limit 10]
"""

import argparse

import numpy as np

from convtasnet_hailo import Separator, load_audio, read_librimix, score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("metadata")
    parser.add_argument("--model")
    parser.add_argument("--export-dir")
    parser.add_argument("--backend", help="torch_proxy (a checkpoint's default) or onnxruntime (an export's)")
    parser.add_argument("--limit", type=int)
    args = parser.parse_args()
    scores = []
    if args.model:
        separator = Separator.from_checkpoint(args.model, backend=args.backend or "torch_proxy")
    elif args.export_dir:
        separator = Separator.from_export(args.export_dir, backend=args.backend or "onnxruntime")
    else:
        separator = Separator.demo(backend=args.backend or "torch_proxy")
    with separator:
        for entry in read_librimix(args.metadata)[: args.limit]:
            mixture = load_audio(entry.mixture_path, separator.sample_rate)
            truth = np.stack([load_audio(p, separator.sample_rate)[: len(mixture)] for p in entry.source_paths])
            result = score(separator.separate(mixture), truth, mixture)
            scores.append(result.mean_si_snri)
            print(f"{entry.mixture_id}: SI-SNRi {result.mean_si_snri:+.2f} dB")
    print(f"{len(scores)} mixtures: mean SI-SNRi {np.mean(scores):+.2f} dB")


if __name__ == "__main__":
    main()
