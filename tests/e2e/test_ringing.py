"""The ringing flow end to end (contract §F): every transition with its callbacks at both sides."""

from __future__ import annotations

import aiohttp
import pytest

from simulator.chat import Call, CometChatException
from simulator.clock import VirtualClock
from simulator.server import Backend
from tests.conftest import Chat, Join

pytestmark = pytest.mark.e2e


def statuses(calls: list[tuple[Call, ...]]) -> list[str | None]:
    return [args[0].get_status() for args in calls]


async def test_initiate_and_accept(chat: Chat) -> None:
    alice, bob = await chat("alice"), await chat("bob")
    assert alice.chat.get_active_call() is None  # K26
    call = await alice.chat.initiate_call(Call("bob", "video", "user"))
    assert (call.get_status(), call.get_type(), call.get_receiver_id()) == ("initiated", "video", "bob")
    assert call.get_session_id()
    assert alice.chat.get_active_call() is call

    incoming = (await bob.recorder.wait_for("on_incoming_call_received"))[0]
    assert incoming.get_session_id() == call.get_session_id()
    assert incoming.get_call_initiator().get_uid() == "alice"
    accepted = await bob.chat.accept_call(incoming.get_session_id())
    assert accepted.get_status() == "ongoing"
    assert bob.chat.get_active_call() is accepted
    outgoing = (await alice.recorder.wait_for("on_outgoing_call_accepted"))[0]
    assert outgoing.get_status() == "ongoing"
    assert alice.chat.get_active_call().get_status() == "ongoing"  # type: ignore[union-attr]
    # The sender of a change never receives it back (§F.4).
    assert alice.recorder.names() == ["on_outgoing_call_accepted"]
    assert bob.recorder.names() == ["on_incoming_call_received"]


@pytest.mark.parametrize("status", ["rejected", "busy"])
async def test_reject_and_busy(chat: Chat, status: str) -> None:
    alice, bob = await chat("alice"), await chat("bob")
    call = await alice.chat.initiate_call(Call("bob", "audio", "user"))
    await bob.recorder.wait_for("on_incoming_call_received")
    answer = await bob.chat.reject_call(call.get_session_id(), status)  # type: ignore[arg-type]
    assert answer is not None and answer.get_status() == status
    assert statuses([await alice.recorder.wait_for("on_outgoing_call_rejected")]) == [status]
    assert alice.chat.get_active_call() is None
    assert bob.chat.get_active_call() is None


async def test_busy_when_the_receiver_is_already_in_a_call(chat: Chat) -> None:
    """The receiver's app answers busy while its own call is active."""
    alice, bob, carol = await chat("alice"), await chat("bob"), await chat("carol")
    first = await alice.chat.initiate_call(Call("bob", "video", "user"))
    await bob.recorder.wait_for("on_incoming_call_received")
    await bob.chat.accept_call(first.get_session_id())  # type: ignore[arg-type]

    def busy_if_in_a_call(call: Call) -> None:
        if bob.chat.get_active_call() is not None and call.get_session_id() != first.get_session_id():
            bob.chat._tasks.spawn(bob.chat.reject_call(call.get_session_id(), "busy"), "busy")  # type: ignore[arg-type]

    bob.chat.add_call_listener("app", {"on_incoming_call_received": busy_if_in_a_call})
    await carol.chat.initiate_call(Call("bob", "video", "user"))
    rejected = (await carol.recorder.wait_for("on_outgoing_call_rejected"))[0]
    assert rejected.get_status() == "busy"
    assert carol.chat.get_active_call() is None
    assert bob.chat.get_active_call().get_session_id() == first.get_session_id()  # type: ignore[union-attr]


async def test_cancel_before_answer(chat: Chat) -> None:
    alice, bob = await chat("alice"), await chat("bob")
    call = await alice.chat.initiate_call(Call("bob", "video", "user"))
    await bob.recorder.wait_for("on_incoming_call_received")
    cancelled = await alice.chat.reject_call(call.get_session_id(), "cancelled")  # type: ignore[arg-type]
    assert cancelled is not None and cancelled.get_status() == "cancelled"
    assert alice.chat.get_active_call() is None
    assert statuses([await bob.recorder.wait_for("on_incoming_call_cancelled")]) == ["cancelled"]
    # K28: with no active call, cancelling still settles (here: refused, the call is over).
    with pytest.raises(CometChatException) as caught:
        await alice.chat.reject_call(call.get_session_id(), "cancelled")  # type: ignore[arg-type]
    assert caught.value.code == "ERR_CALL_INVALID_TRANSITION"


