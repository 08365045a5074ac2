"""Participants on the lean path: library media out, counted media in, no aiortc RTP.

* :class:`LeanSource` — one publish slot (mic, camera or screen). aiortc sees a
  :class:`~simulator.media.rtp.SilentTrack` (it gives the slot its SSRC in the SDP);
  once the connection is up, :class:`LeanPublisher` binds the slot to an
  :class:`~simulator.media.rtp.RtpLink` and the process's :class:`MediaScheduler`
  sends the shared pre-encoded frames (:mod:`library`) on it: pre-built payloads, a
  fresh header, one SRTP protect, one ``sendto``. A PLI jumps to the next keyframe;
  a NACK is answered from a short history of what was sent.
* :class:`LeanReceiver` — counts what arrives from the SRTP headers in the clear
  (packets, loss from sequence gaps, RFC 3550 jitter, frames from the marker bit) and
  decrypts a sample of the packets that carry a mark (end-to-end latency, who is
  heard). It writes into the same :class:`~simulator.media.analysers.ReceivedStream`
  records as the decoding path, so every query of
  :class:`~simulator.media.analysers.MediaEvidence` works on both.

One :class:`MediaScheduler` per event loop paces every lean stream of the process
from a single task (one wake-up per tick for all participants, not one per stream).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
from dataclasses import dataclass
from typing import Final, Literal

from aiortc import RTCDtlsTransport, RTCPeerConnection, RTCRtpCodecParameters
from aiortc.rtcrtpparameters import RTCRtcpFeedback
from aiortc.rtp import RtcpPsfbPacket, RtcpRtpfbPacket

from simulator.eventloop import per_loop
from simulator.media.analysers import FREEZE_GAP, MediaEvidence, ReceivedStream
from simulator.media.devices import FakeDevices
from simulator.media.library import EncodedStream, audio_stream, video_stream
from simulator.media.marks import Mark
from simulator.media.rtp import (
    PSFB_PLI,
    RTPFB_NACK,
    RtpHandler,
    RtpLink,
    SilentTrack,
    audible,
    build_rtp,
    header,
    parse_rtcp,
    read_padding_mark,
    release_receivers,
)
from simulator.media.sources import SourceTag

__all__ = [
    "OFFERED_CODECS",
    "Binding",
    "LeanPublisher",
    "LeanReceiver",
    "LeanSource",
    "MediaScheduler",
    "ReceiveStats",
    "bindings",
    "scheduler",
]

TICK: Final = 0.010
HISTORY: Final = 128
"""Sent video packets kept per stream to answer NACKs."""
MARK_SAMPLE: Final = {"audio": 25, "video": 5}
"""Decrypt one marked packet in this many per stream (audio 2/s, video 3/s at 15 fps)."""
PSFB_FIR: Final = 4
OFFERED_CODECS: Final = {
    "audio": RTCRtpCodecParameters(
        mimeType="audio/opus",
        clockRate=48000,
        channels=2,
        payloadType=111,
        parameters={"minptime": "10", "useinbandfec": "1"},
    ),
    "video": RTCRtpCodecParameters(
        mimeType="video/VP8",
        clockRate=90000,
        payloadType=96,
        rtcpFeedback=[RTCRtcpFeedback("nack"), RTCRtcpFeedback("nack", "pli"), RTCRtcpFeedback("ccm", "fir")],
    ),
}
"""What a bundled lean participant offers on every m-line of its kind (it writes its own
offer): what the SFU forwards, without RTX, since a lean source resends what a NACK asks
for on the stream's own SSRC, from its history."""


