"""A bundled publish offer, read and answered without a peer connection (docs/signalling.md §3).

The SFU's side of a bundled participant is an ORTC transport
(:class:`~simulator.media.ortc.IceDtlsTransport`) and RTP links, so its negotiation is
only this: aiortc's SDP parser reads the offer once, :func:`read_offer` checks it against
the publish rules and picks each m-line's forwarded codec (Opus; VP8 and its RTX), and
:func:`write_answer` writes the answer (:mod:`simulator.media.description`) from what the
SFU chose: the offer's mids and payload types, ``recvonly`` for the three publish m-lines,
``sendonly`` with an SSRC of the SFU's for each receive slot, the SFU's ICE credentials,
candidates and fingerprints, and ``a=setup:active`` (the SFU is the DTLS client).

A refusal is an :class:`~simulator.server.errors.ApiError` worded as for a split participant,
whose offer an ``RTCPeerConnection`` still answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from aiortc import RTCRtpCodecParameters
from aiortc.rtcrtpparameters import RTCRtcpFeedback
from aiortc.sdp import MediaDescription, SessionDescription

from simulator import protocol
from simulator.media.description import MediaLine, remote_transport, write_description
from simulator.media.ortc import LocalTransport, RemoteTransport
from simulator.media.rtp import announced_ssrcs
from simulator.server.errors import ApiError, Codes

__all__ = [
    "AnsweredLine",
    "OfferedLine",
    "PublishOffer",
    "read_offer",
    "shape_error",
    "write_answer",
]

Source = Literal["mic", "camera", "screen"]
PUBLISH_SLOTS: Final[tuple[tuple[str, Source], ...]] = (
    ("audio", "mic"),
    ("video", "camera"),
    ("video", "screen"),
)
"""The publish m-lines, in order: their kind and the source each carries."""
PUBLISH_KINDS: Final = tuple(kind for kind, _ in PUBLISH_SLOTS)
FORWARDED: Final = {"audio": ("audio/opus", "Opus"), "video": ("video/vp8", "VP8")}


@dataclass(frozen=True)
class OfferedLine:
    """One m-line of the offer, as the SFU takes it."""

    kind: str
    mid: str
    direction: str
    codec: RTCRtpCodecParameters
    """The forwarded codec, in the offer's payload type."""
    rtx: RTCRtpCodecParameters | None
    """Its retransmission format, if offered (video)."""
    ssrc: int | None
    """The stream the offerer announces (publish m-lines)."""
    rtx_ssrc: int | None


@dataclass(frozen=True)
class PublishOffer:
    """What the SFU takes from a bundled publish offer."""

    lines: list[OfferedLine]
    transport: RemoteTransport
    remb: bool
    """Whether the offer's video asks for ``goog-remb`` (the answer then keeps it)."""


@dataclass(frozen=True)
class AnsweredLine:
    """The SFU's side of one m-line: a receive slot's SSRC (None on a publish m-line)."""

    offered: OfferedLine
    ssrc: int | None = None


def shape_error(receive: protocol.ReceiveSlots | None) -> str:
    """The refusal of an offer whose m-lines are not the protocol's."""
    shape = "publish offer must have m-lines audio (mic), video (camera), video (screen)"
    if receive is not None:
        shape += (
            f", then {receive.audio} audio, {receive.video} video and {receive.screen} video"
            " (screen) receive m-lines (recvonly)"
        )
    return shape


def _refused(message: str) -> ApiError:
    return ApiError(Codes.NEGOTIATION_FAILED, message)


