"""The one seam between the engine and the commands: a :class:`~.spec.RunSpec` (model, plan
options, backend options, tile width) and :func:`~.run.open_run`, which opens plan, backend and
executor from it. Every command that runs a model opens its run here."""

from .run import Run, open_run
from .spec import RunSpec

__all__ = ["Run", "RunSpec", "open_run"]
