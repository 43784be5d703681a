"""SI-SNR improvement over a LibriMix-format metadata CSV (mixture_ID, mixture_path, source_*_path),
one line per mixture and the mean. (`convtasnet-hailo evaluate` does the same with PESQ, STOI,
parity, resume and Ray.)

    python examples/evaluate_librimix.py metadata/mixture_test_mix_clean.csv [--model my.pth] [--limit 10]
"""

import argparse

import numpy as np

from convtasnet_hailo import open_pipeline
from convtasnet_hailo.audio.io import load_audio
from convtasnet_hailo.audio.librimix import read_metadata
from convtasnet_hailo.metrics.separation import score_separation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("metadata")
    parser.add_argument("--model")
    parser.add_argument("--export-dir")
    parser.add_argument("--backend", default="torch_proxy")
    parser.add_argument("--limit", type=int)
    args = parser.parse_args()
    scores = []
    with open_pipeline(args.model, export_dir=args.export_dir, backend=args.backend) as pipeline:
        for entry in read_metadata(args.metadata)[:args.limit]:
            mixture = load_audio(entry.mixture_path, pipeline.sample_rate).wav
            truth = np.stack([load_audio(p, pipeline.sample_rate, allow_silent=True).wav[:len(mixture)]
                              for p in entry.source_paths])
            score = score_separation(pipeline.separate(mixture), truth, mixture)
            scores.append(score.mean_si_snri)
            print(f"{entry.mixture_id}: SI-SNRi {score.mean_si_snri:+.2f} dB")
    print(f"{len(scores)} mixtures: mean SI-SNRi {np.mean(scores):+.2f} dB")


if __name__ == "__main__":
    main()