class LeanSource:
    """One publish slot of a lean participant: what it sends and whether it sends."""

    def __init__(
        self,
        kind: Literal["audio", "video"],
        *,
        tone_hz: int = 0,
        publisher_tag: int = 0,
        screen: bool = False,
        profile: str = "qvga",
        devices: FakeDevices | None = None,
        enabled: bool = True,
        muted: bool = False,
    ) -> None:
        self.kind = kind
        self.track = SilentTrack(kind)
        self.tone_hz = tone_hz
        self.muted = muted
        self.frames_sent = 0
        self._enabled = enabled
        self._devices = devices
        self._screen = screen
        self.publisher_tag = publisher_tag
        """Whose marks its frames carry."""
        self.profile = profile
        """The pre-encoded video profile it sends (:data:`~simulator.media.library.PROFILES`)."""
        self._video = video_stream(profile) if kind == "video" else None
        self._link: RtpLink | None = None
        self._ssrc = 0
        self._payload_type = 0
        self._sequence = random.getrandbits(16)
        self._timestamp = random.getrandbits(32)
        self._position = 0
        self._due: float | None = None
        self._history: collections.OrderedDict[int, bytes] = collections.OrderedDict()
        self.keyframe_requests = 0

    # --- the controls a session uses (the same as the live sources') -------------------------

    @property
    def enabled(self) -> bool:
        return self._enabled

    def set_enabled(self, enabled: bool) -> None:
        if enabled and not self._enabled:
            self._due = None  # resume on the next tick, without a burst
        self._enabled = enabled

    def stop(self) -> None:
        self._enabled = False
        self._link = None
        self.track.stop()

    # --- sending -------------------------------------------------------------------------------

    def bind(self, link: RtpLink, ssrc: int, payload_type: int) -> None:
        self._link, self._ssrc, self._payload_type = link, ssrc, payload_type

    def _stream(self) -> tuple[EncodedStream, int]:
        """The loop to send from, and the mark tag (audio: the tone carried; 0 for silence)."""
        device = (
            0
            if self._devices is None
            else self._devices.active_index("audioinput" if self.kind == "audio" else "videoinput")
        )
        if self._video is not None:
            return self._video, SourceTag.pack(self.publisher_tag, screen=self._screen, device=device)
        if self.muted or not self.tone_hz:
            return audio_stream(0), 0
        return audio_stream(self.tone_hz, 6 * device), self.tone_hz

    def tick(self, now: float) -> None:
        """Send every frame that is due by ``now``."""
        link = self._link
        if link is None or not self._enabled or (self._due is not None and now < self._due):
            return
        stream, tag = self._stream()
        if self._due is None or now - self._due > 1.0:
            self._due = now  # the first frame, or far behind: restart, never burst
        while self._due <= now:
            self._send_frame(link, stream, tag, now)
            self._due += stream.period

    def _send_frame(self, link: RtpLink, stream: EncodedStream, tag: int, now: float) -> None:
        frame = stream.frames[self._position % len(stream.frames)]
        self._position = (self._position + 1) % len(stream.frames)
        last = len(frame.payloads) - 1
        mark = Mark(self.frames_sent, int(now * 1000), tag)
        for index, payload in enumerate(frame.payloads):
            packet = build_rtp(
                self._payload_type,
                index == last,
                self._sequence,
                self._timestamp,
                self._ssrc,
                payload,
                mark if index == 0 else None,
            )
            sent = link.send_rtp(packet)
            if sent is not None and self._video is not None:
                self._history[self._sequence] = sent
                if len(self._history) > HISTORY:
                    self._history.popitem(last=False)
            self._sequence = (self._sequence + 1) & 0xFFFF
        self._timestamp = (self._timestamp + stream.frame_ticks) & 0xFFFFFFFF
        self.frames_sent += 1

    def on_keyframe_request(self) -> None:
        """A PLI: the next frame sent is the loop's next keyframe."""
        if self._video is not None:
            self.keyframe_requests += 1
            self._position = self._video.next_keyframe(self._position)

    def on_nack(self, lost: list[int]) -> None:
        link = self._link
        if link is None:
            return
        for sequence in lost:
            if (data := self._history.get(sequence)) is not None:
                link.send_protected(data)


