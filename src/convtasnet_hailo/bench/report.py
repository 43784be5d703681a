"""What `bench` prints and plots from its record: the paths side by side, the device prediction."""

from __future__ import annotations

from pathlib import Path

from ..plan.cost_model import DeviceModel


def path_lines(record: dict) -> list[str]:
    lines = ["path                                  median s   spread s   RTF     host share  peak RSS"]
    for name, r in record["paths"].items():
        share = f"{r['host_share']:.0%}" if "host_share" in r else "-"
        lines.append(
            f"{name:36s}  {r['median_s']:8.3f}  {r['max_s'] - r['min_s']:8.3f}  {r['rtf']:6.3f}  {share:>10s}  "
            f"{r['peak_rss_bytes'] / 2**30:.2f} GiB"
        )
    mono = record["paths"]["monolithic_onnxruntime"]
    lines.append(
        f"monolithic onnxruntime: its norms take {mono['norm_share']:.0%} of its kernel time "
        f"({mono['norm_seconds']:.3f} s, ONNX Runtime's profiler); the stitched paths do that work as host "
        "steps"
    )
    first = record["tile_widths"][0]
    lines.append(
        f"stitched onnxruntime / monolithic onnxruntime: "
        f"{record['ratio_stitched_onnxruntime_vs_monolithic_onnxruntime']:.2f}x; stitched torch_proxy / torch "
        f"reference: {record['ratio_stitched_torch_proxy_vs_torch_reference']:.2f}x (tile_w {first})"
    )
    lines.append(
        f"float plan ({' '.join(record['float_plan_options'])}; not for the device): stitched onnxruntime / "
        f"monolithic onnxruntime {record['ratio_stitched_onnxruntime_float_plan_vs_monolithic_onnxruntime']:.2f}x, "
        f"host share {record['host_share_stitched_onnxruntime_float_plan']:.0%}"
    )
    if "ratio_stitched_onnxruntime_block_vs_unblocked" in record:
        lines.append(
            f"stitched onnxruntime with --block-chan {record['block_chan']} / without: "
            f"{record['ratio_stitched_onnxruntime_block_vs_unblocked']:.2f}x"
        )
    return lines


def device_lines(predictions: dict, device: DeviceModel) -> list[str]:
    execution = predictions["execution"]
    lines = [
        f"on the device (tile_w {predictions['recommended_tile_w']}): execution mode {execution['mode']}, "
        f"{execution['network_groups']} network group(s) in {execution['configure_windows']} configure window(s), "
        f"per utterance {execution['switches']} scheduler switches, {execution['activations']} activations, "
        f"{execution['network_groups_configured']} network groups reconfigured",
        f"predicted {device.device} behind a Pi 5 PCIe {device.link} x1 (parameters and sources in the JSON; "
        "assumptions marked):",
        "tile_w   compute s  transfer s  overhead s  calls  device RTF  latency to first output",
    ]
    for row in predictions["per_tile_width"]:
        lines.append(
            f"{row['tile_w']:6d}  {row['compute_s']:9.3f}  {row['transfer_s']:10.3f}  "
            f"{row['overhead_s']:10.3f}  {row['calls']:5d}  {row['rtf']:10.3f}  "
            f"{row['latency_to_first_output_s']:.2f} s"
        )
    every = ", ".join(f"{k} {v:.3f}" for k, v in predictions["rtf_at_recommended"].items())
    lines.append(
        f"recommended tile_w {predictions['recommended_tile_w']} (lowest predicted device time); RTF there: {every}"
    )
    return lines


def plot_bench(path: Path, record: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..files import written_atomically

    names = list(record["paths"])
    medians = [record["paths"][n]["median_s"] for n in names]
    spreads = [
        [m - record["paths"][n]["min_s"] for n, m in zip(names, medians, strict=False)],
        [record["paths"][n]["max_s"] - m for n, m in zip(names, medians, strict=False)],
    ]
    host = [record["paths"][n].get("host_seconds", 0.0) for n in names]
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(names) + 1.9))
    ax.barh(names, medians, xerr=spreads, color="C0", label="stages / whole model")
    ax.barh(names, host, color="C1", label="host work (steps, gather/scatter)")
    norms = [record["paths"][n].get("norm_share", 0.0) * m for n, m in zip(names, medians, strict=False)]
    ax.barh(names, norms, color="C2", label="norms inside the monolithic model (profiled share)")
    ax.set_xlabel(f"seconds for {record['seconds_of_audio']:g} s of audio (median of {record['repeats']})")
    ax.invert_yaxis()
    fig.legend(*ax.get_legend_handles_labels(), fontsize=8, loc="lower center", ncol=3)  # below: bars stay visible
    ax.set_title(record["model_source"], fontsize=9)
    fig.tight_layout(rect=(0, 0.4 / fig.get_figheight(), 1, 1))
    with written_atomically(path) as temporary:
        fig.savefig(temporary, dpi=100, format="png")
    plt.close(fig)
