"""Liveness both ways: a participant that stops answering is removed, and a backend that
stops answering is reported to the application — each within the heartbeat's 9 s."""

from __future__ import annotations

import json
import os
import signal

import aiohttp
import pytest

from simulator import protocol
from simulator.sdk import CallAppSettingsBuilder, CallsClient, CallSettingsBuilder, CallView
from simulator.sdk.recorder import EventRecorder
from simulator.server import Backend
from tests.conftest import Join
from tests.e2e.serving import API_KEY, serve

pytestmark = pytest.mark.e2e

BOUND = protocol.HEARTBEAT * 1.5 + 6.0  # the heartbeat's own bound, and room for a loaded machine


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
        async with aiohttp.ClientSession(headers={"apiKey": API_KEY}) as http:
            await (await http.post(f"{url}users", json={"uid": "ann", "name": "Ann"})).release()
            async with http.post(f"{url}users/ann/auth_tokens") as r:
                auth = (await r.json())["data"]["authToken"]
        recorder = EventRecorder("ann")
        async with CallsClient(name="ann") as client:
            await client.init(
                CallAppSettingsBuilder().set_app_id("callsim").set_region("us").set_host(url).build()
            )
            token = await client.generate_token("s1", auth)
            settings = CallSettingsBuilder().set_call_listener(recorder.listener()).build()
            await client.start_session(token.token, settings, CallView())
            await client.wait_joined()
            os.kill(served.process.pid, signal.SIGSTOP)  # the backend stalls: no answer, no close
            try:
                (error,) = await recorder.wait_for("on_error", timeout=BOUND)
            finally:
                os.kill(served.process.pid, signal.SIGCONT)
            assert error.code == "UNKNOWN_API_ERROR"
