"""Stream a recording hop by hop, as if it arrived in real time, and print the real-time factor
(compute time / audio time: below 1 keeps up) and the hops that missed their deadline. A causal
model: the shipped causal demo model by default. On a CPU backend the stream runs the stateful
graph (one onnxruntime call per hop); the sources are written as WAVs.

    python examples/stream_file.py MIXTURE.wav OUT_DIR [--model causal.pth] [--hop-ms 8]
"""

import argparse
import time
from pathlib import Path

import numpy as np
import soundfile

from convtasnet_hailo import StreamingSeparator, load_audio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mixture")
    parser.add_argument("out_dir")
    parser.add_argument("--model", help="a causal checkpoint (default: the shipped causal demo model)")
    parser.add_argument("--hop-ms", type=float, default=8.0)
    parser.add_argument("--backend", default="onnxruntime", help="onnxruntime (default) or torch_proxy")
    args = parser.parse_args()
    if args.model:
        streamer = StreamingSeparator.from_checkpoint(args.model, hop_ms=args.hop_ms, backend=args.backend)
    else:
        streamer = StreamingSeparator.demo(hop_ms=args.hop_ms, backend=args.backend)
    with streamer:
        rate, hop = streamer.sample_rate, streamer.hop
        wav = load_audio(args.mixture, rate)
        whole = len(wav) // hop * hop
        pieces, seconds = [], []
        for first in range(0, whole, hop):
            started = time.perf_counter()
            pieces.append(streamer.push(wav[first : first + hop]))  # (n_src, n): the samples now final
            seconds.append(time.perf_counter() - started)
        pieces.append(streamer.finish(wav[whole:]))  # the last partial hop and the flush
    sources = np.concatenate(pieces, axis=-1)
    Path(args.out_dir).mkdir(parents=True, exist_ok=True)
    for i, track in enumerate(sources, 1):
        soundfile.write(Path(args.out_dir) / f"stream_s{i}.wav", track, rate, subtype="FLOAT")
    per_hop = np.array(seconds) * 1e3
    hop_ms = 1e3 * hop / rate
    rtf = per_hop.sum() / (len(per_hop) * hop_ms)
    print(
        f"{len(wav) / rate:.2f} s in {len(per_hop)} hops of {hop_ms:g} ms: RTF {rtf:.3f}, "
        f"p50 {np.percentile(per_hop, 50):.2f} ms per hop, {int(np.sum(per_hop > hop_ms))} hop(s) missed the deadline; "
        f"{len(sources)} sources of {sources.shape[-1]} samples in {args.out_dir}"
    )


if __name__ == "__main__":
    main()
