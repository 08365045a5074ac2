"""What one client may cost the backend (docs in simulator/server/admission.py):
guessing throttled per address, slow handshakes cut off, connections and sockets capped,
call tokens rate-limited per user, auth tokens expiring. Every refusal has the API's shape."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest

from simulator.sdk import CallAppSettingsBuilder, CallsClient, CallSettingsBuilder, CallView
from simulator.sdk.recorder import EventRecorder
from simulator.server import Backend
from simulator.server.admission import Limits

pytestmark = pytest.mark.e2e


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def _limited(limits: Limits, clock: Clock) -> Backend:
    return await Backend(limits=limits, monotonic=clock, wall_clock=clock).__aenter__()


@pytest.fixture
async def strict(clock: Clock) -> AsyncIterator[Backend]:
    limits = Limits(
        auth_failures_per_second=5, call_tokens_per_second=2, sockets_per_user=1, auth_token_ttl=3600,
        handshake_timeout=0.5, connections_per_ip=4,
    )  # fmt: skip
    backend = await _limited(limits, clock)
    yield backend
    await backend.close()


async def test_guessing_tokens_is_throttled_per_address_with_the_apis_error(
    strict: Backend, clock: Clock
) -> None:
    good = strict.provision_user("alice", "Alice")
    async with aiohttp.ClientSession() as http:
        statuses = []
        for _ in range(30):  # 2,000 at 1,175/s were all answered before
            async with http.post(
                f"{strict.url}call_tokens", headers={"authToken": "guess"}, json={"sessionId": "s1"}
            ) as r:
                statuses.append(r.status)
                body = await r.json()
        assert statuses[:10] == [401] * 10  # the burst: two seconds' worth
        assert set(statuses[10:]) == {429}
        assert body == {
            "error": {
                "code": "ERR_TOO_MANY_REQUESTS",
                "message": "too many failed authentications from this address",
            }
        }
        # Throttled means throttled: the right token waits too, and the sockets refuse the upgrade.
        async with http.post(
            f"{strict.url}call_tokens", headers={"authToken": good}, json={"sessionId": "s1"}
        ) as r:
            assert r.status == 429 and int(r.headers["Retry-After"]) >= 1
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(strict.ws_url)
        assert refused.value.status == 429
        clock.now += 1.0  # the budget refills at its rate
        async with http.post(
            f"{strict.url}call_tokens", headers={"authToken": good}, json={"sessionId": "s1"}
        ) as r:
            assert r.status == 200
    assert strict.admission.refused["auth"] >= 20


async def test_a_client_that_trickles_its_request_is_cut_off(strict: Backend) -> None:
    reader, writer = await asyncio.open_connection(strict.host, strict.port)
    writer.write(b"GET /room_size?room=s1 HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
    await writer.drain()
    async with asyncio.timeout(10):
        assert await reader.read() == b""  # closed by the server
    writer.close()
    assert strict.admission.refused["handshakes"] == 1
    assert strict.admission.connections == {}
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{strict.url}room_size", params={"room": "s1"}) as r,
    ):
        assert r.status == 200  # a prompt client is served as ever


async def test_connections_from_one_address_are_capped(clock: Clock) -> None:
    backend = await _limited(Limits(connections_per_ip=4, handshake_timeout=60), clock)
    try:
        held = [await asyncio.open_connection(backend.host, backend.port) for _ in range(4)]
        reader, writer = await asyncio.open_connection(backend.host, backend.port)
        async with asyncio.timeout(10):
            assert await reader.read() == b""  # the fifth is closed at once
        writer.close()
        assert backend.admission.refused["connections"] == 1
        for _, w in held:
            w.close()
            await w.wait_closed()
    finally:
        await backend.close()


async def test_call_tokens_are_rate_limited_per_user(strict: Backend, clock: Clock) -> None:
    alice, bob = strict.provision_user("alice", "Alice"), strict.provision_user("bob", "Bob")
    async with aiohttp.ClientSession() as http:

        async def token(auth: str) -> int:
            async with http.post(
                f"{strict.url}call_tokens", headers={"authToken": auth}, json={"sessionId": "s"}
            ) as r:
                return r.status

        assert [await token(alice) for _ in range(6)] == [200] * 4 + [429] * 2
        assert await token(bob) == 200  # per user, not per address
        clock.now += 0.5
        assert await token(alice) == 200


async def test_auth_tokens_expire(strict: Backend, clock: Clock) -> None:
    auth = strict.provision_user("alice", "Alice")
    async with aiohttp.ClientSession() as http:
        clock.now += 3599
        async with http.post(
            f"{strict.url}call_tokens", headers={"authToken": auth}, json={"sessionId": "s"}
        ) as r:
            assert r.status == 200
        clock.now += 1
        async with http.post(
            f"{strict.url}call_tokens", headers={"authToken": auth}, json={"sessionId": "s"}
        ) as r:
            assert r.status == 401 and (await r.json())["error"]["code"] == "AUTH_ERR_AUTH_TOKEN_NOT_FOUND"


async def test_a_user_holds_a_bounded_number_of_call_sockets(strict: Backend) -> None:
    auth = strict.provision_user("alice", "Alice")
    recorders = [EventRecorder("first"), EventRecorder("second")]
    clients = [CallsClient(name=f"alice-{n}") for n in range(2)]
    try:
        for client, recorder in zip(clients, recorders, strict=True):
            await client.init(
                CallAppSettingsBuilder().set_app_id("callsim").set_region("us").set_host(strict.url).build()
            )
            token = await client.generate_token("s1", auth)
            settings = CallSettingsBuilder().set_call_listener(recorder.listener()).build()
            await client.start_session(token.token, settings, CallView())
        await clients[0].wait_joined()
        (error,) = await recorders[1].wait_for("on_error")
        assert (error.code, error.message) == (
            "ERR_TOO_MANY_REQUESTS",
            "user 'alice' already holds 1 call sockets",
        )
        clients[0].end_session()
        await clients[0].wait_closed()
        assert strict.admission.sockets == {}  # released on leave
    finally:
        for client in clients:
            await client.aclose()


async def test_the_default_limits_let_a_crowd_in_from_one_address() -> None:
    """A load test's participants share one loopback address: the defaults must not get in its way."""
    async with Backend() as backend, aiohttp.ClientSession() as http:
        auths = [backend.provision_user(f"u{n}", f"U{n}") for n in range(60)]

        async def token(auth: str) -> int:
            async with http.post(
                f"{backend.url}call_tokens", headers={"authToken": auth}, json={"sessionId": "s"}
            ) as r:
                await r.read()
                return r.status

        assert await asyncio.gather(*(token(a) for a in auths)) == [200] * 60
        sockets = [await http.ws_connect(backend.ws_url) for _ in range(100)]
        try:
            await sockets[-1].send_str(json.dumps({"type": "ping"}))
            reply = await sockets[-1].receive_json(timeout=10)
            assert reply["type"] == "error"  # answered (not joined yet), not refused
        finally:
            for ws in sockets:
                await ws.close()
