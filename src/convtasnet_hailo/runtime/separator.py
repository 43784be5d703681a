"""A mixture in, separated sources out, through the full-chain stage plan and a backend."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from ..errors import UserError
from ..plan.stage_plan import StagePlan, step_outputs
from ..plan.stages import Stage
from .executor import StitchedExecutor

SeparateFn = Callable[[np.ndarray], np.ndarray]


class StitchedSeparator:
    """Runs the model's full-chain plan tile by tile. Shape: (T,) -> (n_src, T)."""

    def __init__(self, model, backend, tile_w: int, plan: StagePlan | None = None):
        """``plan``: the model's full-chain plan (default: built with the default options);
        ``model`` None: a plan read from an export, run without the model (no torch)."""
        if plan is None:
            from ..plan import build_plan

            plan = build_plan(model)
        self.model, self.plan, self.config = model, plan, plan.config
        self.executor = StitchedExecutor(self.plan, backend, tile_w)

    @property
    def n_steps(self) -> int:
        return len(self.plan.steps)

    def __call__(self, wav: np.ndarray, on_step: Callable[[], None] | None = None) -> np.ndarray:
        """A NaN or Inf anywhere in the output is an error naming the step that made it first."""
        outputs = self.executor.run(
            {"wav": np.asarray(wav, np.float32)[None, None]}, keep=("final_output",), on_step=on_step
        )
        final = outputs["final_output"][:, 0]
        if not np.isfinite(final).all():
            raise UserError(
                f"{self.first_non_finite(wav)} holds NaN/Inf values (the model overflows on this input: "
                "check the checkpoint's weights); nothing is written from it"
            )
        return final

    def first_non_finite(self, wav: np.ndarray) -> str:
        """Runs ``wav`` again, watching every tensor (only after the output was found non-finite:
        the check costs nothing on a good run), and names the first step whose output is not finite."""
        producer = {name: step for step in self.plan.steps for name in step_outputs(step)}

        def watch(name: str, tensor: np.ndarray) -> None:
            if not np.isfinite(tensor).all():
                raise _NonFinite(name)

        try:
            self.executor.run({"wav": np.asarray(wav, np.float32)[None, None]}, observer=watch)
        except _NonFinite as found:
            step = producer.get(found.tensor)
            what = f"stage {step.name}" if isinstance(step, Stage) else f"host step {type(step).__name__}"
            return f"{what} (its output {found.tensor})"
        return "the stitched output"


class _NonFinite(Exception):
    def __init__(self, tensor: str):
        super().__init__(tensor)
        self.tensor = tensor


def reference_separation(model, wav: np.ndarray) -> np.ndarray:
    """The baseline model's own output. Shape: (T,) -> (n_src, T)."""
    import torch

    with torch.no_grad():
        return model(torch.from_numpy(np.asarray(wav, np.float32)[None]))[0].numpy()


def _ramp_window(length: int, fade_in: int, fade_out: int) -> np.ndarray:
    window = np.ones(length, np.float64)
    if fade_in:
        window[:fade_in] = np.linspace(0, 1, fade_in + 2)[1:-1]
    if fade_out:
        window[length - fade_out :] = np.linspace(1, 0, fade_out + 2)[1:-1]
    return window


def _best_order(previous: np.ndarray, current: np.ndarray) -> tuple[int, ...]:
    """Order of ``current``'s sources that correlates best with ``previous`` on the overlap.
    Shapes: (n_src, overlap) each."""
    n = len(previous)
    corr = np.array([[np.dot(previous[i], current[j]) for j in range(n)] for i in range(n)])
    return max(itertools.permutations(range(n)), key=lambda p: sum(corr[i, p[i]] for i in range(n)))


def segment_starts(length: int, segment: int, overlap: int) -> list[int]:
    """Starts of overlapping segments covering ``length`` samples; the last one ends at the end."""
    hop = segment - overlap
    starts = list(range(0, max(length - segment, 0), hop))
    starts.append(max(length - segment, 0))
    return sorted(set(starts))


