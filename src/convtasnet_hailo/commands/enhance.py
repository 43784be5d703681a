"""`enhance`: `separate` for a one-output (n_src=1) model: ``<stem>_enhanced.wav`` per input,
written at the input's speech level and polarity unless ``raw_output``, and
``enhance_run.json``."""

from __future__ import annotations

from ..errors import UserError
from .separate import Request, SeparateResult, separate_files

__all__ = ["Request", "SeparateResult", "run", "write"]


def run(request: Request) -> SeparateResult:
    """One enhanced file per input; a model with more than one output is refused first."""
    n_src = request.spec.config.n_src
    if n_src != 1:
        raise UserError(
            f"{request.spec.source.description} separates {n_src} sources; `enhance` is for one-output "
            "(n_src=1) models: use `separate` for this one"
        )
    return separate_files(request, "enhance", "enhanced")


def write(result: SeparateResult) -> None:
    """Nothing left to write: each file and the run JSON were written as they finished."""
