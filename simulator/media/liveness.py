"""Dead media, noticed: consent freshness (RFC 7675) and RTP inactivity on one connection.

aioice checks consent every 5 s and gives up after 6 failures, so a peer that vanishes
(a stopped process, a black-holed network, a stalled backend) is noticed after ~30 s,
and nobody is told: the connection just closes. A :class:`MediaWatch` asks the far end
for consent every :data:`CONSENT_INTERVAL` itself, on the connection's nominated pair,
and reports the connection dead when nothing has answered for :data:`DEAD_AFTER`; where
media must flow (a publisher's microphone always sends, silence when muted), the RTP itself
is the sign of life instead, and a connection that has carried none for as long is dead.
Both ends watch: the SFU removes the participant everywhere, the client tells the
application (``onError``).

:data:`DEAD_AFTER` is shorter than RFC 7675's 30 s on purpose: a call harness wants a dead
participant gone in under 10 s, and loopback answers in microseconds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Final

from aiortc import RTCPeerConnection

from simulator.media.ice import ice_connection
from simulator.media.ortc import IceDtlsTransport

__all__ = ["CONSENT_INTERVAL", "DEAD_AFTER", "MediaWatch", "Watched"]

logger = logging.getLogger(__name__)

CONSENT_INTERVAL: Final = 2.0
"""Seconds between consent requests (each waits up to 3.5 s: two retransmissions, so a long
or lossy path answers in time)."""
Watched = RTCPeerConnection | IceDtlsTransport
"""A peer connection, or the SFU's transport of a bundled participant (no peer connection)."""
DEAD_AFTER: Final = 7.0
"""Seconds without an answer (or without RTP, where it must flow) before the connection is
dead: three unanswered requests in a row. With the interval and a request's own wait, a dead
peer is reported 7–10.5 s after its last sign of life."""


class MediaWatch:
    """Watches one connected peer connection (or transport) and calls ``on_dead(reason)`` once when it dies.

    Run :meth:`watch` as a task of the owner's; :meth:`heard_rtp` is called by whoever sees
    the connection's RTP (an :class:`~simulator.media.rtp.RtpLink` handler) when
    ``rtp_expected``.
    """

    def __init__(self, pc: Watched, on_dead: Callable[[str], None], *, rtp_expected: bool = False) -> None:
        self._pc = pc
        self._on_dead = on_dead
        self._rtp_expected = rtp_expected
        self._now = asyncio.get_running_loop().time
        self.last_consent = self.last_rtp = self._now()
        self.dead: str | None = None
        # aioice asks for consent too, waiting 0.5 s for each answer and closing the connection
        # after six misses: a path with a 600 ms round trip (a satellite link) loses its media
        # after 30 s. This watch is the connection's consent check instead.
        if (task := getattr(ice_connection(pc), "_query_consent_task", None)) is not None:
            task.cancel()

    def heard_rtp(self, at: float) -> None:
        """An RTP packet arrived at ``at`` (loop time)."""
        self.last_rtp = at

    async def watch(self) -> None:
        """Watch until the connection dies (or the task is cancelled). Where RTP must flow, it
        is the sign of life (consent is not asked: a lossy path loses requests, not a stream);
        elsewhere, consent is asked every :data:`CONSENT_INTERVAL`."""
        while self.dead is None:
            await asyncio.sleep(CONSENT_INTERVAL)
            if not self._rtp_expected and await self._consent():
                self.last_consent = self._now()
            self._judge()

    def _judge(self) -> None:
        now = self._now()
        if self._pc.connectionState in ("failed", "closed"):
            reason = f"the media connection is {self._pc.connectionState}"
        elif self._rtp_expected and now - self.last_rtp >= DEAD_AFTER:
            reason = f"no RTP for {now - self.last_rtp:.1f} s"
        elif not self._rtp_expected and now - self.last_consent >= DEAD_AFTER:
            reason = f"no ICE consent for {now - self.last_consent:.1f} s"
        else:
            return
        self.dead = reason
        self._on_dead(reason)

    async def _consent(self) -> bool:
        """One binding request on each nominated pair (RFC 7675 §5.1); True if any answered."""
        connection = ice_connection(self._pc)
        if connection is None:
            return False
        password = connection.remote_password
        if password is None:
            return False
        answered = False
        for pair in list(connection._nominated.values()):
            request = connection.build_request(pair, nominate=False)
            try:
                await pair.protocol.request(
                    request, pair.remote_addr, integrity_key=password.encode("utf8"), retransmissions=2
                )
                answered = True
            except Exception:  # a request that cannot even be sent is no answer either
                logger.debug("consent request to %s failed", pair.remote_addr, exc_info=True)
        return answered
