"""One ICE + DTLS transport without a peer connection, for the SFU's side of a participant.

The SFU forwards RTP on an :class:`~simulator.media.rtp.RtpLink` and needs nothing of an
``RTCPeerConnection`` but its transport: no transceivers, senders, receivers or jitter
buffers, no descriptions written and parsed again. aiortc's ORTC objects give exactly the
transport — an ``RTCIceGatherer`` and ``RTCIceTransport`` (the ICE role is the caller's:
controlled as the answerer of an SDP offer, controlling as the offerer of a Jingle session)
and an ``RTCDtlsTransport`` on the process's one certificate, whose DTLS role follows the
ICE role (controlled: the DTLS client, ``a=setup:active``; controlling: the server).

Used by a bundled native participant (:mod:`simulator.server.sfu`) and a Jingle endpoint
(:mod:`simulator.server.jitsi.endpoint`). On joins at 50/s, a bundled publish costs the
backend about half as much CPU this way as with a peer connection.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from dataclasses import dataclass, field
from typing import Any, Final

from aiortc import (
    RTCDtlsFingerprint,
    RTCDtlsParameters,
    RTCDtlsTransport,
    RTCIceCandidate,
    RTCIceGatherer,
    RTCIceParameters,
    RTCIceTransport,
)

from simulator.media.ice import patch_aioice
from simulator.media.peer import shared_certificate
from simulator.tasks import TaskSet

__all__ = [
    "CONNECT_TIMEOUT",
    "POOL_SIZE",
    "IceDtlsTransport",
    "LocalTransport",
    "RemoteTransport",
    "TransportPool",
]

CONNECT_TIMEOUT: Final = 20.0
"""Seconds for ICE and DTLS together before the transport is given up."""
POOL_SIZE: Final = 8
"""Transports a :class:`TransportPool` keeps gathered."""


@dataclass(frozen=True)
class LocalTransport:
    """What the far end is told of this transport: ICE credentials, candidates, fingerprints."""

    ufrag: str
    pwd: str
    candidates: list[RTCIceCandidate]
    fingerprints: list[RTCDtlsFingerprint]


@dataclass(frozen=True)
class RemoteTransport:
    """What the far side's description says of its transport."""

    ice: RTCIceParameters
    candidates: list[RTCIceCandidate] = field(default_factory=list)
    complete: bool = False
    """Whether it said ``a=end-of-candidates``."""
    fingerprints: list[RTCDtlsFingerprint] = field(default_factory=list)


class IceDtlsTransport:
    """ICE then DTLS with one remote party; :attr:`dtls` feeds an RtpLink once connected."""

    def __init__(self, *, controlling: bool) -> None:
        patch_aioice()
        self._gatherer = RTCIceGatherer(iceServers=[])
        # aiortc's gatherer has no option for the role: a peer connection sets it the same way.
        self._gatherer._connection.ice_controlling = controlling
        self._ice = RTCIceTransport(self._gatherer)
        self.dtls = RTCDtlsTransport(self._ice, [shared_certificate()])
        self._closed = False
        self.failure: str | None = None
        """Why connecting failed (None until it has)."""
        self.ice_completed_at: float | None = None
        """Loop time ICE completed (DTLS starts then): where a connect's time went."""

    @property
    def ice_connection(self) -> Any:
        """The aioice connection (the liveness watch asks for consent on it)."""
        return self._gatherer._connection

    @property
    def connectionState(self) -> str:  # noqa: N802 - an RTCPeerConnection's name, for MediaWatch
        """``new``, ``connecting``, ``connected``, ``failed`` or ``closed``, as a peer connection says."""
        if self._closed:
            return "closed"
        if self.failure is not None or self._ice.state == "failed" or self.dtls.state == "failed":
            return "failed"
        if self.dtls.state == "connected":
            return "connected"
        return "new" if self._ice.state == "new" else "connecting"

    async def gather(self) -> LocalTransport:
        """Gather the local candidates (loopback only): what the offer or answer carries.

        ConnectionError if the transport was closed meanwhile; the sockets gathering opened
        are closed again."""
        await self._gatherer.gather()
        if self._closed:
            # close() may have stopped the transport before gathering opened its sockets: the
            # ICE connection's own close takes every socket it has now (it may run twice).
            await self._gatherer._connection.close()
            raise ConnectionError("the transport closed while it gathered")
        parameters = self._gatherer.getLocalParameters()
        return LocalTransport(
            parameters.usernameFragment or "",
            parameters.password or "",
            self._gatherer.getLocalCandidates(),
            self.dtls.getLocalParameters().fingerprints,
        )

    async def add_remote_candidate(self, candidate: RTCIceCandidate | None) -> None:
        """A remote candidate; None: the remote side has no more."""
        await self._ice.addRemoteCandidate(candidate)

    async def connect(self, remote: RemoteTransport) -> bool:
        """Take the far side's candidates, run ICE, then DTLS, within :data:`CONNECT_TIMEOUT`;
        True once connected. On failure :attr:`failure` says why (a closed transport fails
        quietly: False, no reason)."""
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                for candidate in remote.candidates:
                    await self._ice.addRemoteCandidate(candidate)
                if remote.complete:
                    await self._ice.addRemoteCandidate(None)
                await self._ice.start(remote.ice)
                if self._ice.state != "completed" or self._closed:
                    raise ConnectionError(f"ICE {self._ice.state}")
                self.ice_completed_at = asyncio.get_running_loop().time()
                await self.dtls.start(RTCDtlsParameters(fingerprints=remote.fingerprints))
        except TimeoutError:
            self.failure = f"ICE/DTLS not connected within {CONNECT_TIMEOUT:.0f} s"
        except ConnectionError as exc:
            self.failure = str(exc)
        except Exception as exc:  # aiortc's InvalidStateError when closed under it
            if not self._closed:
                self.failure = f"{type(exc).__name__}: {exc}"
        if self._closed:
            return False
        if self.failure is None and self.dtls.state != "connected":
            self.failure = f"ICE/DTLS failed (ICE {self._ice.state}, DTLS {self.dtls.state})"
        return self.failure is None

    async def close(self) -> None:
        """Stop DTLS, then ICE (idempotent)."""
        self._closed = True
        with contextlib.suppress(Exception):
            await self.dtls.stop()
        with contextlib.suppress(Exception):
            await self._ice.stop()


