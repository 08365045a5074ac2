"""Peer connections as callsim opens and closes them (the SFU and the client alike).

Closing carries a correction to aiortc 1.16: ``RTCPeerConnection.close()`` stops the
senders and receivers first and the transports after, yielding in between, while
aiortc's own unowned connect task may still be running. When that task sees the
DTLS transport still connected it starts a sender that ``close()`` has already
passed, whose tasks then run forever. Once ``close()`` has stopped the transports
nothing can start any more, so a second stop of every sender and receiver (both
idempotent) catches what started in the gap. (Found by this project's leak fixture.)

Opening carries savings on aiortc's join path (found with cProfile on
joins at 50 joins/s, where together they were about half of the joining CPU):

* every video receiver builds a receive-side bandwidth estimator at once, ~1.2 ms
  for a 1000-bucket rate counter, even on a send-only slot or the lean path where
  no packet ever reaches it; :class:`_LazyEstimator` builds it on the first packet;
* a certificate's fingerprints are recomputed (hex-joined byte by byte) every time a
  description is written; :func:`_cached_fingerprints` computes them once per
  certificate;
* each connection generates its own ECDSA certificate and OpenSSL context; one
  certificate per process (as SFUs do) and one context per certificate and SRTP
  profile list serve every connection;
* negotiating codecs deep-copies every codec's parameters; :class:`_CodecCopier`
  copies them field by field (the fields are strings, numbers and flat dicts).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from typing import Any, Final

import aiortc.rtcpeerconnection
import aiortc.rtcrtpreceiver
from aiortc import RTCPeerConnection, RTCRtpCodecCapability, RTCRtpCodecParameters, RTCRtpReceiver
from aiortc.rate import RemoteBitrateEstimator
from aiortc.rtcdtlstransport import RTCCertificate

from simulator.media.ice import rtc_configuration

__all__ = [
    "FORWARDED_CODECS",
    "close_peer_connection",
    "open_peer_connection",
    "shared_certificate",
]


def _codecs(kind: str, wanted: set[str]) -> list[RTCRtpCodecCapability]:
    capabilities = RTCRtpReceiver.getCapabilities(kind)
    assert capabilities is not None, kind
    return [c for c in capabilities.codecs if c.mimeType.lower() in wanted]


FORWARDED_CODECS: Final = {
    "audio": _codecs("audio", {"audio/opus"}),
    "video": _codecs("video", {"video/vp8", "video/rtx"}),
}
"""What the reference SFU forwards: it recognises VP8 keyframes only, and maps payload types
per subscriber within one codec (a publisher in another codec would reach nobody). The SFU
answers with these alone; the reference client offers only these (a smaller description)."""


class _LazyEstimator:
    """Stands in for aiortc's ``RemoteBitrateEstimator`` until a packet needs it."""

    def __init__(self) -> None:
        self._estimator: RemoteBitrateEstimator | None = None

    def add(self, *args: Any, **kwargs: Any) -> Any:
        if self._estimator is None:
            self._estimator = RemoteBitrateEstimator()
        return self._estimator.add(*args, **kwargs)


_original_fingerprints = RTCCertificate.getFingerprints


def _cached_fingerprints(self: Any) -> Any:
    cached = getattr(self, "_callsim_fingerprints", None)
    if cached is None:
        cached = _original_fingerprints(self)
        self._callsim_fingerprints = cached
    return list(cached)


_generate_certificate = RTCCertificate.generateCertificate.__func__  # type: ignore[attr-defined]
_create_context = RTCCertificate._create_ssl_context


@functools.cache
def _shared_certificate() -> RTCCertificate:
    return _generate_certificate(RTCCertificate)  # type: ignore[no-any-return]


def shared_certificate() -> RTCCertificate:
    """The process's one DTLS certificate (every connection's, and the ORTC transports'), with
    its fingerprints and OpenSSL contexts cached."""
    _speed_up_aiortc()
    return _shared_certificate()


def _cached_context(self: Any, srtp_profiles: list[Any]) -> Any:
    contexts = self.__dict__.setdefault("_callsim_contexts", {})
    key = tuple(profile.openssl_profile for profile in srtp_profiles)
    if key not in contexts:
        contexts[key] = _create_context(self, srtp_profiles)
    return contexts[key]


class _CodecCopier:
    """The ``copy`` module as aiortc's peer connection sees it: codec parameters copied cheaply."""

    copy = staticmethod(copy.copy)

    @staticmethod
    def deepcopy(value: Any) -> Any:
        if isinstance(value, RTCRtpCodecParameters):
            return dataclasses.replace(
                value,
                rtcpFeedback=[dataclasses.replace(f) for f in value.rtcpFeedback],
                parameters=dict(value.parameters),
            )
        return copy.deepcopy(value)


def _speed_up_aiortc() -> None:
    """Apply the savings (idempotent, process-wide: aiortc offers no seam for any of them)."""
    setattr(aiortc.rtcrtpreceiver, "RemoteBitrateEstimator", _LazyEstimator)  # noqa: B010
    setattr(aiortc.rtcpeerconnection, "copy", _CodecCopier)  # noqa: B010
    RTCCertificate.getFingerprints = _cached_fingerprints  # type: ignore[method-assign]
    RTCCertificate.generateCertificate = classmethod(lambda cls: _shared_certificate())  # type: ignore[assignment,method-assign]
    RTCCertificate._create_ssl_context = _cached_context  # type: ignore[method-assign]


def open_peer_connection() -> RTCPeerConnection:
    """A peer connection for loopback, no ICE servers, max-bundle."""
    _speed_up_aiortc()
    return RTCPeerConnection(rtc_configuration())


async def close_peer_connection(pc: RTCPeerConnection) -> None:
    """Close ``pc`` and everything that started while it was closing."""
    await pc.close()
    for transceiver in pc.getTransceivers():
        await transceiver.sender.stop()
        await transceiver.receiver.stop()