async def test_unanswered_on_the_virtual_clock(chat: Chat) -> None:
    clock = VirtualClock()
    alice, bob = await chat("alice", clock=clock), await chat("bob")
    call = await alice.chat.initiate_call(Call("bob", "video", "user"), timeout=30.9)  # K31: floored to 30
    await bob.recorder.wait_for("on_incoming_call_received")
    clock.advance(29.9)
    assert alice.chat.get_active_call() is not None
    clock.advance(0.1)
    rejected = (await alice.recorder.wait_for("on_outgoing_call_rejected"))[0]
    assert rejected.get_status() == "unanswered"
    assert alice.chat.get_active_call() is None
    cancelled = (await bob.recorder.wait_for("on_incoming_call_cancelled"))[0]
    assert (cancelled.get_status(), cancelled.get_session_id()) == ("unanswered", call.get_session_id())


async def test_default_ringing_is_45_seconds_and_accepting_stops_it(chat: Chat) -> None:
    clock = VirtualClock()
    alice, bob = await chat("alice", clock=clock), await chat("bob")
    call = await alice.chat.initiate_call(Call("bob", "video", "user"), timeout=None)
    await bob.recorder.wait_for("on_incoming_call_received")
    clock.advance(44)
    await bob.chat.accept_call(call.get_session_id())  # type: ignore[arg-type]
    await alice.recorder.wait_for("on_outgoing_call_accepted")
    clock.advance(3600)
    assert alice.recorder.of("on_outgoing_call_rejected") == []
    assert alice.chat.get_active_call() is not None


async def test_errors_exactly_as_the_contract_gives_them(chat: Chat) -> None:
    alice, bob = await chat("alice"), await chat("bob")
    await alice.chat.initiate_call(Call("bob", "video", "user"))
    with pytest.raises(CometChatException) as caught:
        await alice.chat.initiate_call(Call("bob", "video", "user"))
    assert (caught.value.code, caught.value.name, caught.value.message) == (
        "CALL_ALREADY_INITIATED",
        "CALL_ALREADY_INITIATED",
        "There is already call in progress",
    )
    incoming = (await bob.recorder.wait_for("on_incoming_call_received"))[0]
    await bob.chat.accept_call(incoming.get_session_id())
    with pytest.raises(CometChatException) as caught:
        await bob.chat.accept_call(incoming.get_session_id())
    assert (caught.value.code, caught.value.message) == (
        "CALL_IN_PROGRESS",
        "There is already a call in progress",
    )
    for session_id, kind, code in [
        ("", "direct", "ERROR_INVALID_SESSIONID"),
        (None, None, "ERROR_INVALID_SESSIONID"),
        ("s1", "", "ERROR_INVALID_TYPE"),
        ("s1", None, "ERROR_INVALID_TYPE"),
    ]:
        with pytest.raises(CometChatException) as caught:
            await alice.chat.get_call_participant_count(session_id, kind)
        assert caught.value.code == code


async def test_not_logged_in_and_not_initialised() -> None:
    from simulator.chat import ChatClient
    from simulator.sdk import CallAppSettingsBuilder

    async with ChatClient() as client:
        with pytest.raises(CometChatException) as caught:
            await client.initiate_call(Call("bob", "video", "user"))
        assert caught.value.code == "NOT_INITIALIZED"
        await client.init(
            CallAppSettingsBuilder().set_app_id("a").set_region("us").set_host("http://127.0.0.1:9/").build()
        )
        with pytest.raises(CometChatException) as caught:
            await client.accept_call("x")
        assert caught.value.code == "NOT_LOGGED_IN"


async def test_end_call_edge_cases_k27(chat: Chat, backend: Backend) -> None:
    alice, _ = await chat("alice"), await chat("bob")
    assert await alice.chat.end_call("anything") is None  # no active call
    call = await alice.chat.initiate_call(Call("bob", "video", "user"))
    assert await alice.chat.end_call("another-session") is None  # mismatch: no server call
    assert backend.store.get_call(call.get_session_id()).status == "initiated"  # type: ignore[arg-type, union-attr]
    # The backend refuses to end a call never accepted; end_call still settles, locally ended.
    ended = await alice.chat.end_call(call.get_session_id())  # type: ignore[arg-type]
    assert ended is not None and ended.get_status() == "ended"
    assert alice.chat.get_active_call() is None
    assert backend.store.get_call(call.get_session_id()).status == "initiated"  # type: ignore[arg-type, union-attr]
    alice.chat.clear_active_call()
    alice.chat.clear_active_call()  # K29: idempotent


async def test_any_other_reject_status_ends_the_call(chat: Chat) -> None:
    alice, bob = await chat("alice"), await chat("bob")
    call = await alice.chat.initiate_call(Call("bob", "video", "user"))
    await bob.recorder.wait_for("on_incoming_call_received")
    await bob.chat.accept_call(call.get_session_id())  # type: ignore[arg-type]
    ended = await bob.chat.reject_call(call.get_session_id(), "whatever")  # type: ignore[arg-type]
    assert ended is not None and ended.get_status() == "ended"
    assert statuses([await alice.recorder.wait_for("on_call_ended_message_received")]) == ["ended"]
    assert alice.chat.get_active_call() is None