class TransportPool:
    """Transports gathered ahead of need, as a browser's ICE candidate pool
    (``iceCandidatePoolSize``) does, so that answering an offer waits for no gathering.

    Gathering opens a socket in several steps of the event loop, and each step waits for a
    whole turn of the loop: on a backend busy forwarding media that made gathering most of
    the time an answer took (68 ms median, 200 ms p95 with 100 lean participants on
    one core). The pool starts filling at the first :meth:`take` (an idle backend holds no
    sockets) and refills in the background after each one; an empty pool gathers on the spot.
    """

    def __init__(self, *, controlling: bool, size: int = POOL_SIZE) -> None:
        self._controlling = controlling
        self._size = size
        self._ready: collections.deque[tuple[IceDtlsTransport, LocalTransport]] = collections.deque()
        self._tasks = TaskSet("transport-pool")
        self._gathering: set[asyncio.Task[None]] = set()
        self._filling = 0
        """Gatherings under way (counted by the gatherings themselves, as they end)."""
        self._added = asyncio.Event()
        self._closed = False

    async def take(self) -> tuple[IceDtlsTransport, LocalTransport]:
        """A gathered transport of the pool's ICE role, and what the far end is told of it."""
        if self._closed:
            raise ConnectionError("the transport pool is closed")
        ready = self._ready.popleft() if self._ready else None
        self._refill()
        if ready is not None:
            return ready
        transport = IceDtlsTransport(controlling=self._controlling)
        try:
            return transport, await transport.gather()
        except BaseException:  # cancelled too: the caller never gets it to close
            await transport.close()
            raise

    def __len__(self) -> int:
        """Transports ready now."""
        return len(self._ready)

    async def wait_ready(self, count: int) -> None:
        """Until at least ``count`` transports are ready (the caller bounds the wait)."""
        while len(self._ready) < count:
            self._added.clear()
            await self._added.wait()

    def _refill(self) -> None:
        while len(self._ready) + self._filling < self._size:
            self._filling += 1
            task = self._tasks.spawn(self._gather_one(), "gather")
            self._gathering.add(task)
            task.add_done_callback(self._gathering.discard)

    async def _gather_one(self) -> None:
        transport = IceDtlsTransport(controlling=self._controlling)
        try:
            local = await transport.gather()
        except ConnectionError:
            return
        finally:
            self._filling -= 1
        if self._closed:
            await transport.close()
        else:
            self._ready.append((transport, local))
            self._added.set()

    async def close(self) -> None:
        """Close what is ready and what is being gathered (idempotent). Gatherings are let
        finish rather than cancelled: a socket half opened would have no owner to close it."""
        self._closed = True
        if self._gathering:
            await asyncio.wait(set(self._gathering), timeout=CONNECT_TIMEOUT)
        await self._tasks.aclose()
        while self._ready:
            transport, _ = self._ready.popleft()
            await transport.close()
