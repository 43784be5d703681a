"""The host's array kernels, in torch where it is installed and in numpy where it is not (the
device side, an install without torch).

With torch these are the reference model's own kernels (gLN's float32 ``mean``/``var`` reduced as
the layer reduces them, cgLN's layer) and torch's multi-threaded strided copies; without it the
numpy forms compute the same quantities, rounded in float32 by another summation order, so a run
without torch stays within the exactness contract of one with it (tests/runtime/test_device.py
holds it there). Which one a process uses is fixed at its first call: :func:`kernels`.
"""

from __future__ import annotations

import functools

import numpy as np


@functools.lru_cache(maxsize=1)
def kernels() -> str:
    """ "torch" when torch imports, else "numpy"."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return "numpy"
    return "torch"


def _torch():
    import torch

    return torch


def copy_into(out: np.ndarray, x: np.ndarray) -> None:
    """``out[...] = x`` for strided windows (torch's copy runs on every core and beats numpy's
    assignment for the halo windows: docs/benchmarks.md, "Host path decisions")."""
    if kernels() == "torch":
        torch = _torch()
        torch.from_numpy(out).copy_(torch.from_numpy(x))
    else:
        np.copyto(out, x)


def addcmul_into(out: np.ndarray, x: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> None:
    """``out = x * scale + shift``; scale and shift (G, C, 1) float32, x and out (G, C, n)."""
    if kernels() == "torch":
        torch = _torch()
        torch.addcmul(torch.from_numpy(shift), torch.from_numpy(x), torch.from_numpy(scale), out=torch.from_numpy(out))
    else:
        np.multiply(x, scale, out=out)
        out += shift


def gln_moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """gLN's mean and biased variance per group over (C, T): (G, C, T) -> (G, 1, 1) each, float32
    (with torch, the layer's own ``mean`` and ``var`` kernels: ``var_mean`` rounds the same but is
    slower on CPU)."""
    if kernels() == "torch":
        torch = _torch()
        t = torch.from_numpy(np.ascontiguousarray(x))
        dims = list(range(1, t.dim()))
        return (t.mean(dim=dims, keepdim=True).numpy(), torch.var(t, dim=dims, keepdim=True, unbiased=False).numpy())
    mean = x.mean(axis=tuple(range(1, x.ndim)), keepdims=True, dtype=np.float32)
    var = np.square(x - mean).mean(axis=tuple(range(1, x.ndim)), keepdims=True, dtype=np.float32)
    return mean.astype(np.float32), var.astype(np.float32)


def rows_mean_var64(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of (G, n) float32: mean and biased variance, as float64 (G,) each (the float32
    kernel's result widened, with torch)."""
    if kernels() == "torch":
        torch = _torch()
        t = torch.from_numpy(values)
        return t.mean(dim=1).double().numpy(), torch.var(t, dim=1, unbiased=False).double().numpy()
    mean = values.mean(axis=1, dtype=np.float32)
    return mean.astype(np.float64), np.square(values - mean[:, None]).mean(axis=1, dtype=np.float32).astype(np.float64)


def sum64_into(parts: list[np.ndarray], out: np.ndarray, lo: int, step: int) -> None:
    """``out[lo:lo+step]`` = the float64 sum of the parts' rows lo:lo+step, in their order."""
    if kernels() == "torch":
        torch = _torch()
        total = torch.from_numpy(np.ascontiguousarray(parts[0][lo : lo + step])).double()
        for part in parts[1:]:
            total.add_(torch.from_numpy(np.ascontiguousarray(part[lo : lo + step])))
        out[lo : lo + step] = total.numpy()
        return
    total = parts[0][lo : lo + step].astype(np.float64)
    for part in parts[1:]:
        total += part[lo : lo + step]
    out[lo : lo + step] = total


def cumulative_norm(
    x: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    first: int = 0,
    before: tuple[np.ndarray, np.ndarray] | None = None,
):
    """cgLN (CumulativeLayerNorm's formula) on frames ``first``.. of a stream, with the running
    sums of all earlier frames (``before``, (G, 1, 1) each; None at the start). Returns the
    normalized frames (G, C, n) float32 and the running sums after them."""
    from ..model.config import NORM_EPS

    groups, chan, n = x.shape
    if before is None:
        before = (np.zeros((groups, 1, 1), np.float32), np.zeros((groups, 1, 1), np.float32))
    cum_sum = before[0] + np.cumsum(x.sum(1, keepdims=True), axis=-1, dtype=np.float32)
    cum_pow = before[1] + np.cumsum((x * x).sum(1, keepdims=True), axis=-1, dtype=np.float32)
    count = (chan * np.arange(first + 1, first + n + 1, dtype=np.float32)).reshape(1, 1, -1)
    mean = cum_sum / count
    var = cum_pow / count - mean**2
    normed = (x - mean) / np.sqrt(var + NORM_EPS)
    out = (normed * gamma.reshape(1, -1, 1) + beta.reshape(1, -1, 1)).astype(np.float32)
    return out, (cum_sum[..., -1:], cum_pow[..., -1:])
