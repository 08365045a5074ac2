"""How a Jingle session's media moves, once ICE and DTLS are up: the two media paths of a
participant of the Jitsi door (:mod:`simulator.media.paths`).

* :class:`LeanPlane`, the load path: pre-encoded frames sent as they are through an
  :class:`~simulator.media.rtp.RtpLink`, every packet received counted from its header and a
  sample read for marks and tones (:mod:`simulator.media.lean`).
* :class:`FullPlane`, the realistic sample: aiortc's own senders (a synthetic camera and a
  tone, encoded) and receivers (decoded, then analysed) on the session's DTLS transport, as
  ORTC objects: Jingle is not SDP, so there is no peer connection to make them.

Both take the SSRCs the session announced: what is sent under each, and what each remote
SSRC carries.
"""

from __future__ import annotations

import contextlib
from typing import Any, Literal, Protocol

from aiortc import (
    RTCDtlsTransport,
    RTCRtcpParameters,
    RTCRtpCodecParameters,
    RTCRtpReceiver,
    RTCRtpSender,
)
from aiortc.rtcrtpparameters import (
    RTCRtcpFeedback,
    RTCRtpDecodingParameters,
    RTCRtpEncodingParameters,
    RTCRtpReceiveParameters,
    RTCRtpSendParameters,
)
from aiortc.rtcrtpreceiver import RemoteStreamTrack
from aiortc.utils import random32

from simulator.jitsi.jingle import PayloadType
from simulator.media.analysers import MediaEvidence, ReceivedStream
from simulator.media.lean import LeanPublisher, LeanReceiver, LeanSource, ReceiveStats
from simulator.media.sources import CameraTrack, MicrophoneTrack
from simulator.tasks import TaskSet

__all__ = ["FullPlane", "LeanPlane", "MediaPlane", "codec_of"]

Sent = tuple[Any, int, PayloadType]
"""``(source, ssrc, codec)``: a local source and how it is announced."""


def codec_of(kind: Literal["audio", "video"], payload: PayloadType) -> RTCRtpCodecParameters:
    """aiortc's codec parameters for a Jingle payload type."""
    return RTCRtpCodecParameters(
        mimeType=f"{kind}/{payload.name}",
        clockRate=payload.clockrate,
        channels=payload.channels if kind == "audio" else None,
        payloadType=payload.id,
        parameters=dict(payload.parameters),
        rtcpFeedback=[RTCRtcpFeedback(kind_, sub or None) for kind_, sub in payload.feedback],
    )


class MediaPlane(Protocol):
    """What :class:`~simulator.sdk.jitsi.media.JingleMedia` asks of a media path."""

    async def start(self, dtls: RTCDtlsTransport, sent: list[Sent]) -> None:
        """Send ``sent`` and receive what is bound, from now on."""

    def bind(self, ssrc: int, stream: ReceivedStream, codec: PayloadType) -> None:
        """``ssrc`` carries ``stream`` (before or after :meth:`start`)."""

    def unbind(self, ssrc: int) -> None:
        """``ssrc`` carries nothing any more."""

    async def stats(self) -> ReceiveStats: ...

    async def close(self) -> None: ...


class LeanPlane:
    """Pre-encoded media through an RTP link; counted and sampled on arrival."""

    def __init__(self, evidence: MediaEvidence) -> None:
        self._receiver = LeanReceiver(evidence)
        self._publisher: LeanPublisher | None = None

    async def start(self, dtls: RTCDtlsTransport, sent: list[Sent]) -> None:
        bound = [(source, ssrc, codec.id) for source, ssrc, codec in sent if isinstance(source, LeanSource)]
        self._publisher = LeanPublisher(dtls, bound, on_rtp=self._receiver.on_rtp)
        self._receiver.use(self._publisher.link)

    def bind(self, ssrc: int, stream: ReceivedStream, codec: PayloadType) -> None:
        self._receiver.bind(ssrc, stream)

    def unbind(self, ssrc: int) -> None:
        pass  # its packets stop; the stream is marked inactive by the session

    async def stats(self) -> ReceiveStats:
        return self._receiver.totals()

    async def close(self) -> None:
        if self._publisher is not None:
            self._publisher.close()
            self._publisher = None
        self._receiver.close()


