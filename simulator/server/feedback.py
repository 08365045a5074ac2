"""What the SFU tells a publisher about what it receives: receiver reports and REMB.

A browser starts sending at its first bandwidth estimate (~300 kb/s) and moves only on
feedback: receiver reports (loss, round trip) drive its loss-based controller, REMB (the
receiver's estimate) caps it. The SFU forwards without aiortc's receivers (docs/media.md),
so it sent neither, and a browser publisher stayed at its start value for good, scaling a
640×480 camera down. Now, every :data:`REPORT_INTERVAL`, each publish connection gets one
compound RTCP packet: a receiver report with a block per stream (loss since the last report,
the extended highest sequence number, LSR/DLSR from the stream's last sender report), and,
where the publisher negotiated ``goog-remb``, a REMB for its video streams.

The REMB is a loss-driven estimate, increase-multiplicative / decrease-to-what-arrived: it
starts at :data:`REMB_CEILING` (a clean path takes what a camera wants; the browser's own
controller ramps up to it), falls to 85 % of what arrived when a report shows more than
:data:`LOSS_HIGH` lost, and grows by :data:`REMB_GROWTH` a report while loss stays low.

Counting costs two attribute updates per packet (from the header, in the clear under SRTP).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from aiortc.rtp import RtcpPsfbPacket, RtcpReceiverInfo, RtcpRrPacket, RtcpSrPacket, pack_remb_fci

from simulator.media.rtp import parse_rtcp
from simulator.server.forwarder import SFU_RTCP_SSRC

__all__ = ["REPORT_INTERVAL", "PublisherFeedback"]

REPORT_INTERVAL: Final = 1.0
"""Seconds between reports to one publisher (browsers send theirs about as often)."""
REMB_CEILING: Final = 2_500_000
"""Bits per second of video the estimate allows at most (a 720p camera's want)."""
REMB_FLOOR: Final = 150_000
REMB_GROWTH: Final = 1.25
LOSS_HIGH: Final = 0.10
PSFB_REMB: Final = 15


@dataclass(eq=False, slots=True)
class _Reception:
    """One publisher stream as the SFU receives it (RFC 3550 A.3, without jitter)."""

    kind: str
    packets: int = 0
    octets: int = 0
    first: int | None = None
    highest: int = 0
    """The extended highest sequence number (cycles included)."""
    expected_prior: int = 0
    received_prior: int = 0
    octets_prior: int = 0
    last_sr: int = 0
    """The middle 32 bits of the last sender report's NTP time."""
    last_sr_at: float | None = None

    def received(self, seq: int, size: int) -> None:
        self.packets += 1
        self.octets += size
        if self.first is None:
            self.first = self.highest = seq
            return
        delta = (seq - self.highest) & 0xFFFF
        if delta < 0x8000:  # newer, perhaps across a wrap
            self.highest += delta

    def block(self, ssrc: int, now: float) -> RtcpReceiverInfo:
        expected = 0 if self.first is None else self.highest - self.first + 1
        interval_expected = expected - self.expected_prior
        interval_lost = interval_expected - (self.packets - self.received_prior)
        self.expected_prior, self.received_prior = expected, self.packets
        fraction = (
            (interval_lost << 8) // interval_expected if interval_expected > 0 and interval_lost > 0 else 0
        )
        dlsr = 0 if self.last_sr_at is None else int((now - self.last_sr_at) * 65536)
        return RtcpReceiverInfo(
            ssrc=ssrc,
            fraction_lost=min(fraction, 255),
            packets_lost=max(0, min(expected - self.packets, 0x7FFFFF)),
            highest_sequence=self.highest & 0xFFFFFFFF,
            jitter=0,
            lsr=self.last_sr,
            dlsr=dlsr,
        )


class PublisherFeedback:
    """Counts a publisher's streams and writes its reports (see the module's docs)."""

    def __init__(self, streams: dict[int, str], now: Callable[[], float], *, remb: bool) -> None:
        self._streams = {ssrc: _Reception(kind) for ssrc, kind in streams.items()}
        self._now = now
        self._remb = remb
        self._reported_at = now()
        self.estimate = REMB_CEILING
        """The REMB last sent (bits per second)."""

    def add_stream(self, ssrc: int, kind: str) -> None:
        """A stream the publisher started later (a Jingle client's source-add)."""
        self._streams.setdefault(ssrc, _Reception(kind))

    def on_rtp(self, ssrc: int, seq: int, size: int) -> None:
        stream = self._streams.get(ssrc)
        if stream is not None:
            stream.received(seq, size)

    def on_rtcp(self, clear: bytes) -> None:
        """The publisher's own RTCP: its sender reports give LSR (for its round-trip time)."""
        now = self._now()
        for packet in parse_rtcp(clear):
            if isinstance(packet, RtcpSrPacket) and (stream := self._streams.get(packet.ssrc)) is not None:
                stream.last_sr = (packet.sender_info.ntp_timestamp >> 16) & 0xFFFFFFFF
                stream.last_sr_at = now

    def report(self) -> bytes:
        """The compound packet to send now: RR for every stream, REMB for the video ones."""
        now = self._now()
        elapsed = max(now - self._reported_at, 1e-3)
        self._reported_at = now
        blocks = {ssrc: s.block(ssrc, now) for ssrc, s in self._streams.items() if s.first is not None}
        packet = bytes(RtcpRrPacket(ssrc=SFU_RTCP_SSRC, reports=list(blocks.values())))
        video = [ssrc for ssrc, s in self._streams.items() if s.kind == "video"]
        arrived = (
            sum(self._streams[ssrc].octets - self._streams[ssrc].octets_prior for ssrc in video) * 8 / elapsed
        )
        for stream in self._streams.values():
            stream.octets_prior = stream.octets
        if self._remb and video:
            lossy = any(blocks[ssrc].fraction_lost > LOSS_HIGH * 256 for ssrc in video if ssrc in blocks)
            if lossy:
                self.estimate = max(REMB_FLOOR, min(self.estimate, int(arrived * 0.85)))
            else:
                self.estimate = min(REMB_CEILING, int(self.estimate * REMB_GROWTH))
            remb = RtcpPsfbPacket(
                fmt=PSFB_REMB, ssrc=SFU_RTCP_SSRC, media_ssrc=0, fci=pack_remb_fci(self.estimate, video)
            )
            packet += bytes(remb)
        return packet
