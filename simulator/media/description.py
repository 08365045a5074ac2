"""Session descriptions written without a peer connection (a lean client's offer, the SFU's answer).

Where callsim runs an ORTC transport (:class:`~simulator.media.ortc.IceDtlsTransport`) instead
of an ``RTCPeerConnection``, it still speaks SDP to the other side: :func:`write_description`
writes one bundled description from what the writer chose (each m-line's kind, mid,
direction, codecs in their payload types with their RTCP feedback, and the SSRC it sends
with, if any) and the transport's ICE credentials, candidates and fingerprints. Reading is
aiortc's parser (``aiortc.sdp.SessionDescription.parse``); :func:`remote_transport` takes
what the transport needs from what it parsed.

No header extension is written: the SFU drops them when it forwards (their IDs are each
publisher's own), and the lean path neither writes nor reads any.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from aiortc import RTCRtpCodecParameters
from aiortc.sdp import SessionDescription, candidate_to_sdp

from simulator.media.ortc import LocalTransport, RemoteTransport

__all__ = ["MediaLine", "fresh_ssrcs", "remote_transport", "write_description"]


@dataclass(frozen=True)
class MediaLine:
    """One m-line as its writer chose it."""

    kind: str
    mid: str
    direction: Literal["sendonly", "recvonly", "sendrecv", "inactive"]
    codecs: Sequence[RTCRtpCodecParameters]
    """In preference order, each with its payload type and the RTCP feedback it takes part in."""
    ssrc: int | None = None
    """The SSRC the writer sends with on this m-line (None: it sends nothing here)."""


def fresh_ssrcs(count: int, taken: set[int]) -> list[int]:
    """``count`` random SSRCs clear of ``taken`` and of each other. 0, 1 and 2 are never
    chosen: the SFU keeps 1 (its RTCP sender) and 2 (the bridge's placeholder video source)."""
    chosen: list[int] = []
    while len(chosen) < count:
        ssrc = random.getrandbits(32)
        if ssrc > 2 and ssrc not in taken and ssrc not in chosen:
            chosen.append(ssrc)
    return chosen


def remote_transport(parsed: SessionDescription) -> RemoteTransport | None:
    """The far side's ICE credentials, candidates (UDP, no mDNS names: aioice resolves none)
    and fingerprints; None when it lacks credentials or a fingerprint."""
    if not parsed.media:
        return None
    first = parsed.media[0]
    if first.ice is None or not first.ice.usernameFragment or not first.ice.password:
        return None
    if first.dtls is None or not first.dtls.fingerprints:
        return None
    return RemoteTransport(
        first.ice,
        [
            c
            for m in parsed.media
            for c in m.ice_candidates
            if c.protocol.lower() == "udp" and not c.ip.endswith(".local")
        ],
        any(m.ice_candidates_complete for m in parsed.media),
        first.dtls.fingerprints,
    )


def write_description(
    lines: Sequence[MediaLine], local: LocalTransport, *, setup: Literal["actpass", "active", "passive"]
) -> str:
    """One bundled description of ``lines`` on ``local`` (see the module's description)."""
    session = random.getrandbits(32)
    cname = stream = uuid.uuid4().hex
    first = local.candidates[0] if local.candidates else None
    candidates = [*(f"a=candidate:{candidate_to_sdp(c)}" for c in local.candidates), "a=end-of-candidates"]
    out = [
        "v=0",
        f"o=- {session} {session} IN IP4 0.0.0.0",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE " + " ".join(line.mid for line in lines),
        "a=msid-semantic:WMS *",
        # Session level, said once for every m-line (RFC 8839 §5.4, RFC 8122 §5): a tenth of
        # the bytes to write and to parse of ten m-lines each repeating three fingerprints.
        f"a=ice-ufrag:{local.ufrag}",
        f"a=ice-pwd:{local.pwd}",
        *(f"a=fingerprint:{f.algorithm} {f.value}" for f in local.fingerprints),
        f"a=setup:{setup}",
    ]
    for line in lines:
        out += [
            f"m={line.kind} {first.port if first else 9} UDP/TLS/RTP/SAVPF "
            + " ".join(str(c.payloadType) for c in line.codecs),
            f"c=IN IP4 {first.ip if first else '0.0.0.0'}",
            f"a={line.direction}",
            f"a=mid:{line.mid}",
        ]
        if line.ssrc is not None:
            out.append(f"a=msid:{stream} {stream}-{line.mid}")
        out += ["a=rtcp:9 IN IP4 0.0.0.0", "a=rtcp-mux"]
        if line.ssrc is not None:
            out.append(f"a=ssrc:{line.ssrc} cname:{cname}")
        for codec in line.codecs:
            name = codec.mimeType.split("/", 1)[1]
            channels = f"/{codec.channels}" if codec.channels and codec.channels > 1 else ""
            out.append(f"a=rtpmap:{codec.payloadType} {name}/{codec.clockRate}{channels}")
            for feedback in codec.rtcpFeedback:
                suffix = f" {feedback.parameter}" if feedback.parameter else ""
                out.append(f"a=rtcp-fb:{codec.payloadType} {feedback.type}{suffix}")
            if codec.parameters:
                fmtp = ";".join(f"{k}={v}" if v is not None else str(k) for k, v in codec.parameters.items())
                out.append(f"a=fmtp:{codec.payloadType} {fmtp}")
        # Candidates stay in every m-line: a max-bundle aiortc takes them from the last one.
        out += candidates
    return "\r\n".join(out) + "\r\n"
