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
from typing import Any, Callable, Iterator, Mapping

from ..errors import UserError


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

    def close(self) -> None:
        """Releases pools or the cluster connection."""

    def __enter__(self) -> "CaseExecutor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


EXECUTORS = ("local", "ray")


@dataclasses.dataclass(frozen=True)
class ExecutorOptions:
    """``--executor``, ``--jobs``, ``--ray-address``, ``--max-retries`` as one value."""

    name: str = "local"
    jobs: int = 1
    ray_address: str | None = None
    max_retries: int = 2

    def __post_init__(self) -> None:
        if self.name not in EXECUTORS:
            raise UserError(f"unknown executor {self.name!r}: use one of {', '.join(EXECUTORS)}")
        if self.jobs < 1:
            raise UserError(f"--jobs {self.jobs}: use 1 or more")
        if self.max_retries < 0:
            raise UserError(f"--max-retries {self.max_retries}: use 0 or more")
        if self.name == "ray" and self.jobs != 1:
            raise UserError("--jobs is for --executor local; a Ray cluster runs as many cases at once as its nodes "
                            "offer CPUs (evaluate) or hailo_sdk units (compile)")
        if self.ray_address and self.name != "ray":
            raise UserError("--ray-address needs --executor ray")
        if self.name == "ray":  # before any work: a missing extra is said at once
            from .ray_cluster import import_ray

            import_ray()

    def to_json(self) -> dict:
        return {"executor": self.name, "jobs": self.jobs, "ray_address": self.ray_address}


def open_executor(options: ExecutorOptions) -> CaseExecutor:
    if options.name == "ray":
        from .ray_cluster import RayExecutor

        return RayExecutor(options.ray_address, options.max_retries)
    from .local import LocalExecutor

    return LocalExecutor(options.jobs)
