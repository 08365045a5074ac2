"""``callsim serve`` as a real process, and the doc-faithful static façade."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from simulator.sdk import CallAppSettingsBuilder, CallSettingsBuilder, CallView
from simulator.sdk.facade import CometChatCalls
from simulator.sdk.recorder import EventRecorder
from simulator.server import Backend
from tests.conftest import Join
from tests.e2e.serving import serve

pytestmark = pytest.mark.e2e


async def test_serve_keeps_users_in_its_database_across_restarts(tmp_path: Path) -> None:
    db = tmp_path / "callsim.db"
    async with aiohttp.ClientSession() as http:
        async with serve(db) as served:
            url = served.url
            async with http.post(
                f"{url}users", headers={"apiKey": "k3y"}, json={"uid": "ann", "name": "Ann"}
            ) as r:
                assert (await r.json())["data"]["uid"] == "ann"
            async with http.post(f"{url}users/ann/auth_tokens", headers={"apiKey": "k3y"}) as r:
                auth = (await r.json())["data"]["authToken"]
        async with serve(db) as served:
            url = served.url
            async with http.post(
                f"{url}call_tokens", headers={"authToken": auth}, json={"sessionId": "s"}
            ) as r:
                token = (await r.json())["data"]["token"]
            async with http.get(f"{url}call_tokens", headers={"callToken": token}) as r:
                assert (await r.json())["data"]["payload"]["data"]["user"]["name"] == "Ann"


async def test_the_static_facade_runs_the_seed_snippet(backend: Backend, join: Join) -> None:
    """The seed page's flow, through ``CometChatCalls`` statics."""
    bob = await join("bob")
    recorder = EventRecorder()
    try:
        await CometChatCalls.init(
            CometChatCalls.CallAppSettingsBuilder()
            .set_app_id("callsim")
            .set_region("us")
            .set_host(backend.url)
            .build()
        )
        call_token = await CometChatCalls.generate_token("s1", backend.provision_user("ann", "Ann"))
        settings = (
            CallSettingsBuilder()
            .enable_default_layout(True)
            .set_is_audio_only_call(False)
            .set_call_listener(recorder.listener())
            .build()
        )
        await CometChatCalls.start_session(call_token.token, settings, CallView("call-screen"))
        await recorder.wait_for("on_user_joined")
        await bob.recorder.wait_for("on_user_joined")
        CometChatCalls.set_mode(CometChatCalls.CALL_MODE["SPOTLIGHT"])
        CometChatCalls.mute_audio(True)
        await bob.evidence.wait_for(lambda: "ann" not in bob.evidence.heard(), 20)
        CometChatCalls.end_session()
        await bob.recorder.wait_for("on_call_ended")
        assert CallAppSettingsBuilder is CometChatCalls.CallAppSettingsBuilder
    finally:
        await CometChatCalls.reset()
