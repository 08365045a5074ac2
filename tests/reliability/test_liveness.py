"""Liveness both ways: a participant that stops answering is removed, and a backend that
stops answering is reported to the application — each within the heartbeat's 9 s; media that
dies while the socket lives is noticed by consent and RTP watches on both sides."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from simulator import protocol
from simulator.media.ice import ice_connection
from simulator.media.liveness import CONSENT_INTERVAL, DEAD_AFTER
from simulator.sdk import CallAppSettingsBuilder, CallsClient, CallSettingsBuilder, CallView, ReconnectPolicy
from simulator.sdk.recorder import EventRecorder
from simulator.sdk.session import CallSession, SessionState
from simulator.server import Backend
from tests.conftest import Join
from tests.e2e.serving import API_KEY, serve

pytestmark = pytest.mark.e2e

BOUND = protocol.HEARTBEAT * 1.5 + 6.0  # the heartbeat's own bound, and room for a loaded machine


async def _join_served(url: str, client: CallsClient, recorder: EventRecorder) -> None:
    """Provision ``client``'s user on a served backend (over REST, with its apiKey) and join s1."""
    uid = client.name
    async with aiohttp.ClientSession(headers={"apiKey": API_KEY}) as http:
        await (await http.post(f"{url}users", json={"uid": uid, "name": uid.title()})).release()
        async with http.post(f"{url}users/{uid}/auth_tokens") as r:
            auth = (await r.json())["data"]["authToken"]
    await client.init(CallAppSettingsBuilder().set_app_id("callsim").set_region("us").set_host(url).build())
    token = await client.generate_token("s1", auth)
    settings = CallSettingsBuilder().set_call_listener(recorder.listener()).build()
    await client.start_session(token.token, settings, CallView())
    await client.wait_joined()


async def test_a_frozen_participant_is_removed_everywhere(backend: Backend, join: Join) -> None:
    alice = await join("alice", media=False)
    user = backend.store.user_for_auth_token(backend.provision_user("frozen", "Frozen"))
    assert user is not None
    async with aiohttp.ClientSession() as http, http.ws_connect(backend.ws_url, autoping=False) as ws:
        # A client whose process is stopped answers no ping: autoping off is the same on the wire.
        await ws.send_str(
            json.dumps({"type": "join", "token": backend.tokens.issue(user, "s1"), "sessionId": "s1"})
        )
        await alice.recorder.wait_for("on_user_joined")
        left = await alice.recorder.wait_for("on_user_left", timeout=BOUND)
        assert left[0].uid == "frozen"
    assert backend.rooms.participant_count("s1") == 1