async def test_group_call_several_accept_and_a_rejection_does_not_end_it(
    chat: Chat, backend: Backend
) -> None:
    alice, bob, carol, dave = [await chat(u) for u in ("alice", "bob", "carol", "dave")]
    backend.store.create_group("team", "Team", ["alice", "bob", "carol", "dave"])
    call = await alice.chat.initiate_call(Call("team", "video", "group"))
    for member in (bob, carol, dave):
        await member.recorder.wait_for("on_incoming_call_received")
    assert alice.recorder.of("on_incoming_call_received") == []  # the initiator does not ring
    session_id = call.get_session_id()
    assert session_id is not None
    await dave.chat.reject_call(session_id, "rejected")
    assert statuses([await alice.recorder.wait_for("on_outgoing_call_rejected")]) == ["rejected"]
    assert alice.chat.get_active_call() is not None  # the group call goes on
    await bob.chat.accept_call(session_id)
    await carol.chat.accept_call(session_id)
    await alice.recorder.wait_for("on_outgoing_call_accepted", 2)
    assert backend.store.get_call(session_id).status == "ongoing"  # type: ignore[union-attr]
    assert backend.store.answers(session_id) == {"dave": "rejected", "bob": "ongoing", "carol": "ongoing"}


async def test_participant_count_direct_and_default_any_case(chat: Chat, join: Join) -> None:
    alice = await chat("alice")
    await join("p1", session="room-A")
    await join("p2", session="room-A")
    for kind in ("direct", "DIRECT", "Direct"):
        assert await alice.chat.get_call_participant_count("room-A", kind) == 2
    # "default" (any other value) names the room by the session id itself (§F.3, K32).
    for kind in ("default", "DEFAULT", "anything"):
        assert await alice.chat.get_call_participant_count("room-A", kind) == 2
    assert await alice.chat.get_call_participant_count("empty-room", "direct") == 0


async def test_illegal_transitions_over_rest_change_nothing(chat: Chat, backend: Backend) -> None:
    alice, bob, mallory = await chat("alice"), await chat("bob"), await chat("mallory")
    call = await alice.chat.initiate_call(Call("bob", "video", "user"))
    session_id = call.get_session_id()
    url = f"{backend.url}calls/{session_id}"
    tokens = {u.uid: u.chat.get_logged_in_user().get_auth_token() for u in (alice, bob, mallory)}  # type: ignore[union-attr]
    async with aiohttp.ClientSession() as http:
        for uid, status, code in [
            ("alice", "ended", "ERR_CALL_INVALID_TRANSITION"),  # never accepted
            ("alice", "ongoing", "ERR_CALL_INVALID_TRANSITION"),  # the initiator cannot answer
            ("mallory", "ongoing", "ERR_CALL_NOT_A_PARTICIPANT"),
            ("bob", "dancing", "ERR_CALL_INVALID_STATUS"),
            ("bob", 5, "INVALID_ARGUMENT_EXCEPTION"),
        ]:
            async with http.put(url, headers={"authToken": tokens[uid]}, json={"status": status}) as response:
                assert (await response.json())["error"]["code"] == code
        async with http.put(url, headers={"authToken": "forged"}, json={"status": "ongoing"}) as response:
            assert (await response.json())["error"]["code"] == "AUTH_ERR_AUTH_TOKEN_NOT_FOUND"
        await alice.chat.reject_call(session_id, "cancelled")  # type: ignore[arg-type]
        async with http.put(
            url, headers={"authToken": tokens["bob"]}, json={"status": "ongoing"}
        ) as response:
            assert (await response.json())["error"][
                "code"
            ] == "ERR_CALL_INVALID_TRANSITION"  # accepting a cancelled call
    assert backend.store.get_call(session_id).status == "cancelled"  # type: ignore[arg-type, union-attr]
    assert bob.recorder.names() == ["on_incoming_call_received", "on_incoming_call_cancelled"]


async def test_cancelling_with_no_active_call_resolves_k28(chat: Chat) -> None:
    alice, bob = await chat("alice"), await chat("bob")
    call = await alice.chat.initiate_call(Call("bob", "video", "user"))
    await bob.recorder.wait_for("on_incoming_call_received")
    alice.chat.clear_active_call()  # the bundle would now hang on cancel
    cancelled = await alice.chat.reject_call(call.get_session_id(), "cancelled")  # type: ignore[arg-type]
    assert cancelled is not None and cancelled.get_status() == "cancelled"
    await bob.recorder.wait_for("on_incoming_call_cancelled")
