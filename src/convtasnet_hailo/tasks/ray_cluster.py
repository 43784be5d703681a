"""Cases on a Ray cluster (``--executor ray [--ray-address ADDR]``; ``pip install 'convtasnet-hailo[ray]'``).

Each task becomes a Ray task with the resources it declares: a compile case asks for one unit
of the custom ``hailo_sdk`` resource, which only nodes with the Dataflow Compiler offer
(``ray start --address ADDR --resources '{"hailo_sdk": N}'``), an evaluation for one CPU. A task
whose worker process or node dies is retried ``max_retries`` times by Ray (system failures);
one that raises is not retried (it would raise again) and comes back as a ``TaskFailure``, as
does one lost on every attempt. Files travel in the task's arguments and result (Ray's object
store), so the nodes need no shared folder.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..errors import UserError
from .base import CaseExecutor, Task, TaskFailure

RAY_MISSING = "--executor ray needs Ray: pip install 'convtasnet-hailo[ray]' (or: pip install ray)"


def import_ray():
    try:
        import ray
    except ImportError:
        raise UserError(RAY_MISSING) from None
    return ray


class RayExecutor(CaseExecutor):
    name = "ray"
    ships_files = True

    def __init__(self, address: str | None = None, max_retries: int = 2) -> None:
        self.ray = import_ray()
        self.max_retries = max_retries
        self._started_here = False
        self._shared: dict[str, Any] = {}
        if not self.ray.is_initialized():
            try:
                # No address: a cluster of this machine alone, started here and stopped on close.
                self.ray.init(
                    address=address,
                    include_dashboard=False,
                    log_to_driver=False,
                    logging_level="ERROR",
                    configure_logging=True,
                )
            except ConnectionError as exc:
                raise UserError(
                    f"cannot reach the Ray cluster at {address}: {exc}; start it with `ray start --head` "
                    "and pass the address it prints"
                ) from None
            self._started_here = True

    def share(self, path) -> Any:
        """One object in the object store per file, however many tasks read it (calibration sets)."""
        from pathlib import Path

        key = str(Path(path).resolve())
        if key not in self._shared:
            self._shared[key] = self.ray.put(Path(path).read_bytes())
        return self._shared[key]

    def put(self, value: Any) -> Any:
        return self.ray.put(value)  # a task argument that is a reference arrives as the value itself

    def _check_resources(self, tasks: list[Task]) -> None:
        """A resource no node offers would leave its tasks pending for ever: refuse at once."""
        offered = self.ray.cluster_resources()
        for task in tasks:
            for resource, amount in task.resources.items():
                if offered.get(resource, 0) < amount:
                    raise UserError(
                        f"no node of the Ray cluster offers {amount:g} {resource} (the cluster has "
                        f"{offered.get(resource, 0):g}): start nodes with `ray start --address ADDR --resources "
                        f"'{{\"{resource}\": 1}}'`"
                        if resource not in ("CPU", "GPU")
                        else f"the Ray cluster has {offered.get(resource, 0):g} {resource}, a case needs {amount:g}"
                    )

    def run(self, tasks: list[Task]) -> Iterator[tuple[Task, Any]]:
        if not tasks:
            return
        self._check_resources(tasks)
        ray = self.ray
        remote = ray.remote(_call)
        pending = {}
        for task in tasks:
            resources = dict(task.resources)
            options = {
                "num_cpus": resources.pop("CPU", 0),
                "max_retries": self.max_retries,
                "retry_exceptions": False,
                "name": task.key,
            }
            if resources:
                options["resources"] = resources
            pending[remote.options(**options).remote(task.fn, *task.args)] = task
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                task = pending.pop(ref)
                yield task, self._result(task, ref)

    def _result(self, task: Task, ref) -> Any:
        from ray import exceptions

        try:
            return self.ray.get(ref)
        except exceptions.RayTaskError as exc:  # the case raised on its worker
            cause = exc.cause if getattr(exc, "cause", None) is not None else exc
            if isinstance(cause, UserError):
                raise cause from None
            return TaskFailure(task.key, type(cause).__name__, str(cause).splitlines()[0] if str(cause) else "")
        except (
            exceptions.WorkerCrashedError,
            exceptions.NodeDiedError,
            exceptions.ObjectLostError,
            exceptions.TaskUnschedulableError,
            exceptions.RaySystemError,
        ) as exc:
            return TaskFailure(
                task.key,
                type(exc).__name__,
                str(exc).splitlines()[0] if str(exc) else "",
                attempts=self.max_retries + 1,
            )

    def close(self) -> None:
        if self._started_here and self.ray.is_initialized():
            self.ray.shutdown()


def _call(fn, *args):
    return fn(*args)