class _Window:
    """The input samples from ``base`` on, pulled from ``blocks`` (successive (k,) float32
    arrays) as far as a segment needs them and dropped once written out: O(segment) samples."""

    def __init__(self, blocks: Iterable[np.ndarray]):
        self._blocks, self.base = iter(blocks), 0
        self._held = np.zeros(0, np.float32)

    def upto(self, stop: int) -> np.ndarray:
        """Samples [base, stop) (fewer where the input ends first)."""
        parts = [self._held]
        held = len(self._held)
        while self.base + held < stop and (block := next(self._blocks, None)) is not None:
            parts.append(np.asarray(block, np.float32))
            held += len(block)
        if len(parts) > 1:
            self._held = np.concatenate(parts)
        return self._held[: stop - self.base]

    def drop(self, upto: int) -> None:
        self._held, self.base = self._held[upto - self.base :], upto


def stitched_blocks(
    separate: SeparateFn,
    blocks: Iterable[np.ndarray],
    length: int,
    segment: int,
    overlap: int,
    on_segment: Callable[[], None] | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """:func:`separate_segmented` on an input of ``length`` samples given as successive blocks,
    yielding ``(mixture, estimates)`` pairs, shapes (k,) and (n_src, k) float32, in order, each as
    soon as no later segment touches it: the samples held are O(segment), whatever ``length``.
    Every output sample is computed as the whole-array version computes it (the same additions
    in the same order), so the concatenated blocks equal its result exactly."""
    if not 0 <= overlap < segment:
        raise ValueError(f"overlap {overlap} must be in [0, segment {segment})")
    starts = segment_starts(length, segment, overlap)
    window = _Window(blocks)
    output = weight = None  # float64 sums over [window.base, end of the last segment)
    previous: tuple[int, np.ndarray] | None = None
    for index, start in enumerate(starts):
        stop = min(start + segment, length)
        wav = window.upto(stop)
        estimate = separate(wav[start - window.base :]).astype(np.float64)
        if output is None:
            output, weight = np.zeros((len(estimate), 0), np.float64), np.zeros(0, np.float64)
        if start > window.base:  # nothing later reaches before ``start``: final
            done = start - window.base
            yield wav[:done], (output[:, :done] / weight[:done]).astype(np.float32)
            output, weight = output[:, done:], weight[done:]
            window.drop(start)
        grow = stop - window.base - weight.shape[0]
        output = np.concatenate([output, np.zeros((len(output), grow))], axis=1)
        weight = np.concatenate([weight, np.zeros(grow)])
        estimate, window_ramp = _placed(estimate, previous, start, stop, starts[index + 1 : index + 2])
        output[:, start - window.base :] += estimate * window_ramp
        weight[start - window.base :] += window_ramp
        previous = (start, estimate)
        if on_segment is not None:
            on_segment()
    yield window.upto(length), (output / weight).astype(np.float32)


def _placed(
    estimate: np.ndarray, previous: tuple[int, np.ndarray] | None, start: int, stop: int, following: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """One segment's sources reordered to match the previous segment's on their overlap, and its
    crossfade window (ramps over the overlaps before and after). Shapes: (n_src, k), (k,)."""
    fade_in = 0
    if previous is not None:
        prev_start, prev_estimate = previous
        shared = slice(start, min(prev_start + len(prev_estimate[0]), stop))
        order = _best_order(
            prev_estimate[:, shared.start - prev_start : shared.stop - prev_start],
            estimate[:, : shared.stop - start],
        )
        estimate = estimate[list(order)]
        fade_in = shared.stop - start
    fade_out = max(0, stop - following[0]) if following else 0
    return estimate, _ramp_window(stop - start, fade_in, fade_out)


def separate_segmented(
    separate: SeparateFn, wav: np.ndarray, segment: int, overlap: int, on_segment: Callable[[], None] | None = None
) -> np.ndarray:
    """Separates overlapping segments, reorders each segment's sources to match the previous
    one by correlation on their overlap, and crossfades them linearly. Shape (T,) -> (n_src, T).
    The whole output at once (the Python API); `separate` writes :func:`stitched_blocks`' blocks
    as they come, the same numbers.

    With gLN every segment has its own statistics, so results differ slightly from a
    whole-file pass; models without global statistics give identical results away from joins.
    """
    parts = [estimates for _, estimates in stitched_blocks(separate, [wav], len(wav), segment, overlap, on_segment)]
    return np.concatenate(parts, axis=1)
