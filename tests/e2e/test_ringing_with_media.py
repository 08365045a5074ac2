"""§F.7 end to end: ringing → both in media → the end-call choreography; records persist."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest

from simulator.chat import Call, ChatClient
from simulator.sdk import CallAppSettingsBuilder
from simulator.server import Backend
from tests.conftest import Chat, Join

pytestmark = pytest.mark.e2e


async def test_ringing_call_with_media_and_the_end_choreography(
    chat: Chat, join: Join, backend: Backend
) -> None:
    alice_chat, bob_chat = await chat("alice"), await chat("bob")
    started = time.monotonic()
    call = await alice_chat.chat.initiate_call(Call("bob", "video", "user"))
    incoming = (await bob_chat.recorder.wait_for("on_incoming_call_received"))[0]
    await bob_chat.chat.accept_call(incoming.get_session_id())
    await alice_chat.recorder.wait_for("on_outgoing_call_accepted")
    session_id = call.get_session_id()
    assert session_id is not None

    # Both start the session with the call's session id (§F.6 step 3).
    alice = await join("alice", session=session_id)
    bob = await join("bob", session=session_id)
    await alice.evidence.wait_for(
        lambda: "bob" in alice.evidence.heard() and alice.evidence.frames_from("bob") > 0, 20
    )
    await bob.evidence.wait_for(
        lambda: "alice" in bob.evidence.heard() and bob.evidence.frames_from("alice") > 0, 20
    )
    in_media = time.monotonic() - started
    assert in_media < 20
    assert await alice_chat.chat.get_call_participant_count(session_id, "default") == 2

    async with asyncio.TaskGroup() as app:
        # A's app: the end button ends the call, clears it and ends the session (§F.7 steps 1–3).
        async def end_everything() -> None:
            await alice_chat.chat.end_call(session_id)
            alice_chat.chat.clear_active_call()
            alice.client.end_session()

        alice.client.add_call_event_listener(
            "app", {"on_call_end_button_pressed": lambda: app.create_task(end_everything())}
        )

        # B's app: on onCallEnded, clear the active call and end the session (step 4).
        def on_call_ended() -> None:
            bob_chat.chat.clear_active_call()
            bob.client.end_session()

        bob.client.add_call_event_listener("app", {"on_call_ended": on_call_ended})
        alice.view.press("end_call")
        await bob_chat.recorder.wait_for("on_call_ended_message_received")
        await bob.client.wait_closed()
        await alice.client.wait_closed()

    assert alice.recorder.names()[-1] == "on_call_end_button_pressed"
    bob_session_events = [n for n in bob.recorder.names() if n != "on_media_device_list_updated"]
    assert bob_session_events[-3:] == ["on_user_left", "on_user_list_updated", "on_call_ended"]
    assert bob_chat.recorder.names()[-1] == "on_call_ended_message_received"
    assert alice_chat.chat.get_active_call() is None
    assert bob_chat.chat.get_active_call() is None

    details = backend.calls.details(session_id, "alice")
    assert details["status"] == "ended"
    assert details["endedAt"] is not None
    presence = {p["uid"]: p for p in details["participants"]}  # type: ignore[union-attr]
    assert set(presence) == {"alice", "bob"}
    for p in presence.values():
        assert p["joinedAt"] is not None and p["leftAt"] is not None and p["leftAt"] >= p["joinedAt"]
    print(f"\ninitiate → both in media: {in_media * 1000:.0f} ms")


async def test_call_records_survive_a_backend_restart(tmp_path: Path) -> None:
    db = tmp_path / "callsim.db"
    app = CallAppSettingsBuilder().set_app_id("callsim").set_region("us")
    async with Backend(db=db) as first:
        for uid in ("alice", "bob"):
            first.store.create_user(uid, uid.title())
        async with ChatClient(name="alice") as alice, ChatClient(name="bob") as bob:
            for client, uid in ((alice, "alice"), (bob, "bob")):
                await client.init(app.set_host(first.url).build())
                await client.login(uid, first.api_key)
            call = await alice.initiate_call(Call("bob", "audio", "user"))
            session_id = call.get_session_id()
            assert session_id is not None
            await bob.accept_call(session_id)
            first.calls.participant_joined(session_id, "bob")
            first.calls.participant_left(session_id, "bob")
            await bob.end_call(session_id)
            auth = alice.get_logged_in_user().get_auth_token()  # type: ignore[union-attr]
    async with Backend(db=db) as second, aiohttp.ClientSession() as http:
        async with http.get(f"{second.url}calls/{session_id}", headers={"authToken": auth}) as response:
            (record,) = (await response.json())["data"]
        assert (record["status"], record["type"], record["answers"]) == ("ended", "audio", {"bob": "ongoing"})
        assert [p["uid"] for p in record["participants"]] == ["bob"]
        async with http.get(f"{second.url}calls/nope", headers={"authToken": auth}) as response:
            assert (await response.json())["error"]["code"] == "ERR_CALL_NOT_FOUND"


async def test_get_call_details_from_the_calls_sdk(chat: Chat, join: Join, backend: Backend) -> None:
    """§A.2 #27: check order, then the stored record."""
    import asyncio as _asyncio

    from simulator.sdk import CometChatCallsException

    alice_chat, bob_chat = await chat("alice"), await chat("bob")
    call = await alice_chat.chat.initiate_call(Call("bob", "video", "user"))
    session_id = call.get_session_id()
    assert session_id is not None
    alice = await join("alice", session=session_id, media=False)
    auth = alice_chat.chat.get_logged_in_user().get_auth_token()  # type: ignore[union-attr]
    for args, message in [
        ((session_id, ""), "`Auth Token` is required to use the 'fetchNext()' method."),
        (("", auth), "`Session ID` is required to use the 'fetchNext()' method."),
    ]:
        with pytest.raises(CometChatCallsException) as caught:
            await alice.client.get_call_details(*args)
        assert (caught.value.code, caught.value.message) == ("NOT_ENOUGH_PARAMETERS", message)
    first = _asyncio.ensure_future(alice.client.get_call_details(session_id, auth))
    await _asyncio.sleep(0)  # one turn of the loop: the first request is now in flight
    with pytest.raises(CometChatCallsException) as caught:
        await alice.client.get_call_details(session_id, auth)
    assert caught.value.code == "REQUEST_IN_PROGRESS"
    (record,) = await first
    assert (record["sessionId"], record["status"]) == (session_id, "initiated")
    assert [p["uid"] for p in record["participants"]] == ["alice"]
    assert bob_chat.uid == "bob"
