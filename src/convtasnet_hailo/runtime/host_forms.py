"""Every host step's tiled and streaming forms, in one place, keyed by step type.

A host step (``plan.host_steps``) always has its whole-tensor form, ``apply``. The stitched
executor runs that on whole tensors and the streaming executor on the frames new since the last
hop, unless the step's class says it has a form of its own here (``tiled_form`` /
``stream_form`` = "own"): gLN kept as an affine of the tiles, skip sums added on the tiles,
channel blocks cut and joined on them; cgLN's running sums, the decoder's overlap-add tail and
the length fit of a stream. The registries are checked against the step classes at import, so a
step that says it has a form and has none (or the reverse) fails at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from ..model.config import NormType
from ..plan import host_math
from ..plan.host_steps import (
    ActivateMask,
    AddTensors,
    Alias,
    AssembleBlocks,
    FitLength,
    GlnFold,
    HostWork,
    Normalize,
    OverlapAdd,
    SplitChannels,
    SplitSources,
    assemble_rows,
    gln_fold,
    gln_from_tile_moments,
    overlap_add,
)
from .tensors import PerChannelAffine, Stored, TiledTensor, _same_tiling, _shared, _tiled_source, whole

#: type -> its tiled form (step, store, dying) -> outputs, or None where its inputs are not in
#: tile layout (then the whole-tensor form runs)
TiledForm = Callable[[HostWork, dict, frozenset], "dict | None"]
TILED: dict[type, TiledForm] = {}
#: type -> its streaming form (streaming executor, step): emits what the step makes this hop
StreamForm = Callable[[object, HostWork], None]
STREAMING: dict[type, StreamForm] = {}


def _registers(registry: dict, *types: type):
    def decorate(form):
        for kind in types:
            registry[kind] = form
        return form

    return decorate


def global_norm_affine(step: Normalize, x: Stored) -> PerChannelAffine:
    """gLN of ``x`` as its per-channel affine. A whole tensor gets the layer's own statistics
    (``mean`` and ``var`` over (C, T), as the reference reduces them); a tiled one gets the same
    statistics taken over its tiles (the zero columns past the utterance corrected for), which
    round differently by float32 reduction order only (the parity grid measures it)."""
    if isinstance(x, TiledTensor):
        mean, var = _tiled_statistics(x)
    else:
        x = whole(x)
        mean, var = host_math.gln_moments(x)
    scale, shift = gln_fold(step.gamma, step.beta, mean, var)
    return PerChannelAffine(x, scale, shift)


def _tiled_statistics(x: TiledTensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean and biased variance per group over (C, length) of a tiled tensor, (G, 1, 1) float32.

    Its padding columns are zero, so over all n_all stored values, with p = n_all - n of them
    padding: sum is the valid sum, and sum (v - m)^2 over the valid values is
    n_all * var_all + n_all * (m_all - m)^2 - p * m^2 (the deviations of the zeros removed)."""
    groups = x.groups
    values = x.tiles.reshape(groups, -1)
    n_all = values.shape[1]
    n = x.shape[1] * x.length
    mean_all, var_all = host_math.rows_mean_var64(values)
    mean = mean_all * (n_all / n)
    var = (n_all * var_all + n_all * (mean_all - mean) ** 2 - (n_all - n) * mean**2) / n
    return mean.astype(np.float32).reshape(groups, 1, 1), var.astype(np.float32).reshape(groups, 1, 1)


def gln_affine_from_moments(
    step: GlnFold, x: TiledTensor, tile_mean: np.ndarray, tile_sum_sq: np.ndarray
) -> dict[str, np.ndarray]:
    """``GlnFold`` on the moments its producing stage output: (G * n_tiles, C, 1, 1) each, for the
    tiled tensor ``x`` -> scale and shift, (G, C, 1) each."""
    shape = (x.groups, x.n_tiles, x.shape[1])
    last_tile = x.grouped()[:, -1, :, 0, : x.length - (x.n_tiles - 1) * x.tile_w]
    mean, var = gln_from_tile_moments(tile_mean.reshape(shape), tile_sum_sq.reshape(shape), x.tile_w, last_tile)
    return step.affine(mean, var)


