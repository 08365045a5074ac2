"""Encoded-frame pass-through for the SFU: a publisher's media reaches N subscribers
without being decoded or re-encoded (MEDIA.md, "the SFU forwards, it does not transcode").

* :func:`stop_decoding` makes one ``RTCRtpReceiver`` hand its re-assembled encoded
  frames to its track as ``av.Packet``s instead of decoding them. It is per
  receiver (participants in the same process keep decoding), and must run before
  the receiver starts, i.e. before the connection completes.
* :class:`FanOut` reads one publisher track and feeds a :class:`ForwardedTrack` per
  subscriber. Senders given a track that yields packets only packetise them
  (``encoder.pack``). A new or overflowing video subscriber waits for a keyframe and
  asks the publisher for one (PLI); a subscriber's own PLI is forwarded the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import queue
from typing import Any, Final

import av
from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

__all__ = ["FanOut", "ForwardedTrack", "is_vp8_keyframe", "stop_decoding"]

_TIME_BASE: Final = {"video": fractions.Fraction(1, 90_000), "audio": fractions.Fraction(1, 48_000)}
SUBSCRIBER_QUEUE: Final = 90
"""Frames a slow subscriber may fall behind before it is resynchronised."""
PLI_INTERVAL: Final = 0.3
"""At most one keyframe request per publisher stream in this many seconds."""


def is_vp8_keyframe(data: bytes) -> bool:
    """RFC 6386 §9.1: bit 0 of the first byte is 0 on a key frame."""
    return bool(data) and not data[0] & 0x01


class _PacketQueue(queue.Queue[Any]):
    """Stands in for a receiver's decoder queue: frames become packets on the spot."""

    def __init__(self, track_queue: asyncio.Queue[Any], kind: str) -> None:
        super().__init__()
        self._track_queue = track_queue
        self._time_base = _TIME_BASE[kind]

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is None:
            super().put(None)  # lets aiortc's idle decoder thread exit and end the track
            return
        _codec, frame = item
        assert isinstance(frame, JitterFrame)
        packet = av.Packet(frame.data)
        packet.pts = frame.timestamp
        packet.time_base = self._time_base
        # Called on the loop's thread from the receiver's RTP handler.
        self._track_queue.put_nowait(packet)


def stop_decoding(receiver: RTCRtpReceiver) -> None:
    """Make ``receiver`` deliver encoded packets; call before it starts receiving."""
    track = receiver.track
    # The attribute aiortc 1.16's RTP handler puts re-assembled frames on (name-mangled).
    queue = _PacketQueue(track._queue, track.kind)  # type: ignore[attr-defined]
    setattr(receiver, "_RTCRtpReceiver__decoder_queue", queue)  # noqa: B010


class ForwardedTrack(MediaStreamTrack):
    """One subscriber's copy of a publisher stream: yields ``av.Packet``s."""

    def __init__(self, kind: str, fanout: FanOut) -> None:
        super().__init__()
        self.kind = kind
        self._fanout = fanout
        self._queue: asyncio.Queue[av.Packet[Any] | None] = asyncio.Queue()
        self.waiting_for_keyframe = kind == "video"
        self.forwarded = 0

    def offer(self, packet: av.Packet[Any], keyframe: bool) -> None:
        if self.readyState != "live":
            return
        if self.waiting_for_keyframe:
            if not keyframe:
                self._fanout.request_keyframe()
                return
            self.waiting_for_keyframe = False
        if self._queue.qsize() >= SUBSCRIBER_QUEUE:
            self._drain()
            if self.kind == "video":
                # Dropping video breaks the reference chain: resume at the next keyframe.
                self.waiting_for_keyframe = True
                self._fanout.request_keyframe()
                return
        self._queue.put_nowait(packet)

    def _drain(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()

    async def recv(self) -> av.Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        packet = await self._queue.get()
        if packet is None:
            raise MediaStreamError
        self.forwarded += 1
        return packet

    def stop(self) -> None:
        if self.readyState == "live":
            self._drain()
            self._queue.put_nowait(None)
        super().stop()
        self._fanout.detach(self)


class FanOut:
    """Copies one publisher stream to its subscribers."""

    def __init__(self, track: MediaStreamTrack, receiver: RTCRtpReceiver) -> None:
        self.kind = track.kind
        self._track = track
        self._receiver = receiver
        self._subscribers: list[ForwardedTrack] = []
        self._keyframe_wanted = asyncio.Event()
        self._last_pli = -PLI_INTERVAL
        self.packets_in = 0

    def subscribe(self) -> ForwardedTrack:
        """A new subscriber track (video starts at the next keyframe)."""
        forwarded = ForwardedTrack(self.kind, self)
        self._subscribers.append(forwarded)
        if self.kind == "video":
            self.request_keyframe()
        return forwarded

    def detach(self, forwarded: ForwardedTrack) -> None:
        with contextlib.suppress(ValueError):
            self._subscribers.remove(forwarded)

    def attach_sender(self, sender: RTCRtpSender) -> None:
        """Forward the PLI/FIR a subscriber sends to ``sender`` to the publisher."""
        # The packetise path ignores keyframe requests (MEDIA.md pitfall 6); this
        # instance attribute replaces the sender's hook for this sender only.
        setattr(sender, "_send_keyframe", self.request_keyframe)  # noqa: B010

    def request_keyframe(self) -> None:
        if self.kind == "video":
            self._keyframe_wanted.set()

    async def run(self) -> None:
        """Pump packets to subscribers and keyframe requests to the publisher until the track ends."""
        async with asyncio.TaskGroup() as group:
            requests = group.create_task(self._send_keyframe_requests())
            try:
                await self._pump()
            finally:
                requests.cancel()
                for forwarded in list(self._subscribers):
                    forwarded.stop()

    async def _pump(self) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                packet = await self._track.recv()
                if not isinstance(packet, av.Packet):
                    continue
                self.packets_in += 1
                keyframe = self.kind == "audio" or is_vp8_keyframe(bytes(packet))
                for forwarded in list(self._subscribers):
                    forwarded.offer(packet, keyframe)

    async def _send_keyframe_requests(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._keyframe_wanted.wait()
            wait = self._last_pli + PLI_INTERVAL - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            self._keyframe_wanted.clear()
            self._last_pli = loop.time()
            sources = self._receiver.getSynchronizationSources()
            if sources:
                await self._receiver._send_rtcp_pli(sources[-1].source)
