"""Peak resident memory of this process while a block runs (the kernel's own high-water mark)."""

from __future__ import annotations

import threading


def _status_bytes(field: str) -> int:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in bytes; 0 where there is none."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _reset_peak() -> bool:
    """Resets the kernel's peak-RSS counter (``VmHWM``) of this process: writing 5 to
    ``/proc/self/clear_refs`` (Linux >= 4.0). False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


class PeakMemory:
    """The peak resident set size while active: the kernel's own high-water mark, reset on entry
    (exact, and no sampling thread taking the GIL from the timed code every few milliseconds,
    which showed as host time). Where the counter cannot be reset, the RSS is sampled every
    ``interval`` seconds instead; ``method`` says which."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        self.method = ""

    def __enter__(self) -> PeakMemory:
        self.peak = _status_bytes("VmRSS")
        self._thread = None
        if _reset_peak():
            self.method = "VmHWM after clear_refs"
        else:
            self.method = f"VmRSS sampled every {self.interval * 1e3:g} ms"
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, _status_bytes("VmRSS"))

    def __exit__(self, *exc) -> None:
        if self._thread is None:
            self.peak = max(self.peak, _status_bytes("VmHWM"))
            return
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _status_bytes("VmRSS"))
