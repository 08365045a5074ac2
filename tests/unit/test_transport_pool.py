"""The backend's pool of gathered transports (simulator.media.ortc.TransportPool): an answer
waits for no gathering, and nothing the pool opened outlives it (the leak check holds)."""

from __future__ import annotations

import asyncio

import pytest
from aiortc import RTCIceParameters

from simulator.media.ortc import IceDtlsTransport, RemoteTransport, TransportPool


async def _ready(pool: TransportPool, count: int) -> None:
    async with asyncio.timeout(10):
        await pool.wait_ready(count)


async def test_the_pool_fills_after_the_first_take_and_then_hands_out_ready_transports() -> None:
    pool = TransportPool(controlling=False, size=3)
    assert len(pool) == 0  # an idle pool holds no sockets
    first, local = await pool.take()  # gathered on the spot
    assert local.candidates and local.fingerprints and local.ufrag
    await _ready(pool, 3)
    second, _ = await pool.take()
    assert len(pool) == 2  # taken from the ready ones, at once
    assert second is not first
    await _ready(pool, 3)  # and topped up again
    for transport in (first, second):
        await transport.close()
    await pool.close()


async def test_a_transport_from_the_pool_connects() -> None:
    """A pooled (controlled) transport and a fresh controlling one reach DTLS connected."""
    pool = TransportPool(controlling=False, size=1)
    first, _ = await pool.take()  # starts the filling
    await first.close()
    await _ready(pool, 1)
    answerer, answer = await pool.take()
    offerer = IceDtlsTransport(controlling=True)
    offer = await offerer.gather()

    def remote(side: object) -> RemoteTransport:
        assert isinstance(side, type(answer))
        return RemoteTransport(
            RTCIceParameters(usernameFragment=side.ufrag, password=side.pwd),
            side.candidates,
            True,
            side.fingerprints,
        )

    connected = await asyncio.gather(answerer.connect(remote(offer)), offerer.connect(remote(answer)))
    assert connected == [True, True]
    assert answerer.connectionState == offerer.connectionState == "connected"
    for transport in (answerer, offerer):
        await transport.close()
    await pool.close()


async def test_closing_closes_what_is_ready_and_what_is_being_gathered() -> None:
    pool = TransportPool(controlling=False, size=4)
    taken, _ = await pool.take()
    await taken.close()
    await pool.close()  # right away: gatherings in flight finish, then close
    assert len(pool) == 0
    with pytest.raises(ConnectionError):
        await pool.take()
    await pool.close()  # idempotent
