"""Separate a recording on a Hailo device: the plan of an export folder, the HEFs `compile` made
from it, HailoRT's Python binding (`apt install hailo-all` on a Raspberry Pi 5). No torch needed.

    convtasnet-hailo export --model my.pth --tile-w 256 --out EXPORT       # on the host
    convtasnet-hailo compile --export-dir EXPORT --hw-arch hailo8l          # on the host, with the DFC
    python examples/run_on_hailo.py MIXTURE.wav OUT_DIR --export-dir EXPORT --hef-dir EXPORT/hailo/hailo8l
"""

import argparse
import time

from convtasnet_hailo import HailoRuntime, Separator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mixture")
    parser.add_argument("out_dir")
    parser.add_argument("--export-dir", required=True)
    parser.add_argument("--hef-dir", required=True)
    args = parser.parse_args()
    with Separator.from_export(args.export_dir, backend=HailoRuntime(args.hef_dir)) as separator:
        started = time.perf_counter()
        sources = separator.separate_file(args.mixture)
        seconds = time.perf_counter() - started
        rate = separator.sample_rate
        for path in separator.write_sources(sources, args.out_dir, "hailo"):
            print(path)
    print(f"RTF {seconds / (sources.shape[-1] / rate):.3f} on hailo_runtime")


if __name__ == "__main__":
    main()