def split_channels(step: SplitChannels, x: TiledTensor | PerChannelAffine) -> dict[str, Stored]:
    """A tiled tensor (or a pending affine of one) cut into consecutive channel blocks: views of its
    tiles (with their slice of the affine), as ``SplitChannels`` cuts whole tensors."""
    bounds = np.cumsum((0,) + step.sizes)
    source = _tiled_source(x)
    out: dict[str, Stored] = {}
    for name, lo, hi in zip(step.outputs, bounds[:-1], bounds[1:], strict=False):
        part = TiledTensor(source.tiles[:, lo:hi], source.groups, source.length)
        out[name] = (
            PerChannelAffine(part, x.scale[:, lo:hi], x.shift[:, lo:hi]) if isinstance(x, PerChannelAffine) else part
        )
    return out


def split_sources_tiled(x: TiledTensor, n_src: int) -> TiledTensor:
    """``SplitSources`` on tiles: (n_tiles, n_src * N, 1, W), source-major channels -> (n_src *
    n_tiles, N, 1, W), one group per source (one copy)."""
    tiles = x.tiles.reshape(x.n_tiles, n_src, -1, 1, x.tile_w).transpose(1, 0, 2, 3, 4)
    return TiledTensor(np.ascontiguousarray(tiles).reshape(n_src * x.n_tiles, -1, 1, x.tile_w), n_src, x.length)


def activate_tiled(step: ActivateMask, x: TiledTensor, in_place: bool = False) -> TiledTensor:
    """``ActivateMask`` on tiles (sources are the groups), in place if asked; the padding columns
    are zeroed again (a sigmoid or softmax of zero is not zero)."""
    tiles = step.activate(x.grouped(), in_place).reshape(x.tiles.shape)
    return TiledTensor.from_backend(tiles, x.groups, x.length)


def assemble_tiled_blocks(partials: list[list[TiledTensor]]) -> TiledTensor:
    """``AssembleBlocks`` on tiles, with its own arithmetic (``assemble_rows``). Shape: partials[k][j]
    tiles (B, C_k, 1, W) -> (B, sum C_k, 1, W); the zero padding columns stay zero."""
    first = partials[0][0]
    tiles = np.empty(
        (first.tiles.shape[0], sum(row[0].tiles.shape[1] for row in partials), 1, first.tile_w), np.float32
    )
    assemble_rows([[part.tiles for part in row] for row in partials], tiles)
    return TiledTensor(tiles, first.groups, first.length)


# -- the tiled forms ----------------------------------------------------------------------------


@_registers(TILED, Normalize)
def _normalize_tiled(step: Normalize, store: dict, dying) -> dict | None:
    return {step.output: global_norm_affine(step, store[step.input])} if step.norm is NormType.GLN else None


@_registers(TILED, GlnFold)
def _gln_fold_tiled(step: GlnFold, store: dict, dying) -> dict | None:
    if not isinstance(store[step.input], TiledTensor):
        return None
    return gln_affine_from_moments(step, store[step.input], store[step.tile_mean], store[step.tile_sum_sq])


@_registers(TILED, Alias)
def _alias_tiled(step: Alias, store: dict, dying) -> dict:
    return {step.output: store[step.input]}


@_registers(TILED, AddTensors)
def _add_tiled(step: AddTensors, store: dict, dying) -> dict | None:
    """A skip sum on the tiles, into a dying input's tiles where nothing else holds them (a fresh
    array that size costs its page faults, more than the add)."""
    a, b = store[step.a], store[step.b]
    if not (isinstance(a, TiledTensor) and isinstance(b, TiledTensor) and a.tiles.shape == b.tiles.shape):
        return None
    into = a.tiles if step.a in dying and not _shared(a.tiles, step.a, store) else None
    return {step.output: TiledTensor(np.add(a.tiles, b.tiles, out=into), a.groups, a.length)}  # 0 + 0 padding


@_registers(TILED, SplitSources)
def _split_sources_tiled(step: SplitSources, store: dict, dying) -> dict | None:
    x = store[step.input]
    return {step.output: split_sources_tiled(x, step.n_src)} if isinstance(x, TiledTensor) and x.groups == 1 else None


@_registers(TILED, ActivateMask)
def _activate_tiled(step: ActivateMask, store: dict, dying) -> dict | None:
    x = store[step.input]
    if not isinstance(x, TiledTensor):
        return None
    return {step.output: activate_tiled(step, x, step.input in dying and not _shared(x.tiles, step.input, store))}


@_registers(TILED, SplitChannels)
def _split_channels_tiled(step: SplitChannels, store: dict, dying) -> dict | None:
    return split_channels(step, store[step.input]) if _tiled_source(store[step.input]) is not None else None