class FullPlane:
    """aiortc's encoders and decoders on the DTLS transport; what arrives is analysed."""

    def __init__(self, evidence: MediaEvidence, cname: str) -> None:
        self._evidence = evidence
        self._cname = cname
        self._dtls: RTCDtlsTransport | None = None
        self._senders: list[RTCRtpSender] = []
        self._receivers: dict[int, RTCRtpReceiver] = {}
        self._waiting: dict[int, tuple[ReceivedStream, PayloadType]] = {}
        self._tasks = TaskSet(f"full-plane:{cname}")
        self._rtcp_ssrc = random32()

    async def start(self, dtls: RTCDtlsTransport, sent: list[Sent]) -> None:
        self._dtls = dtls
        for source, ssrc, codec in sent:
            if not isinstance(source, MicrophoneTrack | CameraTrack):
                continue
            sender = RTCRtpSender(source.track, dtls)
            sender._ssrc = ssrc  # the SSRC the session announced (aiortc draws its own)
            self._senders.append(sender)
            await sender.send(
                RTCRtpSendParameters(
                    codecs=[codec_of(source.track.kind, codec)],  # type: ignore[arg-type]
                    encodings=[RTCRtpEncodingParameters(ssrc=ssrc, payloadType=codec.id)],
                    muxId="",
                    rtcp=RTCRtcpParameters(cname=self._cname, ssrc=ssrc, mux=True),
                )
            )
        waiting, self._waiting = self._waiting, {}
        for ssrc, (stream, codec) in waiting.items():
            await self._receive(ssrc, stream, codec)

    def bind(self, ssrc: int, stream: ReceivedStream, codec: PayloadType) -> None:
        if self._dtls is None:
            self._waiting[ssrc] = (stream, codec)
        else:
            self._tasks.spawn(self._receive(ssrc, stream, codec), f"receive-{ssrc}")

    async def _receive(self, ssrc: int, stream: ReceivedStream, codec: PayloadType) -> None:
        assert self._dtls is not None
        kind: Literal["audio", "video"] = "video" if stream.kind == "video" else "audio"
        if (earlier := self._receivers.pop(ssrc, None)) is not None:
            await earlier.stop()
        receiver = RTCRtpReceiver(kind, self._dtls)
        # What a peer connection does for a receiver before it receives (aiortc 1.16): its
        # track, and the SSRC its feedback (receiver reports, NACK, PLI) is sent from.
        receiver._track = RemoteStreamTrack(kind=kind)
        receiver._set_rtcp_ssrc(self._rtcp_ssrc)
        self._receivers[ssrc] = receiver
        await receiver.receive(
            RTCRtpReceiveParameters(
                codecs=[codec_of(kind, codec)],
                encodings=[RTCRtpDecodingParameters(ssrc=ssrc, payloadType=codec.id)],
                muxId="",
                rtcp=RTCRtcpParameters(mux=True),
            )
        )
        self._tasks.spawn(self._evidence.consume(receiver.track, lambda: stream), f"analyse-{ssrc}")

    def unbind(self, ssrc: int) -> None:
        self._waiting.pop(ssrc, None)
        if (receiver := self._receivers.pop(ssrc, None)) is not None:
            self._tasks.spawn(receiver.stop(), f"stop-{ssrc}")

    async def stats(self) -> ReceiveStats:
        packets = lost = octets = 0
        jitters: list[float] = []
        for receiver in list(self._receivers.values()):
            for stat in (await receiver.getStats()).values():
                if getattr(stat, "type", "") == "inbound-rtp":
                    packets += int(getattr(stat, "packetsReceived", 0) or 0)
                    lost += max(0, int(getattr(stat, "packetsLost", 0) or 0))
                    octets += int(getattr(stat, "bytesReceived", 0) or 0)
                    rate = 48_000 if receiver.track.kind == "audio" else 90_000
                    jitters.append(float(getattr(stat, "jitter", 0) or 0) / rate * 1000)
        return ReceiveStats(packets, lost, octets, sum(jitters) / len(jitters) if jitters else 0.0)

    async def close(self) -> None:
        for sender in self._senders:
            with contextlib.suppress(Exception):
                await sender.stop()
        for receiver in self._receivers.values():
            with contextlib.suppress(Exception):
                await receiver.stop()
        self._senders.clear()
        self._receivers.clear()
        await self._tasks.aclose()
