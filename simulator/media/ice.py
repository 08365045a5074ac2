"""How callsim runs ICE: loopback only, and two corrections to aioice 0.13.

* aioice never offers 127.0.0.1 as a host candidate and has no option for it
  (docs/media.md pitfall 1), so its address discovery is replaced by one that returns the
  loopback address only.
* ``Connection.connect()`` starts the consent-freshness task after the check list
  completes without looking at whether ``close()`` ran meanwhile; when a connection
  is closed right as its checks succeed, that task is started on a closed
  connection and loops forever. The wrapped ``connect()`` cancels it in that case.
  (Found by this project's leak fixture on a loaded machine.)

Every peer connection is created with :func:`rtc_configuration`: no ICE servers
(there is no network to reach one, pitfall 2) and max-bundle (one transport).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aioice.ice
from aiortc import RTCBundlePolicy, RTCConfiguration

__all__ = ["ice_connection", "patch_aioice", "rtc_configuration"]

LOOPBACK = "127.0.0.1"
_PATCHED = "_callsim_patched"


def _loopback_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    return [LOOPBACK] if use_ipv4 else []


def _respecting_close(connect: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
    async def connect_then_check(self: Any) -> None:
        await connect(self)
        if self._closing and self._query_consent_task is not None:
            self._query_consent_task.cancel()
            self._query_consent_task = None

    setattr(connect_then_check, _PATCHED, True)
    return connect_then_check


def ice_connection(pc: Any) -> Any | None:
    """The aioice connection under ``pc``'s one (bundled) transport, or None before it has one.
    aiortc keeps it private; the liveness watch and the network shapers both need it. ``pc``
    may also be an :class:`~simulator.media.ortc.IceDtlsTransport`, which has it to hand."""
    if (own := getattr(pc, "ice_connection", None)) is not None:
        return own
    transceivers = pc.getTransceivers()
    return transceivers[0].receiver.transport.transport._connection if transceivers else None


def patch_aioice() -> None:
    """Apply both corrections (idempotent, process-wide: aioice offers no other seam)."""
    aioice.ice.get_host_addresses = _loopback_addresses
    connection = aioice.ice.Connection
    if not getattr(connection.connect, _PATCHED, False):
        connection.connect = _respecting_close(connection.connect)  # type: ignore[method-assign,assignment]


def rtc_configuration() -> RTCConfiguration:
    """The configuration of every peer connection callsim creates."""
    patch_aioice()
    return RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
