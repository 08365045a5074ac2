"""Synthetic sources: a camera (or screen) whose frames carry marks, and a microphone tone.

Both are ``MediaStreamTrack``s paced on the event loop's clock (never wall time).
A paused camera produces no frames, so the others see the picture freeze; a muted
microphone produces silence, so the others hear nothing (contract §A.2 #6, #9).
"""

from __future__ import annotations

import asyncio
import fractions
from typing import Any, Final

import av
import numpy as np
from aiortc import RTCRtpSender
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from simulator.media.devices import FakeDevices
from simulator.media.library import audio_stream, video_stream
from simulator.media.marks import Mark, write_mark
from simulator.media.tones import AMPLITUDE, SAMPLE_RATE, tone_samples

__all__ = ["CameraTrack", "MicrophoneTrack", "PreEncodedTrack", "SourceTag"]

VIDEO_CLOCK: Final = 90_000
AUDIO_PTIME: Final = 0.020


class SourceTag:
    """The 16-bit mark tag: publisher (10 bits), screen flag (1), camera device index (5)."""

    @staticmethod
    def pack(publisher: int, *, screen: bool = False, device: int = 0) -> int:
        return ((publisher & 0x3FF) << 6) | (int(screen) << 5) | (device & 0x1F)

    @staticmethod
    def unpack(tag: int) -> tuple[int, bool, int]:
        """(publisher, screen, device)."""
        return tag >> 6, bool(tag >> 5 & 1), tag & 0x1F


class _Pacer:
    """Waits for the next slot of a fixed period on the loop clock; restarts after a pause."""

    def __init__(self, period: float) -> None:
        self.period = period
        self._next: float | None = None

    def restart(self) -> None:
        self._next = None

    async def wait(self) -> float:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._next is None or now - self._next > 1.0:
            # First frame, or we fell far behind (a paused source): start afresh, no burst.
            slot = self._next = now
        else:
            slot = self._next = self._next + self.period
            if slot > now:
                # A restart() during this sleep starts the next wait afresh; this slot stands.
                await asyncio.sleep(slot - now)
        return slot


class _PausableTrack(MediaStreamTrack):
    def __init__(self, enabled: bool) -> None:
        super().__init__()
        self._enabled = asyncio.Event()
        if enabled:
            self._enabled.set()
        self.muted = False

    @property
    def track(self) -> MediaStreamTrack:
        """The track itself: aiortc's sender reads it (see :class:`~simulator.media.paths.Source`)."""
        return self

    @property
    def enabled(self) -> bool:
        return self._enabled.is_set()

    def set_enabled(self, enabled: bool) -> None:
        if enabled:
            self._enabled.set()
        else:
            self._enabled.clear()

    def stop(self) -> None:
        super().stop()
        self._enabled.set()  # wake a recv() waiting for resume so it can see the end

    async def _ready(self) -> None:
        await self._enabled.wait()
        if self.readyState != "live":
            raise MediaStreamError