def read_offer(sdp: str, receive: protocol.ReceiveSlots) -> PublishOffer:
    """Read and check a bundled publish offer; ApiError (``ERR_NEGOTIATION_FAILED``) says what
    is wrong."""
    if "\na=simulcast:" in sdp or "\na=ssrc-group:SIM" in sdp:
        # Several layers of one camera: the SFU forwards one stream per source (for now).
        raise _refused("publish offer refused: simulcast is not supported (send one layer, without RIDs)")
    try:
        parsed = SessionDescription.parse(sdp)
    except Exception as exc:  # aiortc's parser asserts and raises on bad lines alike
        raise _refused(f"publish offer refused: not a session description ({type(exc).__name__})") from None
    expected = [*PUBLISH_KINDS, *(kind for kind, _ in receive.kinds())]
    media = parsed.media
    if [m.kind for m in media] != expected or any(m.rtp.muxId is None for m in media):
        raise _refused(shape_error(receive))
    if any(m.direction != "recvonly" for m in media[len(PUBLISH_KINDS) :]):
        raise _refused("publish offer refused: receive m-lines must be recvonly")
    first = media[0]
    remote = remote_transport(parsed)
    if remote is None:
        raise _refused("publish offer refused: no ICE credentials or DTLS fingerprint")
    if first.dtls is not None and first.dtls.role == "client":
        raise _refused("publish offer refused: the offerer must be a:setup:actpass or passive")
    bundle = [g for g in parsed.group if g.semantic == "BUNDLE"]
    mids = [str(m.rtp.muxId) for m in media]
    if not bundle or set(mids) - set(map(str, bundle[0].items)):
        raise _refused("publish offer refused: every m-line must be in one BUNDLE group")
    lines = [_line(m.kind, str(m.rtp.muxId), m.direction or "sendrecv", m) for m in media]
    remb = any(
        feedback.type == "goog-remb"
        for m in media[: len(PUBLISH_KINDS)]
        if m.kind == "video"
        for codec in m.rtp.codecs
        for feedback in codec.rtcpFeedback
    )
    return PublishOffer(lines, remote, remb)


def _line(kind: str, mid: str, direction: str, media: MediaDescription) -> OfferedLine:
    mime, name = FORWARDED[kind]
    codec = next((c for c in media.rtp.codecs if c.mimeType.lower() == mime), None)
    if codec is None:
        raise _refused(f"publish offer refused: no {kind} codec the SFU forwards ({name})")
    rtx = next(
        (
            c
            for c in media.rtp.codecs
            if c.mimeType.lower() == "video/rtx" and c.parameters.get("apt") == codec.payloadType
        ),
        None,
    )
    ssrc, rtx_ssrc = announced_ssrcs(media) or (None, None)
    return OfferedLine(kind, mid, direction, codec, rtx, ssrc, rtx_ssrc)


_FEEDBACK: Final = {
    "audio": (),
    "video": (("nack", None), ("nack", "pli"), ("ccm", "fir"), ("goog-remb", None)),
}
"""The RTCP feedback the SFU takes part in, per kind (kept where the offer has it)."""


def _answered_codec(codec: RTCRtpCodecParameters, kind: str, *, remb: bool) -> RTCRtpCodecParameters:
    offered = {(f.type, f.parameter) for f in codec.rtcpFeedback}
    return RTCRtpCodecParameters(
        mimeType=codec.mimeType,
        clockRate=codec.clockRate,
        channels=codec.channels,
        payloadType=codec.payloadType,
        rtcpFeedback=[
            RTCRtcpFeedback(type, parameter)
            for type, parameter in _FEEDBACK[kind]
            if (type, parameter) in offered and (type != "goog-remb" or remb)
        ],
        parameters=dict(codec.parameters),
    )


def write_answer(offer: PublishOffer, lines: Sequence[AnsweredLine], local: LocalTransport) -> str:
    """The SDP answer: one m-line per offered one (see the module's description)."""
    return write_description(
        [
            MediaLine(
                line.offered.kind,
                line.offered.mid,
                "recvonly" if line.ssrc is None else "sendonly",
                [
                    _answered_codec(codec, line.offered.kind, remb=offer.remb)
                    for codec in (line.offered.codec, line.offered.rtx)
                    if codec is not None
                ],
                line.ssrc,
            )
            for line in lines
        ],
        local,
        setup="active",
    )
