"""Receiving-side analysers: what a participant actually heard and saw.

Each received track is consumed by :meth:`MediaEvidence.consume` (consuming also
keeps aiortc's frame queues bounded, docs/media.md pitfall 4). Video frames are decoded
and their marks read: frames per source, freezes, end-to-end latency. Audio frames
are measured: level and tone, so "who is heard" is a measurement.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Literal

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from simulator.media.marks import NO_CAPTURE_TIME, read_mark
from simulator.media.tones import analyse

__all__ = ["MediaEvidence", "ReceivedStream"]

FREEZE_GAP: Final = 0.5
"""A video gap longer than this is a freeze."""
HEARD_WINDOW: Final = 0.3
"""A stream is heard if it carried sound within this many seconds."""
NOMINAL_FPS: Final = {"audio": 50.0, "video": 15.0}
"""The rates every callsim source sends at (20 ms audio; 15 fps camera, live or pre-encoded)."""


@dataclass(eq=False)
class ReceivedStream:
    """One remote stream and what arrived on it."""

    participant_id: str
    uid: str
    source: Literal["mic", "camera", "screen"]
    kind: str
    active: bool = True
    frames: int = 0
    marked_frames: int = 0
    last_counter: int | None = None
    last_tag: int | None = None
    freezes: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    latencies_recorded: int = 0
    """How many of ``latencies_ms`` a load run's metrics already hold."""
    level_dbfs: float = -120.0
    tone_hz: int | None = None
    first_frame_at: float | None = None
    last_frame_at: float | None = None
    last_audible_at: float | None = None

    def arrived(self, now: float) -> None:
        """Count one frame arriving at ``now``."""
        if self.first_frame_at is None:
            self.first_frame_at = now
        self.frames += 1
        self.last_frame_at = now


class MediaEvidence:
    """Everything one participant received, queryable and awaitable.

    ``speaker`` tells which output device is active; every received audio frame is
    counted as played on it (:attr:`played_on`), so switching the output device is
    observable.
    """

    def __init__(self, speaker: Callable[[], str | None] = lambda: None) -> None:
        self.streams: list[ReceivedStream] = []
        self.played_on: dict[str, int] = {}
        self._speaker = speaker
        self._waiters: set[asyncio.Future[None]] = set()

    # --- recording ----------------------------------------------------------------------

    def add(self, stream: ReceivedStream) -> None:
        """Track ``stream``, which something else fills (the lean path's receiver)."""
        self.streams.append(stream)

    async def consume(self, track: MediaStreamTrack, current: Callable[[], ReceivedStream]) -> None:
        """Read ``track`` until it ends, recording each frame into the stream ``current()``
        names at its arrival (a reused slot carries one stream after another)."""
        loop = asyncio.get_running_loop()
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                now = loop.time()
                stream = current()
                if isinstance(frame, av.Packet):
                    self._on_packet(stream, now)
                elif isinstance(frame, av.VideoFrame):
                    self._on_video(stream, frame, now)
                elif isinstance(frame, av.AudioFrame):
                    self._on_audio(stream, frame, now)
                    if (speaker := self._speaker()) is not None:
                        self.played_on[speaker] = self.played_on.get(speaker, 0) + 1
                stream.arrived(now)
                self.notify()

    def notify(self) -> None:
        """Something arrived: let every :meth:`wait_for` look at its predicate again."""
        if self._waiters:
            for waiter in self._waiters:
                if not waiter.done():
                    waiter.set_result(None)
            self._waiters.clear()

    @staticmethod
    def _on_video(stream: ReceivedStream, frame: av.VideoFrame, now: float) -> None:
        if stream.last_frame_at is not None and now - stream.last_frame_at > FREEZE_GAP:
            stream.freezes += 1
        mark = read_mark(np.asarray(frame.to_ndarray(format="gray"), dtype=np.uint8))
        if mark is None:
            return
        stream.marked_frames += 1
        stream.last_counter = mark.counter
        stream.last_tag = mark.tag
        if mark.capture_ms == NO_CAPTURE_TIME:
            return  # a pre-encoded frame: its send time is not in the picture
        latency = (int(now * 1000) - mark.capture_ms) & 0xFFFFFFFF
        if latency < 60_000:  # a wrapped or foreign clock would give nonsense
            stream.latencies_ms.append(float(latency))

    @staticmethod
    def _on_packet(stream: ReceivedStream, now: float) -> None:
        """An undecoded frame: only its arrival is known (freezes, counts; no marks, no tones)."""
        last = stream.last_frame_at
        if stream.kind == "video" and last is not None and now - last > FREEZE_GAP:
            stream.freezes += 1

    @staticmethod
    def _on_audio(stream: ReceivedStream, frame: av.AudioFrame, now: float) -> None:
        samples = frame.to_ndarray()
        mono = samples[0, :: len(frame.layout.channels)] if samples.ndim == 2 else samples
        level, tone = analyse(np.asarray(mono, dtype=np.int16))
        stream.level_dbfs = level
        stream.tone_hz = tone
        if tone is not None:
            stream.last_audible_at = now

    # --- querying -----------------------------------------------------------------------

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def heard(self) -> dict[str, int]:
        """uid → tone of every participant audible right now."""
        now = self._now()
        return {
            s.uid: s.tone_hz or 0
            for s in self.streams
            if s.kind == "audio"
            and s.active
            and s.last_audible_at is not None
            and now - s.last_audible_at <= HEARD_WINDOW
        }

    def frames_from(self, uid: str, source: str = "camera") -> int:
        """Marked video frames received from ``uid``'s ``source``."""
        return sum(s.marked_frames for s in self.streams if s.uid == uid and s.source == source)

    def stream(self, uid: str, source: str) -> ReceivedStream | None:
        """The newest active stream of ``uid``'s ``source``."""
        for s in reversed(self.streams):
            if s.uid == uid and s.source == source and s.active:
                return s
        return None

    def delivery(self) -> tuple[int, float]:
        """(frames received, frames expected) on the active microphone and camera streams.

        Expected is the nominal rate (:data:`NOMINAL_FPS`) over the time since each
        stream's first frame: honest for media that is not paused (a load run's), and
        blind to nothing a sender failed to send, unlike RTP loss (docs/media.md pitfall 7).
        """
        now = self._now()
        received, expected = 0, 0.0
        for s in self.streams:
            if s.active and s.first_frame_at is not None and s.source in ("mic", "camera"):
                received += s.frames
                expected += (now - s.first_frame_at) * NOMINAL_FPS[s.kind] + 1
        return received, expected

    def latencies_ms(self) -> list[float]:
        return [v for s in self.streams for v in s.latencies_ms]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float) -> None:
        """Wait until ``predicate()`` holds after some frame arrives; TimeoutError otherwise."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout):
            while not predicate():
                waiter = loop.create_future()
                self._waiters.add(waiter)
                await waiter
