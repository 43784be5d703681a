"""The executor seam: tasks in, (task, result or failure) out, as each case finishes.

The whole contract:
- A :class:`Task` is one case: a key (its run tag or mixture ID), a module-level function with
  picklable arguments (Ray ships both to another machine), and the resources one case needs on a
  node (``{"hailo_sdk": 1}`` for a Dataflow Compiler run, ``{"CPU": 1}`` for an evaluation).
- ``run(tasks)`` yields ``(task, result)`` in completion order; a case that raised, or whose
  worker was lost more times than the executor retries, yields a :class:`TaskFailure` instead.
  Nothing is dropped: every task given comes back exactly once.
- Results are written by the caller (the driver) as they arrive, so an interrupted run keeps
  what finished and ``--resume`` skips it.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Iterator, Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class Task:
    key: str
    fn: Callable[..., Any]
    args: tuple = ()
    resources: Mapping[str, float] = dataclasses.field(default_factory=lambda: {"CPU": 1})


@dataclasses.dataclass(frozen=True)
class TaskFailure:
    """A case that did not produce a result: ``error_type`` is the exception's class name
    (``WorkerCrashedError`` when its worker died on every attempt)."""

    key: str
    error_type: str
    message: str
    attempts: int = 1


class CaseExecutor(abc.ABC):
    name: str
    #: Whether tasks run where the driver's files are not (they travel in the task, ``share``).
    ships_files: bool = False

    def share(self, path) -> Any:
        """A file's contents as a task argument many tasks may take (the executor stores it once)."""
        from pathlib import Path

        return Path(path).read_bytes()

    def put(self, value: Any) -> Any:
        """A large argument many tasks take (a model), stored once; passed as a task's argument."""
        return value

    @abc.abstractmethod
    def run(self, tasks: list[Task]) -> Iterator[tuple[Task, Any]]:
        """Runs every task; yields ``(task, result or TaskFailure)`` as each finishes."""

    def close(self) -> None:  # noqa: B027  (a hook; a local executor holds nothing)
        """Releases pools or the cluster connection."""

    def __enter__(self) -> CaseExecutor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
