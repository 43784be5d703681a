"""The machine's limits, checked before work whose size is known up front.

A length the user typed (``--length 1000000000``, ``--seconds 1e9``) or a file on disk says how
much memory the run will need before any of it is allocated; a run that cannot fit is refused
with both numbers instead of dying in the allocator (or the kernel's OOM killer) later.
"""

from __future__ import annotations

import os

from .errors import UserError


def available_memory_bytes() -> int | None:
    """Memory a new allocation can get: MemAvailable plus free swap (Linux), else the physical
    memory; None where neither is known."""
    try:
        with open("/proc/meminfo") as handle:
            fields = {
                line.split(":")[0]: int(line.split()[1]) * 1024
                for line in handle
                if line.count(":") == 1 and line.split()[1].isdigit()
            }
        if "MemAvailable" in fields:
            return fields["MemAvailable"] + fields.get("SwapFree", 0)
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def gib(n_bytes: float) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20)):
        if n_bytes >= size:
            return f"{n_bytes / size:.1f} {unit}"
    return f"{n_bytes / 2**10:.0f} KiB"


def refuse_unless_fits(need_bytes: float, what: str, fix: str) -> None:
    """One line when ``need_bytes`` (a lower bound of what ``what`` allocates) exceeds the memory
    available now; nothing when it fits or the machine does not say."""
    available = available_memory_bytes()
    if available is not None and need_bytes > available:
        raise UserError(f"{what} needs at least {gib(need_bytes)} of memory and {gib(available)} is available; {fix}")
