"""Which executor runs a command's cases (``--executor``, ``--jobs``, ``--ray-address``,
``--max-retries``) and opening it; above ``base``, ``local`` and ``ray_cluster``, so none of them
imports another's user."""

from __future__ import annotations

import dataclasses

from ..errors import UserError
from .base import CaseExecutor
from .local import LocalExecutor
from .ray_cluster import RayExecutor, import_ray

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
            raise UserError(
                "--jobs is for --executor local; a Ray cluster runs as many cases at once as its nodes "
                "offer CPUs (evaluate) or hailo_sdk units (compile)"
            )
        if self.ray_address and self.name != "ray":
            raise UserError("--ray-address needs --executor ray")
        if self.name == "ray":  # before any work: a missing extra is said at once
            import_ray()

    def to_json(self) -> dict:
        return {"executor": self.name, "jobs": self.jobs, "ray_address": self.ray_address}


def open_executor(options: ExecutorOptions) -> CaseExecutor:
    if options.name == "ray":
        return RayExecutor(options.ray_address, options.max_retries)
    return LocalExecutor(options.jobs)
