"""The lean RTP path: aiortc negotiates and secures a connection, callsim moves its RTP.

aiortc spends ~100 µs of Python per RTP packet (docs/media.md) in queues, tasks and
per-packet objects around primitives that cost ~15 µs. :class:`RtpLink` takes an
``RTCPeerConnection`` once it is connected (aiortc keeps ICE, DTLS, SDP, consent and
its RTCP reports) and gives its owner a synchronous datagram path:

* **in** — the connection's socket hands every SRTP/SRTCP datagram straight to the
  owner's callbacks, before aioice tries to parse it as STUN and before aiortc's
  queue, task switch and router. DTLS and STUN still take aiortc's path.
* **out** — :meth:`RtpLink.send_rtp` protects with the connection's own SRTP session
  (pylibsrtp) and calls ``sendto`` on the selected candidate pair's socket.

RTP header fields (sequence, timestamp, SSRC) are in the clear in SRTP, so a receiver
counts loss and jitter without decrypting (:func:`header`); it decrypts a sample to
read the marks (:func:`read_padding_mark`). A frame's first packet carries its
:class:`~simulator.media.marks.Mark` in the RTP padding (RFC 3550 §5.1: padding octets
may hold anything but the count), which every receiver's depacketiser discards, so
the pictures of a decoding receiver are not touched.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Callable
from typing import Any, Final

import pylibsrtp
from aiortc import RTCDtlsTransport, RTCPeerConnection, RTCSessionDescription, sdp
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtp import RtcpPacket, RtcpPsfbPacket, RtcpRtpfbPacket, RtpPacket, unwrap_rtx

from simulator.eventloop import per_loop
from simulator.media.marks import MARK_BYTES, Mark

__all__ = [
    "MARK_PADDING",
    "HandlerTime",
    "Outbox",
    "RtcpHandler",
    "RtpHandler",
    "RtpLink",
    "SilentTrack",
    "announced_ssrcs",
    "audible",
    "build_rtp",
    "handler_time",
    "header",
    "nack",
    "outbox",
    "parse_rtcp",
    "payload_offset",
    "pli",
    "read_padding_mark",
    "release_receivers",
    "remote_ssrcs",
    "unwrap_retransmission",
    "vp8_keyframe_height",
    "vp8_keyframe_start",
]

logger = logging.getLogger(__name__)

_HEADER: Final = struct.Struct("!BBHII")
MARK_PADDING: Final = 16
"""Padding octets that carry a mark: the mark, three zero octets, the count."""
_PADDING_TAIL: Final = bytes(MARK_PADDING - MARK_BYTES - 1) + bytes([MARK_PADDING])
PSFB_PLI: Final = 1
RTPFB_NACK: Final = 1
SILENT_PAYLOAD: Final = 16
"""An Opus payload this short is silence (the library's silent frames and DTX are a few octets)."""
SRTP_AUTH_TAG: Final = 10


def header(packet: bytes) -> tuple[int, int, int, int, int]:
    """(first octet, marker|payload type octet, sequence, timestamp, SSRC) of an (S)RTP packet."""
    return _HEADER.unpack_from(packet)


def audible(packet: bytes) -> bool:
    """Whether an Opus (S)RTP packet carries sound, judged from its length alone (the header
    is in the clear in SRTP: no decryption). Marked padding does not count."""
    try:
        offset = payload_offset(packet)
    except struct.error:  # an extension header longer than the packet: nothing to hear
        return False
    return len(packet) - offset - SRTP_AUTH_TAG - (MARK_PADDING if packet[0] & 0x20 else 0) > SILENT_PAYLOAD


def build_rtp(  # noqa: PLR0917 - the RTP header's own fields, in its order
    payload_type: int,
    marker: bool,
    sequence: int,
    timestamp: int,
    ssrc: int,
    payload: bytes,
    mark: Mark | None = None,
) -> bytes:
    """An RTP packet without extensions; with ``mark``, the mark rides in its padding."""
    if mark is None:
        return _HEADER.pack(0x80, payload_type | marker << 7, sequence, timestamp, ssrc) + payload
    first = _HEADER.pack(0xA0, payload_type | marker << 7, sequence, timestamp, ssrc)
    return first + payload + mark.to_bytes() + _PADDING_TAIL


def payload_offset(packet: bytes) -> int:
    """Where the payload of a clear RTP packet starts (after CSRCs and header extensions)."""
    offset = 12 + 4 * (packet[0] & 0x0F)
    if packet[0] & 0x10:
        length = struct.unpack_from("!H", packet, offset + 2)[0]
        offset += 4 + 4 * length
    return offset


def read_padding_mark(packet: bytes) -> Mark | None:
    """The mark in a clear RTP packet's padding, if it carries one."""
    if not packet[0] & 0x20 or packet[-1] != MARK_PADDING or len(packet) < 12 + MARK_PADDING:
        return None
    start = len(packet) - MARK_PADDING
    return Mark.from_bytes(packet[start : start + MARK_BYTES])


def unwrap_retransmission(packet: bytes, ssrc: int) -> bytes | None:
    """The original packet inside a clear RFC 4588 retransmission (RTX), on ``ssrc``.

    Retransmissions are rare, so aiortc's own objects do the work.
    """
    try:
        rtx = RtpPacket.parse(packet)
    except ValueError:
        return None
    if len(rtx.payload) < 2:
        return None
    return unwrap_rtx(rtx, rtx.payload_type, ssrc).serialize()


def pli(sender_ssrc: int, media_ssrc: int) -> bytes:
    """A Picture Loss Indication (RFC 4585 §6.3.1)."""
    return bytes(RtcpPsfbPacket(fmt=PSFB_PLI, ssrc=sender_ssrc, media_ssrc=media_ssrc))


def nack(sender_ssrc: int, media_ssrc: int, lost: list[int]) -> bytes:
    """A generic NACK (RFC 4585 §6.2.1) for the sequence numbers in ``lost`` (ascending)."""
    return bytes(RtcpRtpfbPacket(fmt=RTPFB_NACK, ssrc=sender_ssrc, media_ssrc=media_ssrc, lost=lost))


def parse_rtcp(data: bytes) -> list[Any]:
    """The packets of a clear compound RTCP datagram (empty when malformed)."""
    try:
        return list(RtcpPacket.parse(data))
    except ValueError:
        return []


def _vp8_frame_start(packet: bytes, offset: int) -> int:
    """Where the VP8 payload (the frame itself) starts after its descriptor (RFC 7741 §4.2)."""
    position = offset + 1
    if packet[offset] & 0x80:
        extensions = packet[position]
        position += 1
        if extensions & 0x80:  # I: picture ID, one or two octets
            position += 2 if packet[position] & 0x80 else 1
        if extensions & 0x40:  # L: TL0PICIDX
            position += 1
        if extensions & 0x30:  # T or K
            position += 1
    return position


def vp8_keyframe_start(packet: bytes, offset: int) -> bool:
    """Whether a clear VP8 RTP packet starts a key frame (RFC 7741 §4.2 descriptor, RFC 6386 §9.1)."""
    if len(packet) <= offset + 1:
        return False
    if packet[offset] & 0x1F != 0x10:  # S=1 and partition 0: the frame's first packet
        return False
    position = _vp8_frame_start(packet, offset)
    return position < len(packet) and not packet[position] & 0x01


def vp8_keyframe_height(packet: bytes, offset: int) -> int | None:
    """The picture height of the VP8 key frame a clear RTP packet starts (RFC 6386 §9.1:
    after the 3-octet frame tag and the start code, 14 bits of width, then of height)."""
    start = _vp8_frame_start(packet, offset) + 3
    if packet[start : start + 3] != b"\x9d\x01\x2a" or len(packet) < start + 7:
        return None
    return int.from_bytes(packet[start + 5 : start + 7], "little") & 0x3FFF


def announced_ssrcs(media: sdp.MediaDescription) -> tuple[int, int | None] | None:
    """The SSRC an m-line announces and its retransmission SSRC (``FID`` group), or None."""
    fid = [group.items for group in media.ssrc_group if group.semantic == "FID" and len(group.items) == 2]
    if fid:
        return int(fid[0][0]), int(fid[0][1])
    return (media.ssrc[0].ssrc, None) if media.ssrc else None


def remote_ssrcs(pc: RTCPeerConnection) -> dict[str, tuple[int, int | None]]:
    """mid → (the primary SSRC, the retransmission SSRC or None) the remote side announced."""
    found: dict[str, tuple[int, int | None]] = {}
    # aiortc keeps the remote description parsed; parsing it again costs ~1 ms per offer.
    parsed = getattr(pc, "_RTCPeerConnection__remoteDescription", lambda: None)()
    if parsed is None:
        description: RTCSessionDescription | None = pc.remoteDescription
        if description is None:
            return found
        parsed = sdp.SessionDescription.parse(description.sdp)
    for media in parsed.media:
        if (announced := announced_ssrcs(media)) is not None:
            found[media.rtp.muxId] = announced
    return found


def release_receivers(pc: RTCPeerConnection) -> None:
    """Stop the idle decoder threads of ``pc``'s receivers (the lean path never feeds them)."""
    for transceiver in pc.getTransceivers():
        # aiortc 1.16 starts one decoder thread per receiving transceiver (docs/media.md pitfall 9).
        stop = getattr(transceiver.receiver, "_RTCRtpReceiver__stop_decoder", None)
        if stop is not None:
            stop()


class SilentTrack(MediaStreamTrack):
    """A track that never yields: it gives a sender an SSRC and a slot without any work.

    An aiortc sender without a track polls every 20 ms; one with this track waits.
    """

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._stopped = asyncio.Event()

    async def recv(self) -> Any:
        await self._stopped.wait()
        raise MediaStreamError

    def stop(self) -> None:
        self._stopped.set()
        super().stop()


RtpHandler = Callable[[bytes, float], None]
"""Called with a still-protected RTP packet and its arrival time (loop clock)."""
RtcpHandler = Callable[[bytes], None]
"""Called with an unprotected RTCP datagram."""


class HandlerTime:
    """The time this process spends in RTP links' packet handlers (all media work of an SFU:
    forwarding, feedback, resends), summed while :attr:`on`. A benchmark tells the backend's
    media from its joins with it (:mod:`benchmarks.joins`); off, it costs a test per packet."""

    def __init__(self) -> None:
        self.on = False
        self.seconds = 0.0


handler_time: Final = HandlerTime()
"""The process's one :class:`HandlerTime`."""


class Outbox:
    """What the RTP links of one event loop send during a turn of it, written out together at
    the turn's end.

    A datagram for a process asleep on the other core wakes it, and the sender pays for the
    wake-up: on the 2-vCPU virtual machines this project runs on, SRTP protect + ``sendto``
    costs 8–12 µs, and 11–20 µs when it wakes its receiver (:mod:`benchmarks.floor`). Sent
    as they were made, a turn's packets trickled out between the turn's other work and woke
    the far end again and again; written out together, they find it awake after the first.
    Measured at 80 lean participants in rooms of 4, once all were in (six runs each way): the
    SFU's share of its core fell from a median of 0.91 to 0.80, the generator's from 0.70 to
    0.63, latency unchanged (docs/media.md).
    A link's packets keep their order; a packet waits at most for the rest of its turn.
    """

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._pending: list[tuple[RtpLink, bytes]] = []

    def put(self, link: RtpLink, data: bytes) -> None:
        """Send ``data`` on ``link`` at the end of this turn."""
        if not self._pending:
            self._loop.call_soon(self._write)
        self._pending.append((link, data))

    def _write(self) -> None:
        pending, self._pending = self._pending, []
        start = time.perf_counter() if handler_time.on else 0.0
        for link, data in pending:
            link.write(data)
        if handler_time.on:  # the sends are the handlers' work, done later
            handler_time.seconds += time.perf_counter() - start


outbox: Final = per_loop(Outbox)
"""The running event loop's :class:`Outbox`."""


class RtpLink:
    """The RTP of one connected ``RTCPeerConnection`` (or ORTC ``RTCDtlsTransport``), moved
    off aiortc's path.

    ``on_rtp`` gets packets still protected: call :meth:`unprotect` for those whose
    payload is needed. A direction without a handler is dropped (RTCP undecrypted).
    """

    def __init__(
        self,
        connected: RTCPeerConnection | RTCDtlsTransport,
        on_rtp: RtpHandler | None = None,
        on_rtcp: RtcpHandler | None = None,
    ) -> None:
        if isinstance(connected, RTCDtlsTransport):
            # An ORTC transport of its own (a Jingle endpoint: simulator.server.jitsi.bridge).
            dtls = connected
            if dtls.state != "connected":
                raise ConnectionError("an RtpLink needs a connected DTLS transport")
        else:
            transceivers = connected.getTransceivers()
            if not transceivers or connected.connectionState != "connected":
                raise ConnectionError("an RtpLink needs a connected peer connection with transceivers")
            dtls = transceivers[0].receiver.transport
        self._tx: pylibsrtp.Session = dtls._tx_srtp
        self._rx: pylibsrtp.Session = dtls._rx_srtp
        connection = dtls.transport._connection
        pair = connection._nominated[1]
        self._protocol = pair.protocol
        self._transport = pair.protocol.transport
        self._remote = pair.remote_addr
        self._on_rtp = on_rtp
        self._on_rtcp = on_rtcp
        self._loop_time = asyncio.get_running_loop().time
        self._outbox = outbox()
        self._original = self._protocol.datagram_received
        # The socket's protocol is aioice's; this instance attribute puts the lean path in front.
        setattr(self._protocol, "datagram_received", self._datagram_received)  # noqa: B010
        self.closed = False
        self.dropped_backlog = _drop_queued_media(connection)

    def _datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        # RFC 7983 demultiplexing: 128–191 is (S)RTP/(S)RTCP; the rest (STUN, DTLS) is aiortc's.
        if self.closed or not 127 < data[0] < 192 or len(data) < 12:
            self._original(data, addr)
        elif handler_time.on:
            start = time.perf_counter()
            self._dispatch(data)
            handler_time.seconds += time.perf_counter() - start
        else:
            self._dispatch(data)

    def _dispatch(self, data: bytes) -> None:
        if 192 <= data[1] <= 223:
            if self._on_rtcp is None:
                return
            try:
                clear = self._rx.unprotect_rtcp(data)
            except pylibsrtp.Error:
                return
            self._on_rtcp(clear)
        elif self._on_rtp is not None:
            self._on_rtp(data, self._loop_time())

    def unprotect(self, packet: bytes) -> bytes | None:
        """The clear form of a received RTP packet (None when it fails authentication or replays)."""
        try:
            return self._rx.unprotect(packet)
        except pylibsrtp.Error:
            return None

    def protect(self, packet: bytes) -> bytes | None:
        """The protected form of an RTP packet to send (None when SRTP refuses, e.g. a reused index)."""
        try:
            return self._tx.protect(packet)
        except pylibsrtp.Error:
            return None

    def send_protected(self, data: bytes) -> None:
        """Send an already protected datagram (a retransmission, for one) at the end of this
        turn of the loop (see :class:`Outbox`)."""
        if not self.closed:
            self._outbox.put(self, data)

    def write(self, data: bytes) -> None:
        """Send a protected datagram now, unless the link or its socket has closed since."""
        if self.closed or self._transport.is_closing():
            return
        self._transport.sendto(data, self._remote)

    def send_rtp(self, packet: bytes) -> bytes | None:
        """Protect and send a clear RTP packet; returns what was sent."""
        data = self.protect(packet)
        if data is not None:
            self.send_protected(data)
        return data

    def send_rtcp(self, packet: bytes) -> None:
        """Protect and send a clear RTCP datagram."""
        try:
            data = self._tx.protect_rtcp(packet)
        except pylibsrtp.Error:
            return
        self.send_protected(data)

    def close(self) -> None:
        """Give the socket back to aiortc (idempotent)."""
        if not self.closed:
            self.closed = True
            setattr(self._protocol, "datagram_received", self._original)  # noqa: B010


def _drop_queued_media(connection: Any) -> int:
    """Take the SRTP and SRTCP that aioice queued for aiortc before the link took the socket
    out of its queue (other datagrams stay, in order); returns how many were dropped.

    The far end sends from the moment its own side is up, and until the link is made (a busy
    loop: seconds at a join burst) its media queues for aiortc's own path, ~60 µs a packet
    (the lean path: ~10), which would work through it long after the link exists. Those
    packets are stale: a receiver counts from the first packet it sees, and video starts on a
    keyframe, so dropping them costs nothing but the wait.
    """
    queue = connection._queue
    kept, dropped = [], 0
    while not queue.empty():
        item = queue.get_nowait()
        if item is not None and 127 < item[0][0] < 192:  # RFC 7983: (S)RTP and (S)RTCP
            dropped += 1
        else:
            kept.append(item)
    for item in kept:
        queue.put_nowait(item)
    return dropped