async def test_a_stalled_backend_is_reported_to_the_application(tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with serve(tmp_path / "db", "--no-xmpp") as served:
        url = served.url
        recorder = EventRecorder("ann")
        async with CallsClient(name="ann") as client:
            await _join_served(url, client, recorder)
            os.kill(served.process.pid, signal.SIGSTOP)  # the backend stalls: no answer, no close
            try:
                (error,) = await recorder.wait_for("on_error", timeout=BOUND)
            finally:
                os.kill(served.process.pid, signal.SIGCONT)
            assert error.code == "UNKNOWN_API_ERROR"


# --- dead media: the signalling socket lives, the media does not --------------------------------

MEDIA_BOUND = DEAD_AFTER + CONSENT_INTERVAL + 1.5 + 6.0  # the watch's own bound, and a loaded machine


def _connections(session: CallSession) -> list[Any]:
    """The session's ICE connections: its peer connections', or its ORTC transport's (bundled lean)."""
    owners = dict.fromkeys((session._transport, session._publish_pc, session.receiving_connection))
    return [c for owner in owners if owner is not None and (c := ice_connection(owner)) is not None]


def _pairs(session: CallSession) -> list[Any]:
    return [pair for connection in _connections(session) for pair in connection._nominated.values()]


def _black_hole(session: CallSession, drops: Callable[[bytes], bool] = lambda _: True) -> None:
    """The participant's UDP goes nowhere (``drops`` chooses which datagrams), both ways."""
    for pair in _pairs(session):
        protocol_, transport = pair.protocol, pair.protocol.transport
        send, receive = transport.sendto, protocol_.datagram_received

        def sendto(data: bytes, addr: Any = None, send: Any = send) -> None:
            if not drops(data):
                send(data, addr)

        def datagram_received(data: bytes, addr: Any, receive: Any = receive) -> None:
            if not drops(data):
                receive(data, addr)

        transport.sendto = sendto
        protocol_.datagram_received = datagram_received


async def test_lost_media_is_noticed_on_both_sides_and_the_participant_removed(
    backend: Backend, join: Join
) -> None:
    alice, bob = await join("alice"), await join("bob")
    assert bob.client.session is not None
    await alice.evidence.wait_for(lambda: "bob" in alice.evidence.heard(), 20.0)
    loop = asyncio.get_running_loop()
    lost_at = loop.time()
    _black_hole(bob.client.session)  # the socket still works: only media can tell
    (left,) = await alice.recorder.wait_for("on_user_left", timeout=MEDIA_BOUND)
    removed_after = loop.time() - lost_at
    assert left.uid == "bob"
    (error,) = await bob.recorder.wait_for("on_error", timeout=MEDIA_BOUND)
    assert error.code in ("ERR_MEDIA_LOST", "UNKNOWN_API_ERROR")  # the backend's word or its own
    assert "media lost" in error.message
    await bob.client.wait_closed()
    assert backend.rooms.participant_count("s1") == 1
    print(f"lost media: removed everywhere after {removed_after:.1f} s")


async def test_a_publisher_that_sends_no_rtp_is_removed_though_ice_answers(
    backend: Backend, join: Join
) -> None:
    alice, bob = await join("alice", path="lean"), await join("bob", path="lean")
    assert bob.client.session is not None
    await alice.evidence.wait_for(lambda: "bob" in alice.evidence.heard(), 20.0)
    for pair in _pairs(bob.client.session):
        send = pair.protocol.transport.sendto

        def sendto(data: bytes, addr: Any = None, send: Any = send) -> None:
            if not 127 < data[0] < 192:  # RFC 7983: STUN and DTLS pass, RTP and RTCP do not
                send(data, addr)

        pair.protocol.transport.sendto = sendto
    (error,) = await bob.recorder.wait_for("on_error", timeout=MEDIA_BOUND)
    assert error.code == "ERR_MEDIA_LOST"
    assert "no RTP" in error.message
    await alice.recorder.wait_for("on_user_left", timeout=MEDIA_BOUND)
    assert backend.rooms.participant_count("s1") == 1


# --- the reconnect policy -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_with_a_reconnect_policy_a_session_rides_out_a_backend_restart(tmp_path) -> None:  # type: ignore[no-untyped-def]
    port, db = _free_port(), tmp_path / "db"
    policy = ReconnectPolicy(attempts=12, first_delay=0.2, max_delay=1.0)
    people = {
        uid: (CallsClient(name=uid, media_path="lean", reconnect=policy), EventRecorder(uid))
        for uid in ("ann", "bob")
    }
    try:
        async with serve(db, "--no-xmpp", "--port", str(port)) as served:
            url = served.url
            for client, recorder in people.values():
                await _join_served(url, client, recorder)
            ann, bob = people["ann"][0], people["bob"][0]
            await ann.evidence.wait_for(lambda: "bob" in ann.evidence.heard(), 20)
        # The backend is gone (SIGTERM: every socket closed with 1001) and comes back on its port.
        async with serve(db, "--no-xmpp", "--port", str(port)):
            await ann.evidence.wait_for(lambda: "bob" in ann.evidence.heard(), 30)
            await bob.evidence.wait_for(lambda: "ann" in bob.evidence.heard(), 30)
            for uid, (client, recorder) in people.items():
                assert recorder.of("on_error") == [], uid  # ridden out, not reported
                assert client.session is not None and client.session.state is SessionState.JOINED
                # Whoever came back first saw the other leave and return; never a stranger, never twice.
                other = "bob" if uid == "ann" else "ann"
                joined, left = recorder.of("on_user_joined"), recorder.of("on_user_left")
                assert {user.uid for (user,) in joined + left} == {other}
                assert len(joined) == len(left) + 1
    finally:
        for client, _ in people.values():
            await client.aclose()