class MediaScheduler:
    """Paces every lean source of one event loop from one task."""

    def __init__(self) -> None:
        self._sources: list[LeanSource] = []
        self._task: asyncio.Task[None] | None = None

    def add(self, sources: list[LeanSource]) -> None:
        self._sources.extend(sources)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="lean-media-scheduler")

    def remove(self, sources: list[LeanSource]) -> None:
        for source in sources:
            with contextlib.suppress(ValueError):
                self._sources.remove(source)
        if not self._sources and self._task is not None:
            # The last source gone: the task ends with it (no task outlives its work).
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        wake = loop.time()
        while self._sources:
            wake += TICK
            delay = wake - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            now = loop.time()
            if now - wake > 1.0:
                wake = now
            for source in list(self._sources):
                source.tick(now)


scheduler: Final = per_loop(MediaScheduler)
"""The scheduler of the running event loop."""


Binding = tuple[LeanSource, int, int]
"""A source, the SSRC it sends with and its negotiated payload type."""


def bindings(pc: RTCPeerConnection, sources: list[LeanSource]) -> list[Binding]:
    """The sources of a peer connection, as its first transceivers negotiated them (in order)."""
    bound: list[Binding] = []
    for transceiver, source in zip(pc.getTransceivers()[: len(sources)], sources, strict=True):
        codecs = transceiver._codecs
        if codecs and codecs[0].payloadType is not None:
            bound.append((source, transceiver.sender._ssrc, codecs[0].payloadType))
    return bound


class LeanPublisher:
    """A lean participant's publish side: its sources bound to one link.

    The link is a connected peer connection's (its first transceivers carry the sources:
    :func:`bindings`) or an ORTC DTLS transport's (a bundled lean participant's, with the
    SSRCs and payload types of its own offer). On a bundled connection the same link also
    carries what the participant receives: ``on_rtp`` gets it (a :class:`LeanReceiver`'s,
    which then :meth:`~LeanReceiver.use` s this link).
    """

    def __init__(
        self,
        connected: RTCPeerConnection | RTCDtlsTransport,
        bound: list[Binding],
        on_rtp: RtpHandler | None = None,
    ) -> None:
        self._sources = [source for source, _, _ in bound]
        self._by_ssrc: dict[int, LeanSource] = {}
        self.link = RtpLink(connected, on_rtp=on_rtp, on_rtcp=self._on_rtcp)
        for source, ssrc, payload_type in bound:
            source.bind(self.link, ssrc, payload_type)
            self._by_ssrc[ssrc] = source
        if isinstance(connected, RTCPeerConnection):
            release_receivers(connected)
        scheduler().add(self._sources)

    def _on_rtcp(self, clear: bytes) -> None:
        for packet in parse_rtcp(clear):
            source = self._by_ssrc.get(getattr(packet, "media_ssrc", -1))
            if source is None:
                continue
            if isinstance(packet, RtcpPsfbPacket) and packet.fmt in (PSFB_PLI, PSFB_FIR):
                source.on_keyframe_request()
            elif isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTPFB_NACK:
                source.on_nack(packet.lost)

    def close(self) -> None:
        scheduler().remove(self._sources)
        self.link.close()


@dataclass(eq=False)
class InboundStats:
    """What the headers of one received stream told."""

    stream: ReceivedStream
    clock_rate: int
    packets: int = 0
    octets: int = 0
    highest: int | None = None
    cycles: int = 0
    first: int | None = None
    jitter: float = 0.0
    _transit: float | None = None
    _marked: int = 0

    @property
    def expected(self) -> int:
        if self.highest is None or self.first is None:
            return 0
        return self.cycles + self.highest - self.first + 1

    @property
    def lost(self) -> int:
        return max(0, self.expected - self.packets)


@dataclass(frozen=True, slots=True)
class ReceiveStats:
    """RTP received by one participant, over all its streams."""

    packets: int
    lost: int
    octets: int
    jitter_ms: float
    """RFC 3550 interarrival jitter, the mean over the streams."""