class CameraTrack(_PausableTrack):
    """Video whose every frame carries its counter, capture time and source tag."""

    kind = "video"

    def __init__(
        self,
        publisher_tag: int,
        devices: FakeDevices | None = None,
        *,
        screen: bool = False,
        width: int = 320,
        height: int = 240,
        fps: float = 15.0,
        enabled: bool = True,
    ) -> None:
        super().__init__(enabled)
        self.publisher_tag = publisher_tag
        self.screen = screen
        self.frames_sent = 0
        self._devices = devices
        self._pacer = _Pacer(1.0 / fps)
        self._t0: float | None = None
        # A diagonal pattern distinct per publisher, so a person looking at it can tell who.
        rows, cols = np.indices((height, width))
        base = np.empty((height * 3 // 2, width), dtype=np.uint8)
        base[:height] = ((rows + cols + publisher_tag * 37) % 160 + 48).astype(np.uint8)
        base[height:] = 128 if not screen else 90
        self._base = base
        self._height = height

    def set_enabled(self, enabled: bool) -> None:
        if enabled and not self.enabled:
            self._pacer.restart()
        super().set_enabled(enabled)

    async def recv(self) -> av.VideoFrame:
        while True:
            await self._ready()
            slot = await self._pacer.wait()
            if self.enabled:  # paused while waiting for the slot: that frame is not taken
                break
        if self._t0 is None:
            self._t0 = slot
        device = 0 if self._devices is None else self._devices.active_index("videoinput")
        picture = self._base.copy()
        tag = SourceTag.pack(self.publisher_tag, screen=self.screen, device=device)
        write_mark(picture[: self._height], Mark(self.frames_sent, int(slot * 1000), tag))
        frame = av.VideoFrame.from_ndarray(picture, format="yuv420p")
        frame.pts = int((slot - self._t0) * VIDEO_CLOCK)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self.frames_sent += 1
        return frame


class MicrophoneTrack(_PausableTrack):
    """A continuous tone unique to its participant; silence while muted.

    Unlike the camera it never stops producing: a muted browser microphone sends
    silence, and the receivers' analysers see exactly that. Each microphone device
    picks the tone up 6 dB quieter than the one before it, so switching the input
    device (§I) is audible at the receivers as a change of level.
    """

    kind = "audio"

    def __init__(self, tone_hz: float, devices: FakeDevices | None = None, *, muted: bool = False) -> None:
        super().__init__(enabled=True)
        self.tone_hz = tone_hz
        self._devices = devices
        self.muted = muted
        self._samples = int(SAMPLE_RATE * AUDIO_PTIME)
        self._pacer = _Pacer(AUDIO_PTIME)
        self._sent = 0

    async def recv(self) -> av.AudioFrame:
        await self._ready()
        await self._pacer.wait()
        if self.muted:
            samples = np.zeros(self._samples, dtype=np.int16)
        else:
            device = 0 if self._devices is None else self._devices.active_index("audioinput")
            samples = tone_samples(self.tone_hz, self._sent, self._samples, AMPLITUDE / 2**device)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._sent
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        self._sent += self._samples
        return frame


class PreEncodedTrack(_PausableTrack):
    """Library media as ``av.Packet``s: an aiortc sender given this track only packetises.

    This is aiortc's own pass-through path (docs/media.md): no encoder, but aiortc's RTP
    machinery. ``muted`` (audio) sends the library's silence; a paused video track
    sends nothing. :meth:`attach_sender` makes a PLI jump to the next keyframe, which
    the packetise path would otherwise ignore (docs/media.md pitfall 6).
    """

    def __init__(
        self,
        kind: str,
        *,
        tone_hz: int = 0,
        profile: str = "qvga",
        enabled: bool = True,
        muted: bool = False,
    ) -> None:
        super().__init__(enabled)
        self.kind = kind
        self.tone_hz = tone_hz
        self.muted = muted
        self._video = video_stream(profile) if kind == "video" else None
        self._position = 0
        self._pts = 0
        self.frames_sent = 0
        self._pacer = _Pacer(AUDIO_PTIME if self._video is None else self._video.period)

    def set_enabled(self, enabled: bool) -> None:
        if enabled and not self.enabled:
            self._pacer.restart()
        super().set_enabled(enabled)

    def attach_sender(self, sender: RTCRtpSender) -> None:
        """Honour ``sender``'s keyframe requests by jumping to the next keyframe."""
        setattr(sender, "_send_keyframe", self.jump_to_keyframe)  # noqa: B010

    def jump_to_keyframe(self) -> None:
        if self._video is not None:
            self._position = self._video.next_keyframe(self._position)

    async def recv(self) -> av.Packet[Any]:
        while True:
            await self._ready()
            await self._pacer.wait()
            if self.enabled:
                break
        stream = self._video or audio_stream(0 if self.muted else int(self.tone_hz))
        frame = stream.frames[self._position % len(stream.frames)]
        self._position = (self._position + 1) % len(stream.frames)
        packet = av.Packet(frame.data)
        packet.pts = self._pts
        packet.time_base = fractions.Fraction(1, stream.clock_rate)
        self._pts += stream.frame_ticks
        self.frames_sent += 1
        return packet
