"""Cases on this machine: ``jobs`` threads (each case's function may itself start a process,
as a compile worker in the SDK's Python does)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

from ..errors import UserError
from .base import CaseExecutor, Task, TaskFailure


class LocalExecutor(CaseExecutor):
    name = "local"

    def __init__(self, jobs: int = 1) -> None:
        self.jobs = max(1, jobs)

    def run(self, tasks: list[Task]) -> Iterator[tuple[Task, Any]]:
        if self.jobs == 1:  # in this thread: Ctrl-C stops between cases, torch keeps its threads
            for task in tasks:
                yield task, _call(task)
            return
        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            futures = {pool.submit(_call, task): task for task in tasks}
            for future in as_completed(futures):
                yield futures[future], future.result()


def _call(task: Task) -> Any:
    try:
        return task.fn(*task.args)
    except UserError:
        raise  # the whole run's input is wrong: stop, as before
    except Exception as exc:  # one case failed: recorded, the others go on
        return TaskFailure(task.key, type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
