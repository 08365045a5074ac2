"""A participant's network, made worse on purpose: loss, delay, jitter, duplication, a
bandwidth cap with its queue, each way, changeable over time.

Every datagram of the participant's media connections passes through it — STUN, DTLS, RTP
and RTCP alike, as through a real network — on whichever media path the participant uses
(full, passthrough, lean): it sits between aioice's sockets and everything above them.

* **Loss**: random (``loss``), or in bursts (``burst`` > 1: a Gilbert–Elliott channel whose
  bad state lasts ``burst`` packets on average and drops all of them, entered often enough
  that the long-run loss is ``loss``).
* **Delay and jitter**: each datagram waits ``delay_ms`` plus a uniform ±``jitter_ms``; with
  jitter, datagrams overtake each other (reordering), as on a real path.
* **Duplication**: ``duplicate`` of the datagrams are delivered twice.
* **Bandwidth**: ``rate_kbps`` caps the link; datagrams queue behind each other, and one that
  would wait more than ``queue_ms`` is dropped (a drop-tail queue measured in time).

A :class:`Schedule` changes the impairment over time ("at 30 s, 300 kb/s for 20 s"). Every
random choice comes from a generator seeded per participant and direction: a run with the
same seed drops the same packets.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Final

import msgspec
from aiortc import RTCPeerConnection

from simulator.media.ice import ice_connection
from simulator.media.ortc import IceDtlsTransport

__all__ = [
    "PROFILES",
    "Direction",
    "Impairment",
    "NetworkShaper",
    "Schedule",
    "Shaping",
    "Step",
    "impair",
    "shaping",
]


class Impairment(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One direction's impairment (every field off by default); a scenario's TOML writes the
    same fields (``{ loss = 0.05, delay_ms = 80 }``)."""

    loss: float = 0.0
    burst: float = 1.0
    """Mean length of a loss burst in packets; 1 is independent (random) loss."""
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    duplicate: float = 0.0
    rate_kbps: float = 0.0
    """0 is unlimited."""
    queue_ms: float = 200.0

    def __post_init__(self) -> None:
        checks = {
            "loss": 0 <= self.loss < 1, "burst": self.burst >= 1, "delay_ms": self.delay_ms >= 0,
            "jitter_ms": self.jitter_ms >= 0, "duplicate": 0 <= self.duplicate < 1,
            "rate_kbps": self.rate_kbps >= 0, "queue_ms": self.queue_ms > 0,
        }  # fmt: skip
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"impairment out of range: {', '.join(f'{n}={getattr(self, n)}' for n in bad)}")

    @property
    def off(self) -> bool:
        return self == Impairment()


