"""Separate the default microphone in real time, hop by hop, for a few seconds; the sources are
written as WAVs (a causal model: the shipped causal demo model by default).

    python examples/stream_microphone.py OUT_DIR --seconds 10 [--model causal.pth] [--hop-ms 16]

Needs the [live] extra (sounddevice) and PortAudio (`apt install libportaudio2`).
"""

import argparse
import queue
from pathlib import Path

import numpy as np
import soundfile

from convtasnet_hailo import StreamingSeparator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--hop-ms", type=float, default=16.0)
    parser.add_argument("--model", help="a causal checkpoint (default: the shipped causal demo model)")
    parser.add_argument("--export-dir", help="an export folder made for this hop: run it without torch")
    parser.add_argument("--backend", help="torch_proxy (a checkpoint's default) or onnxruntime (an export's)")
    args = parser.parse_args()
    import sounddevice

    if args.model:
        backend = args.backend or "torch_proxy"
        streamer = StreamingSeparator.from_checkpoint(args.model, hop_ms=args.hop_ms, backend=backend)
    elif args.export_dir:
        backend = args.backend or "onnxruntime"
        streamer = StreamingSeparator.from_export(args.export_dir, hop_ms=args.hop_ms, backend=backend)
    else:
        streamer = StreamingSeparator.demo(hop_ms=args.hop_ms, backend=args.backend or "torch_proxy")
    with streamer:
        rate = streamer.sample_rate
        blocks: queue.Queue = queue.Queue()
        pieces = []
        with sounddevice.InputStream(
            samplerate=rate,
            channels=1,
            dtype="float32",
            blocksize=streamer.hop,
            callback=lambda data, *_: blocks.put(data[:, 0].copy()),
        ):
            for _ in range(max(1, int(args.seconds * rate) // streamer.hop)):
                pieces.append(streamer.push(blocks.get(timeout=10)))  # (n_src, n): final samples
        pieces.append(streamer.finish())
    sources = np.concatenate(pieces, axis=-1)
    Path(args.out_dir).mkdir(parents=True, exist_ok=True)
    for i, track in enumerate(sources, 1):
        soundfile.write(Path(args.out_dir) / f"live_s{i}.wav", track, rate, subtype="FLOAT")
    print(f"{sources.shape[-1] / rate:.2f} s of {len(sources)} sources in {args.out_dir}")


if __name__ == "__main__":
    main()
