"""Figures of a separation: waveforms (mixture, then each estimate over its reference) and
spectrograms (input, outputs, clean references)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..files import written_atomically


@contextlib.contextmanager
def png_figure(path: Path, *, dpi: int = 100, **subplots: Any) -> Iterator[tuple[Any, Any]]:
    """A matplotlib figure on the Agg backend (no display needed): ``plt.subplots(**subplots)``'s
    ``(fig, axes)`` for the block to draw on (and lay out), then written to ``path`` as a PNG
    atomically (an interrupt leaves no half-written file) and closed. Every figure of the
    package is made here; matplotlib is imported only when one is drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(**subplots)
    try:
        yield fig, axes
        with written_atomically(path) as temporary:
            fig.savefig(temporary, dpi=dpi, format="png")
    finally:
        plt.close(fig)


def plot_separation(
    path: Path,
    rate: int,
    mixture: np.ndarray,
    estimates: np.ndarray,
    references: np.ndarray | None = None,
    title: str = "",
) -> Path:
    """Writes a PNG. Shapes: mixture (T,), estimates (n_src, T), references (n_src, T) or None
    (already in the estimates' order)."""
    rows = 1 + len(estimates)
    figure = png_figure(path, dpi=110, nrows=rows, ncols=1, figsize=(10, 1.8 * rows), sharex=True, squeeze=False)
    with figure as (fig, axes):
        _draw_separation(fig, axes, rate, mixture, estimates, references, title)
    return path


def _draw_separation(
    fig, axes, rate: int, mixture: np.ndarray, estimates: np.ndarray, references: np.ndarray | None, title: str
) -> None:
    t = np.arange(len(mixture)) / rate
    axes[0, 0].plot(t, mixture, lw=0.4, color="black")
    axes[0, 0].set_ylabel("mixture")
    for i, estimate in enumerate(estimates):
        ax = axes[i + 1, 0]
        if references is not None:
            # The model's output scale is arbitrary (SI-SNR ignores it): show the estimate at the
            # scale that best matches its reference.
            estimate = estimate * np.dot(estimate, references[i]) / max(np.dot(estimate, estimate), 1e-12)
        ax.plot(t, estimate, lw=0.4, color=f"C{i}", label="estimate (scaled)" if references is not None else "estimate")
        if references is not None:
            ax.plot(t, references[i], lw=0.4, color="black", alpha=0.5, label="reference")
        ax.set_ylabel(f"source {i + 1}")
        ax.legend(loc="upper right", fontsize=7)
    axes[-1, 0].set_xlabel("seconds")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()


def plot_spectrograms(path: Path, rate: int, rows: list[tuple[str, np.ndarray]], title: str = "") -> Path:
    """One log-magnitude spectrogram per (label, (T,) signal), stacked; each signal is scaled to
    its own peak first (a model's output scale is arbitrary), then all share one colour scale."""
    figure = png_figure(path, nrows=len(rows), ncols=1, figsize=(10, 1.9 * len(rows)), sharex=True, squeeze=False)
    with figure as (fig, axes):
        n_fft = 512 if rate >= 16000 else 256
        for ax, (label, signal) in zip(axes[:, 0], rows, strict=False):
            peak = float(np.abs(signal).max()) or 1.0
            ax.specgram(
                np.asarray(signal, np.float64) / peak,
                NFFT=n_fft,
                Fs=rate,
                noverlap=n_fft * 3 // 4,
                cmap="magma",
                vmin=-120,
                vmax=-20,
            )
            ax.set_ylabel(f"{label}\nHz", fontsize=8)
        axes[-1, 0].set_xlabel("seconds")
        if title:
            fig.suptitle(title, fontsize=9)
        fig.tight_layout()
    return path
