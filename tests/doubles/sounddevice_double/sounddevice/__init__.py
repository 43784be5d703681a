"""TEST DOUBLE of python-sounddevice's callback streams (``InputStream``, ``OutputStream``,
``query_devices``, ``CallbackFlags``), as its documentation describes them
(https://python-sounddevice.readthedocs.io, "Callback streams").

Not PortAudio: the input is a recording (``SOUNDDEVICE_DOUBLE_INPUT``, a WAV at the stream's
rate), delivered block by block from a thread at real-time pace (``blocksize / samplerate``
seconds per block) to ``callback(indata, frames, time, status)``; the output stream calls
``callback(outdata, frames, time, status)`` at the same pace and appends what it is given to
``PLAYED`` (per stream). What it keeps from sounddevice: blocks of ``blocksize`` frames shaped
(frames, channels) float32, a ``CallbackFlags`` status on every call, the streams as context
managers that start on enter and stop (joining their thread) on exit, ``sd.CallbackStop``
ending a stream from its callback, and ``query_devices(kind=...)`` raising when there is no
such device. The input ends with the recording (then it delivers silence, as an idle
microphone does). Environment: ``SOUNDDEVICE_DOUBLE_INPUT`` (the recording),
``SOUNDDEVICE_DOUBLE_OVERFLOW`` (comma-separated input block indices reported with
``input_overflow``, as PortAudio reports a block the host was too slow to take),
``SOUNDDEVICE_DOUBLE_INTERRUPT_AFTER`` (send the main thread a KeyboardInterrupt, as Ctrl-C
would, after that many input blocks), ``SOUNDDEVICE_DOUBLE_SIGTERM_AFTER`` (send the process a
SIGTERM, as a process manager stopping it would, after that many input blocks),
``SOUNDDEVICE_DOUBLE_STALL_AFTER`` (after that many input
blocks the callback is never called again while the stream stays open, as PortAudio does when a
USB card is unplugged: its stream thread stops delivering; python-sounddevice issue #283),
``SOUNDDEVICE_DOUBLE_SPEED`` (pace multiplier, default 1).
Lives under tests/; only tests put it on sys.path.
"""

from __future__ import annotations

import _thread
import os
import signal
import threading
import time

import numpy as np

__version__ = "0.5.1-test-double"
PLAYED: list[np.ndarray] = []  # one array per output stream, (frames, channels)


class PortAudioError(Exception):
    pass


class CallbackStop(Exception):
    pass


class CallbackFlags:
    def __init__(self, input_overflow: bool = False, output_underflow: bool = False):
        self.input_overflow, self.output_underflow = input_overflow, output_underflow
        self.input_underflow = self.output_overflow = self.priming_output = False

    def __bool__(self) -> bool:
        return self.input_overflow or self.output_underflow


def query_devices(device=None, kind=None):
    if kind == "input" and not os.environ.get("SOUNDDEVICE_DOUBLE_INPUT"):
        raise PortAudioError("Error querying device -1")
    return {
        "name": f"test double {kind or 'device'}",
        "max_input_channels": 1,
        "max_output_channels": 2,
        "default_samplerate": 8000.0,
    }


class _Stream:
    def __init__(self, samplerate=None, blocksize=None, channels=1, dtype="float32", callback=None, **_):
        if not blocksize or callback is None:
            raise ValueError("the double serves callback streams with a fixed blocksize only")
        self.samplerate, self.blocksize, self.channels, self.callback = samplerate, blocksize, channels, callback
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.blocks = 0

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=10)
        return False

    @property
    def active(self) -> bool:
        return self._thread.is_alive()

    def _pace(self, started: float) -> None:
        speed = float(os.environ.get("SOUNDDEVICE_DOUBLE_SPEED", "1"))
        due = started + self.blocks * self.blocksize / self.samplerate / speed
        self._stop.wait(max(0.0, due - time.monotonic()))


class InputStream(_Stream):
    def _run(self) -> None:
        import soundfile

        audio, rate = soundfile.read(os.environ["SOUNDDEVICE_DOUBLE_INPUT"], dtype="float32", always_2d=True)
        if rate != self.samplerate:
            raise PortAudioError(f"Invalid sample rate {self.samplerate} (the recording is {rate} Hz)")
        overflow = {int(i) for i in os.environ.get("SOUNDDEVICE_DOUBLE_OVERFLOW", "").split(",") if i.strip()}
        interrupt = int(os.environ.get("SOUNDDEVICE_DOUBLE_INTERRUPT_AFTER", "0") or 0)
        stall = int(os.environ.get("SOUNDDEVICE_DOUBLE_STALL_AFTER", "0") or 0)
        started = time.monotonic()
        while not self._stop.is_set():
            if stall and self.blocks >= stall:
                self._stop.wait()  # open, silent: no callback until the stream is stopped
                return
            first = self.blocks * self.blocksize
            block = np.zeros((self.blocksize, self.channels), np.float32)
            piece = audio[first : first + self.blocksize, : self.channels]
            block[: len(piece)] = piece
            try:
                self.callback(block, self.blocksize, None, CallbackFlags(input_overflow=self.blocks in overflow))
            except CallbackStop:
                return
            self.blocks += 1
            if interrupt and self.blocks == interrupt:
                _thread.interrupt_main()
            if self.blocks == int(os.environ.get("SOUNDDEVICE_DOUBLE_SIGTERM_AFTER", "0") or 0):
                os.kill(os.getpid(), signal.SIGTERM)
            self._pace(started)


class OutputStream(_Stream):
    def _run(self) -> None:
        played = []
        PLAYED.append(np.zeros((0, self.channels), np.float32))
        index = len(PLAYED) - 1
        started = time.monotonic()
        while not self._stop.is_set():
            out = np.zeros((self.blocksize, self.channels), np.float32)
            try:
                self.callback(out, self.blocksize, None, CallbackFlags())
            except CallbackStop:
                break
            played.append(out.copy())
            PLAYED[index] = np.concatenate(played)
            self.blocks += 1
            self._pace(started)