@_registers(TILED, AssembleBlocks)
def _assemble_tiled(step: AssembleBlocks, store: dict, dying) -> dict | None:
    partials = [[store[name] for name in row] for row in step.partials]
    return (
        {step.output: assemble_tiled_blocks(partials)} if _same_tiling(*(x for row in partials for x in row)) else None
    )


def run_tiled(step: HostWork, store: dict[str, Stored], dying: frozenset[str] | set[str] = frozenset()) -> dict:
    """``step`` on the stitched executor's store: its tiled form where it has one and its inputs
    are tiled, else its whole-tensor form on whole inputs. ``dying``: the step's reads no later
    step reads."""
    form = TILED.get(type(step))
    produced = form(step, store, dying) if form is not None else None
    if produced is not None:
        return produced
    for name in step.reads:
        store[name] = whole(store[name])
    return step.apply(store)


# -- the streaming forms ------------------------------------------------------------------------


def _new_frames(executor, step: HostWork) -> tuple[int, int] | None:
    """(first, available): the output frames the step has made and the input frames there are."""
    if any(name not in executor.frames for name in step.reads):
        return None
    return executor.made.get(step.writes[0], 0), min(executor.frames[name].end for name in step.reads)


def _emit_all(executor, produced: Mapping[str, np.ndarray]) -> None:
    for name, frames in produced.items():
        executor.emit(name, np.asarray(frames), frames.shape[0], frames.shape[1])


@_registers(STREAMING, FitLength)
def _fit_length_streaming(executor, step: FitLength) -> None:
    """The stream has no end to fit to: samples pass through (``finish`` cuts the end)."""
    span = _new_frames(executor, step)
    if span is not None and span[1] > span[0]:
        _emit_all(executor, {step.output: executor.frames[step.input].window(*span)})


@_registers(STREAMING, Normalize)
def _normalize_streaming(executor, step: Normalize) -> None:
    """cgLN with the running sums of all earlier frames; cLN per frame (gLN never streams)."""
    span = _new_frames(executor, step)
    if span is None or span[1] <= span[0]:
        return
    x = executor.frames[step.input].window(*span)
    if step.norm is NormType.CGLN:
        normed, executor.sums[step.output] = host_math.cumulative_norm(
            x, step.gamma, step.beta, span[0], executor.sums.get(step.output)
        )
        _emit_all(executor, {step.output: normed})
    else:
        _emit_all(executor, step.apply({step.input: x}))


@_registers(STREAMING, OverlapAdd)
def _overlap_add_streaming(executor, step: OverlapAdd) -> None:
    """New frames [f0, f1) of (G, L, F) -> samples [f0*S, f1*S) become final; the rest of the
    last frames' overlap waits in a tail (``executor.tails``)."""
    if step.input not in executor.frames:
        return
    stride = step.stride
    f0, f1 = executor.made.get(step.output, 0) // stride, executor.frames[step.input].end
    if f1 <= f0:
        return
    frames = executor.frames[step.input].window(f0, f1)  # (G, L, n)
    acc = overlap_add(frames, stride)
    tail = executor.tails.get(step.output)
    if tail is not None:
        acc[..., : tail.shape[-1]] += tail
    done = frames.shape[-1] * stride
    executor.tails[step.output] = acc[..., done:].copy()
    executor.emit(step.output, acc[..., :done], frames.shape[0], 1)


def run_streaming(executor, step: HostWork) -> None:
    """``step`` on the streaming executor's frames: its own streaming form, or its whole-tensor
    form on the frames new since the last hop (right for a step whose output frame depends on the
    same input frame only: masks, sums, splits)."""
    form = STREAMING.get(type(step))
    if form is not None:
        form(executor, step)
        return
    span = _new_frames(executor, step)
    if span is not None and span[1] > span[0]:
        _emit_all(executor, step.apply({name: executor.frames[name].window(*span) for name in step.reads}))


def _step_classes(base: type = HostWork) -> list[type]:
    found = []
    for sub in base.__subclasses__():
        found += [sub] + _step_classes(sub)
    return found


def check_forms() -> None:
    """Each host step class's ``tiled_form`` / ``stream_form`` says "own" exactly where a form is
    registered here (a bug otherwise, raised at import)."""
    for cls in _step_classes():
        for attribute, registry in (("tiled_form", TILED), ("stream_form", STREAMING)):
            if (getattr(cls, attribute) == "own") != (cls in registry):
                raise RuntimeError(
                    f"host step {cls.__name__}: {attribute} is {getattr(cls, attribute)!r} but "
                    f"runtime.host_forms {'has' if cls in registry else 'has no'} form for it"
                )


check_forms()
