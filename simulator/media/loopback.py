"""Loopback-only ICE (MEDIA.md pitfall 1, 2).

aioice never offers 127.0.0.1 as a host candidate and has no option for it, so its
address discovery is replaced, once per process, by one that returns the loopback
address only. Every peer connection here is created with :func:`rtc_configuration`:
no ICE servers (there is no network to reach one) and max-bundle (one transport).
"""

from __future__ import annotations

import aioice.ice
from aiortc import RTCBundlePolicy, RTCConfiguration

__all__ = ["rtc_configuration", "use_loopback_candidates"]

LOOPBACK = "127.0.0.1"


def _loopback_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    return [LOOPBACK] if use_ipv4 else []


def use_loopback_candidates() -> None:
    """Make aioice gather the loopback host candidate only (idempotent)."""
    aioice.ice.get_host_addresses = _loopback_addresses


def rtc_configuration() -> RTCConfiguration:
    """The configuration of every peer connection callsim creates."""
    use_loopback_candidates()
    return RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
