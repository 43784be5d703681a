"""`stream --live`: a sound card's input pushed hop by hop as it arrives, the sources written as
they come (float WAVs, whole at any moment) and optionally played back."""

from __future__ import annotations

import contextlib
import logging
import queue
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import UserError

log = logging.getLogger(__name__)


def sounddevice_module():
    """sounddevice with an input device, or the one-line reason there is none."""
    try:
        import sounddevice
    except (ImportError, OSError) as error:
        raise UserError(
            f"--live needs the sounddevice package and PortAudio ({error}): "
            "pip install 'convtasnet-hailo[live]' and apt install libportaudio2"
        ) from None
    try:
        sounddevice.query_devices(kind="input")
    except Exception as error:  # PortAudio reports a missing device with its own exception types
        raise UserError(f"no sound card input found ({error}); stream a file instead") from None
    return sounddevice


@contextlib.contextmanager
def deferred_ctrl_c():
    """SIGINT and SIGTERM (a process manager's stop) set an event the live loop reads between hops
    (a hop is never cut in half, and the WAVs and the run record are written either way)."""
    import signal
    import threading

    stopped = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stopped.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stopped
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


#: A card that delivers no block for this many hops' time (plus a second) has stalled or gone.
STALL_HOPS = 10


def play_channels(play: str | None, n_src: int) -> list[int] | None:
    """Which sources go to the sound card: one (``--play 2``) or all, one per channel (``both``)."""
    if play is None:
        return None
    if play in ("both", "all"):
        return list(range(n_src))
    if not play.isdigit() or not 1 <= int(play) <= n_src:
        raise UserError(f"--play {play!r}: a source number 1..{n_src}, or both")
    return [int(play) - 1]


class LiveLoop:
    """One live session: the card's callbacks, what they reported (sounddevice's CallbackFlags),
    and the hops pushed through ``push`` (a timed push of the streaming executor)."""

    def __init__(self, executor, push: Callable[[np.ndarray], np.ndarray], channels: list[int] | None) -> None:
        self.executor, self.push, self.channels = executor, push, channels
        self.input_overflows = self.output_underflows = self.playback_underruns = 0
        self.started_playing = False
        self.blocks: queue.Queue = queue.Queue()
        self.to_play: queue.Queue = queue.Queue()
        self.pending = np.zeros((len(channels or ()), 0), np.float32)  # for the card, not a whole block yet
        self.inputs: list[np.ndarray] = []
        self.pieces: list[np.ndarray] = []
        self.writers: list = []

    def to_json(self) -> dict:
        return {
            "input_overflows": self.input_overflows,
            "output_underflows": self.output_underflows,
            "playback_underruns": self.playback_underruns,
        }

    def arrived(self, indata, frames, time_info, status) -> None:
        self.input_overflows += bool(status.input_overflow)
        self.blocks.put(indata[:, 0].copy())

    def playback(self, outdata, frames, time_info, status) -> None:
        self.output_underflows += bool(status.output_underflow)
        try:
            outdata[:] = self.to_play.get_nowait()
        except queue.Empty:  # the loop has nothing ready for the card: an underrun once playing
            outdata.fill(0)
            self.playback_underruns += self.started_playing

    def emit(self, samples: np.ndarray) -> None:
        """(n_src, n) samples: written, kept, and queued for the card in whole blocks."""
        for writer, track in zip(self.writers, samples, strict=False):
            writer.write(track)
        self.pieces.append(samples)
        if self.channels is None:
            return
        hop = self.executor.hop
        ready = np.concatenate([self.pending, samples[self.channels]], axis=-1)
        whole = ready.shape[-1] // hop * hop
        for first in range(0, whole, hop):
            self.to_play.put(ready[:, first : first + hop].T.copy())
        self.pending = ready[:, whole:]
        self.started_playing = self.started_playing or whole > 0

    def hops(self, sounddevice, count: int, rate: int, captured) -> str | None:
        """Up to ``count`` hops from the card; why the loop stopped first: "interrupted" (Ctrl-C or
        SIGTERM) or "stalled" (no block from the card for ``STALL_HOPS`` hops), else None."""
        hop = self.executor.hop
        with contextlib.ExitStack() as streams, deferred_ctrl_c() as stopped:
            streams.enter_context(
                sounddevice.InputStream(
                    samplerate=rate, channels=1, dtype="float32", blocksize=hop, callback=self.arrived
                )
            )
            if self.channels is not None:
                streams.enter_context(
                    sounddevice.OutputStream(
                        samplerate=rate,
                        channels=len(self.channels),
                        dtype="float32",
                        blocksize=hop,
                        callback=self.playback,
                    )
                )
            for _ in range(count):
                if stopped.is_set():  # Ctrl-C: only between hops, so input and output stay whole
                    log.warning("stream: interrupted; finishing the stream and closing its WAVs")
                    return "interrupted"
                wait = STALL_HOPS * hop / rate + 1
                try:
                    block = self.blocks.get(timeout=wait)
                except queue.Empty:
                    log.warning(
                        f"stream: the sound card delivered nothing for {wait:.1f} s (stalled, or unplugged); "
                        "finishing the stream and closing its WAVs"
                    )
                    return "stalled"
                samples = self.push(block)
                self.inputs.append(block)
                captured.write(block)
                self.emit(samples)
        return None


def stream_live(
    executor, push: Callable[[np.ndarray], np.ndarray], seconds: float, out: Path, stem: str, play: str | None = None
) -> tuple[np.ndarray, np.ndarray, dict]:
    """``seconds`` from the default input device, each hop pushed as it arrives (sounddevice's
    callback queues blocks of one hop), the sources written as they come (float WAVs, whole at
    any moment: Ctrl-C stops the loop, finishes the stream and closes them) and, with ``play``,
    sent to the default output device. Returns (input, output aligned with it, the loop's record:
    overflows, underruns, interrupted, stalled)."""
    import soundfile

    sounddevice = sounddevice_module()
    n_src, rate = executor.plan.config.n_src, executor.plan.config.sample_rate
    loop = LiveLoop(executor, push, play_channels(play, n_src))
    log.info(
        f"stream: live from {sounddevice.query_devices(kind='input')['name']} for {seconds:g} s"
        + (f", playing source(s) {', '.join(str(c + 1) for c in loop.channels)}" if loop.channels else "")
    )
    with contextlib.ExitStack() as files:
        loop.writers = [
            files.enter_context(soundfile.SoundFile(str(out / f"{stem}_s{i}.wav"), "w", rate, 1, "FLOAT"))
            for i in range(1, n_src + 1)
        ]
        captured = files.enter_context(soundfile.SoundFile(str(out / f"{stem}_input.wav"), "w", rate, 1, "FLOAT"))
        stopped = loop.hops(sounddevice, max(1, int(seconds * rate) // executor.hop), rate, captured)
        loop.emit(executor.finish())  # the overlap-add tail: the files end where the offline output ends
    wav = np.concatenate(loop.inputs) if loop.inputs else np.zeros(0, np.float32)
    return (
        wav,
        np.concatenate(loop.pieces, axis=-1)[:, : len(wav)],
        {
            **loop.to_json(),
            "interrupted": stopped == "interrupted",
            "stalled": stopped == "stalled",
        },
    )