class Direction(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Both directions of a participant's network: ``up`` is what it sends."""

    up: Impairment = Impairment()
    down: Impairment = Impairment()


class Step(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """From ``at`` seconds after the media starts, for ``hold`` seconds, this network instead."""

    at: Annotated[float, msgspec.Meta(ge=0)]
    hold: Annotated[float, msgspec.Meta(gt=0)]
    network: Direction


class Schedule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A network and the changes it goes through."""

    base: Direction = Direction()
    steps: tuple[Step, ...] = ()

    def at(self, elapsed: float) -> Direction:
        for step in self.steps:
            if step.at <= elapsed < step.at + step.hold:
                return step.network
        return self.base


def _both(impairment: Impairment) -> Schedule:
    return Schedule(Direction(impairment, impairment))


PROFILES: Final[dict[str, Schedule]] = {
    "clean": Schedule(),
    "lossy-wifi": _both(Impairment(loss=0.03, burst=2.0, delay_ms=10, jitter_ms=8)),
    "3g": Schedule(
        Direction(
            up=Impairment(loss=0.01, delay_ms=100, jitter_ms=30, rate_kbps=384, queue_ms=300),
            down=Impairment(loss=0.01, delay_ms=100, jitter_ms=30, rate_kbps=3000, queue_ms=300),
        )
    ),
    "satellite": _both(Impairment(loss=0.005, delay_ms=300, jitter_ms=10)),
}
"""Named networks for scenarios (one-way figures: a round trip is twice the delay)."""


Deliver = Callable[[bytes], None]


class NetworkShaper:
    """One direction of one participant's network: :meth:`send` each datagram through it."""

    def __init__(
        self,
        impairment: Callable[[], Impairment],
        rng: random.Random,
        now: Callable[[], float],
        call_later: Callable[[float, Callable[[], None]], Any],
    ) -> None:
        self._impairment = impairment
        self._rng = rng
        self._now = now
        self._call_later = call_later
        self._bad = False
        self._link_free_at = 0.0
        self.sent = self.dropped = self.queue_dropped = self.duplicated = 0

    def _lost(self, impairment: Impairment) -> bool:
        if impairment.loss == 0:
            return False
        if impairment.burst <= 1:
            return self._rng.random() < impairment.loss
        # Gilbert–Elliott: leave the bad state with 1/burst; enter it so the long-run loss holds.
        leave = 1 / impairment.burst
        enter = impairment.loss * leave / (1 - impairment.loss)
        self._bad = self._rng.random() >= leave if self._bad else self._rng.random() < enter
        return self._bad

    def send(self, data: bytes, deliver: Deliver) -> None:
        impairment = self._impairment()
        self.sent += 1
        if impairment.off:
            deliver(data)
            return
        if self._lost(impairment):
            self.dropped += 1
            return
        wait = 0.0
        if impairment.rate_kbps:
            now = self._now()
            start = max(now, self._link_free_at)
            queued = start - now
            if queued * 1000 > impairment.queue_ms:
                self.queue_dropped += 1
                return
            self._link_free_at = start + len(data) * 8 / (impairment.rate_kbps * 1000)
            wait = self._link_free_at - now
        delay = impairment.delay_ms
        if impairment.jitter_ms:
            delay += self._rng.uniform(-impairment.jitter_ms, impairment.jitter_ms)
        wait += delay / 1000
        copies = 2 if impairment.duplicate and self._rng.random() < impairment.duplicate else 1
        self.duplicated += copies - 1
        for _ in range(copies):
            if wait <= 0:
                deliver(data)
            else:
                self._call_later(wait, lambda: deliver(data))


class _ShapedTransport:
    """aioice's socket as its protocol sees it, every ``sendto`` through the uplink shaper."""

    def __init__(self, transport: asyncio.DatagramTransport, shaper: NetworkShaper) -> None:
        self._transport = transport
        self._shaper = shaper

    def sendto(self, data: bytes, addr: Any = None) -> None:
        transport = self._transport

        def deliver(datagram: bytes) -> None:
            if not transport.is_closing():  # a delayed datagram may outlive its socket
                transport.sendto(datagram, addr)

        self._shaper.send(data, deliver)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _ShapedReceiver(asyncio.DatagramProtocol):
    """Between the socket and aioice's protocol: every datagram through the downlink shaper,
    then to whatever the protocol's ``datagram_received`` is at that moment (an RtpLink's)."""

    def __init__(self, protocol: Any, shaper: NetworkShaper) -> None:
        self._protocol = protocol
        self._shaper = shaper

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._shaper.send(data, lambda d: self._protocol.datagram_received(d, addr))

    def error_received(self, exc: Exception) -> None:
        self._protocol.error_received(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self._protocol.connection_lost(exc)


@dataclass
class Shaping:
    """The shapers a participant's connections go through (their counters are the evidence)."""

    up: NetworkShaper
    down: NetworkShaper


def shaping(schedule: Schedule, seed: int) -> Shaping:
    """The two shapers of one participant, following ``schedule`` from now on."""
    loop = asyncio.get_running_loop()
    started = loop.time()

    def current() -> Direction:
        return schedule.at(loop.time() - started)

    return Shaping(
        up=NetworkShaper(lambda: current().up, random.Random(f"{seed}:up"), loop.time, loop.call_later),
        down=NetworkShaper(lambda: current().down, random.Random(f"{seed}:down"), loop.time, loop.call_later),
    )


def impair(pc: RTCPeerConnection | IceDtlsTransport, shapers: Shaping) -> None:
    """Put ``pc``'s sockets behind ``shapers``: call after ``setLocalDescription`` (or an ORTC
    transport's gathering: the sockets exist once candidates are gathered) and before the
    connection is up."""
    connection = ice_connection(pc)  # max-bundle: one transport for every m-line
    for protocol in [] if connection is None else connection._protocols:
        if protocol.transport is None or isinstance(protocol.transport, _ShapedTransport):
            continue
        real = protocol.transport
        protocol.transport = _ShapedTransport(real, shapers.up)
        real.set_protocol(_ShapedReceiver(protocol, shapers.down))