class LeanReceiver:
    """What a lean participant receives: every packet counted, a sample decrypted.

    It reads from a link it is given (:meth:`use`): a split participant's subscribe
    connection's own, or a bundled one's single link, shared with its :class:`LeanPublisher`.
    """

    def __init__(self, evidence: MediaEvidence) -> None:
        self._evidence = evidence
        self._by_ssrc: dict[int, InboundStats] = {}
        self._by_mid: dict[str, ReceivedStream] = {}
        self.link: RtpLink | None = None

    def expect(self, mid: str, stream: ReceivedStream) -> None:
        """``mid`` carries ``stream`` (call after each subscribe offer is applied)."""
        self._by_mid[mid] = stream

    def use(self, link: RtpLink) -> None:
        """Read what arrives on ``link`` (its ``on_rtp`` must be :meth:`on_rtp`)."""
        self.link = link

    def refresh(self, ssrcs: dict[str, tuple[int, int | None]]) -> None:
        """Map the SSRCs the sender announced (mid → SSRC, RTX SSRC) to their streams."""
        for mid, (ssrc, _rtx) in ssrcs.items():
            stream = self._by_mid.get(mid)
            bound = self._by_ssrc.get(ssrc)
            if stream is not None and (bound is None or bound.stream is not stream):
                self.bind(ssrc, stream)  # new, or a reused slot now carrying another stream

    def bind(self, ssrc: int, stream: ReceivedStream) -> None:
        """Count packets of ``ssrc`` into ``stream``."""
        self._by_ssrc[ssrc] = InboundStats(stream, 48_000 if stream.kind == "audio" else 90_000)

    def totals(self) -> ReceiveStats:
        """Everything received so far, from the RTP headers."""
        stats = self.stats()
        jitters = [s.jitter / s.clock_rate * 1000 for s in stats if s.packets]
        return ReceiveStats(
            sum(s.packets for s in stats),
            sum(s.lost for s in stats),
            sum(s.octets for s in stats),
            sum(jitters) / len(jitters) if jitters else 0.0,
        )

    def on_rtp(self, packet: bytes, arrival: float) -> None:
        """One received (still protected) packet, from the :class:`RtpLink`."""
        first, second, sequence, timestamp, ssrc = header(packet)
        stats = self._by_ssrc.get(ssrc)
        if stats is None:
            return
        stats.packets += 1
        stats.octets += len(packet)
        if stats.highest is None or stats.first is None:
            stats.first = stats.highest = sequence
        else:
            delta = (sequence - stats.highest) & 0xFFFF
            if delta < 0x8000:  # newer (a late packet is counted, not a new highest)
                if sequence < stats.highest:
                    stats.cycles += 0x10000
                stats.highest = sequence
        # RFC 3550 A.8 interarrival jitter, in timestamp units.
        transit = arrival * stats.clock_rate - timestamp
        if stats._transit is not None:
            d = abs(transit - stats._transit)
            if d < stats.clock_rate:  # a timestamp jump (a resumed source) is not jitter
                stats.jitter += (d - stats.jitter) / 16
        stats._transit = transit
        stream = stats.stream
        audio = stream.kind == "audio"
        if audio or second & 0x80:  # a whole audio frame, or the last packet of a video frame
            last = stream.last_frame_at
            if not audio and last is not None and arrival - last > FREEZE_GAP:
                stream.freezes += 1
            stream.arrived(arrival)
            if audio and audible(packet):
                stream.last_audible_at = arrival
        if first & 0x20:  # padding: the frame's first packet, carrying its mark
            stream.marked_frames += 1
            stats._marked += 1
            if stats._marked % MARK_SAMPLE[stream.kind] == 1 and self.link is not None:
                clear = self.link.unprotect(packet)
                mark = None if clear is None else read_padding_mark(clear)
                if mark is not None:
                    self._on_mark(stream, mark, arrival)
        self._evidence.notify()

    @staticmethod
    def _on_mark(stream: ReceivedStream, mark: Mark, arrival: float) -> None:
        stream.last_counter = mark.counter
        latency = (int(arrival * 1000) - mark.capture_ms) & 0xFFFFFFFF
        if latency < 60_000:
            stream.latencies_ms.append(float(latency))
        if stream.kind == "audio":
            stream.tone_hz = mark.tag or None
        else:
            stream.last_tag = mark.tag

    def stats(self) -> list[InboundStats]:
        return list(self._by_ssrc.values())

    def close(self) -> None:
        if self.link is not None:
            self.link.close()
