"""A bundled publish offer, read and answered without a peer connection (docs/signalling.md §3).

The SFU's side of a bundled participant is an ORTC transport
(:class:`~simulator.media.ortc.IceDtlsTransport`) and RTP links, so its negotiation is
only this: aiortc's SDP parser reads the offer once, :func:`read_offer` checks it against
the publish rules and picks each m-line's forwarded codec (Opus; VP8 and its RTX), and
:func:`write_answer` writes the answer from what the SFU chose: the offer's mids and payload
types, ``recvonly`` for the three publish m-lines, ``sendonly`` with an SSRC of the SFU's
for each receive slot, the SFU's ICE credentials, candidates and fingerprints, and
``a=setup:active`` (the SFU is the DTLS client). No header extension is negotiated: the
forwarder drops them anyway (their IDs are each publisher's own).

A refusal is an :class:`~simulator.server.errors.ApiError` worded as for a split participant,
whose offer an ``RTCPeerConnection`` still answers.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from aiortc import RTCDtlsFingerprint, RTCIceCandidate, RTCIceParameters, RTCRtpCodecParameters
from aiortc.sdp import MediaDescription, SessionDescription, candidate_to_sdp

from simulator import protocol
from simulator.server.errors import ApiError, Codes

__all__ = [
    "AnsweredLine",
    "OfferedLine",
    "PublishOffer",
    "fresh_ssrcs",
    "read_offer",
    "shape_error",
    "write_answer",
]

PUBLISH_KINDS: Final = ("audio", "video", "video")
"""The publish m-lines, in order: microphone, camera, screen."""
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
    ice: RTCIceParameters
    candidates: list[RTCIceCandidate]
    candidates_complete: bool
    fingerprints: list[RTCDtlsFingerprint]
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
    if first.ice is None or not first.ice.usernameFragment or not first.ice.password:
        raise _refused("publish offer refused: no ICE credentials")
    if first.dtls is None or not first.dtls.fingerprints:
        raise _refused("publish offer refused: no DTLS fingerprint")
    if first.dtls.role == "client":
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
    return PublishOffer(
        lines,
        first.ice,
        [c for m in media for c in m.ice_candidates],
        any(m.ice_candidates_complete for m in media),
        first.dtls.fingerprints,
        remb,
    )


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
    fid = [g.items for g in media.ssrc_group if g.semantic == "FID" and len(g.items) == 2]
    ssrc: int | None = None
    rtx_ssrc: int | None = None
    if fid:
        ssrc, rtx_ssrc = int(fid[0][0]), int(fid[0][1])
    elif media.ssrc:
        ssrc = media.ssrc[0].ssrc
    return OfferedLine(kind, mid, direction, codec, rtx, ssrc, rtx_ssrc)


def fresh_ssrcs(count: int, taken: set[int]) -> list[int]:
    """``count`` random SSRCs clear of ``taken`` and of each other."""
    chosen: list[int] = []
    while len(chosen) < count:
        ssrc = random.getrandbits(32)
        if ssrc > 1 and ssrc not in taken and ssrc not in chosen:
            chosen.append(ssrc)
    return chosen


_FEEDBACK: Final = {
    "audio": (),
    "video": (("nack", None), ("nack", "pli"), ("ccm", "fir"), ("goog-remb", None)),
}
"""The RTCP feedback the SFU takes part in, per kind (kept where the offer has it)."""


def write_answer(
    offer: PublishOffer,
    lines: Sequence[AnsweredLine],
    *,
    ufrag: str,
    pwd: str,
    candidates: Sequence[RTCIceCandidate],
    fingerprints: Sequence[RTCDtlsFingerprint],
) -> str:
    """The SDP answer: one m-line per offered one (see the module's description)."""
    session = random.getrandbits(32)
    cname = stream = uuid.uuid4().hex
    port = candidates[0].port if candidates else 9
    host = candidates[0].ip if candidates else "0.0.0.0"
    transport = [
        *(f"a=candidate:{candidate_to_sdp(c)}" for c in candidates),
        "a=end-of-candidates",
        f"a=ice-ufrag:{ufrag}",
        f"a=ice-pwd:{pwd}",
        *(f"a=fingerprint:{f.algorithm} {f.value}" for f in fingerprints),
        "a=setup:active",
    ]
    out = [
        "v=0",
        f"o=- {session} {session} IN IP4 0.0.0.0",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE " + " ".join(line.offered.mid for line in lines),
        "a=msid-semantic:WMS *",
    ]
    for line in lines:
        offered = line.offered
        codecs = [offered.codec, *([offered.rtx] if offered.rtx is not None else [])]
        out += [
            f"m={offered.kind} {port} UDP/TLS/RTP/SAVPF {' '.join(str(c.payloadType) for c in codecs)}",
            f"c=IN IP4 {host}",
            "a=recvonly" if line.ssrc is None else "a=sendonly",
            f"a=mid:{offered.mid}",
        ]
        if line.ssrc is not None:
            out.append(f"a=msid:{stream} {stream}-{offered.mid}")
        out += ["a=rtcp:9 IN IP4 0.0.0.0", "a=rtcp-mux"]
        if line.ssrc is not None:
            out.append(f"a=ssrc:{line.ssrc} cname:{cname}")
        for codec in codecs:
            name = codec.mimeType.split("/", 1)[1]
            channels = f"/{codec.channels}" if codec.channels and codec.channels > 1 else ""
            out.append(f"a=rtpmap:{codec.payloadType} {name}/{codec.clockRate}{channels}")
            offered_feedback = {(f.type, f.parameter) for f in codec.rtcpFeedback}
            for kind, parameter in _FEEDBACK[offered.kind]:
                if (kind, parameter) in offered_feedback and (kind != "goog-remb" or offer.remb):
                    suffix = f" {parameter}" if parameter else ""
                    out.append(f"a=rtcp-fb:{codec.payloadType} {kind}{suffix}")
            if codec.parameters:
                fmtp = ";".join(f"{k}={v}" if v is not None else str(k) for k, v in codec.parameters.items())
                out.append(f"a=fmtp:{codec.payloadType} {fmtp}")
        out += transport
    return "\r\n".join(out) + "\r\n"
