"""Task functions for the executor tests: they run in Ray worker processes, so they live in a module."""

import os
from pathlib import Path

from convtasnet_hailo.errors import UserError


def square(x: int) -> int:
    return x * x


def crash_once(marker: str) -> str:
    """Kills its worker process the first time (a lost worker), succeeds when retried."""
    if not Path(marker).exists():
        Path(marker).write_text("crashed once")
        os._exit(1)
    return "done on retry"


def always_crash() -> None:
    os._exit(1)


def raise_value_error() -> None:
    raise ValueError("bad case")


def raise_user_error() -> None:
    raise UserError("the whole run's input is wrong")
