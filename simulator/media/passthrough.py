"""Receiving on aiortc's pass-through path: frames counted, never decoded.

:func:`stop_decoding` makes one ``RTCRtpReceiver`` hand its re-assembled encoded
frames to its track as ``av.Packet``s instead of decoding them. It is per receiver
(participants in the same process keep decoding), and must run before the receiver
starts, i.e. before the connection completes. (Sending on this path is
:class:`~simulator.media.sources.PreEncodedTrack`.)
"""

from __future__ import annotations

import asyncio
import fractions
import queue
from typing import Any, Final

import av
from aiortc import RTCRtpReceiver
from aiortc.jitterbuffer import JitterFrame

__all__ = ["is_vp8_keyframe", "stop_decoding"]

_TIME_BASE: Final = {"video": fractions.Fraction(1, 90_000), "audio": fractions.Fraction(1, 48_000)}


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
