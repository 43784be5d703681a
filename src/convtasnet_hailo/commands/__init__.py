"""One module per command, each the same shape: a frozen ``Request`` (plain typed values, built
by ``cli/`` or the API), ``run(request) -> Result`` (the work; files a long run must not lose are
written as they finish) and ``write(result)`` (the run's records: JSON, TSV, figures). A
``Result`` is a frozen record with ``exit_status`` (0 done, 1 a verdict failed) and ``lines()``,
the summary the CLI prints; progress goes to the module loggers. Nothing here parses arguments or
prints."""

from __future__ import annotations

from typing import Protocol


class Result(Protocol):
    """What every command's ``run`` returns."""

    @property
    def exit_status(self) -> int: ...

    def lines(self) -> list[str]: ...
