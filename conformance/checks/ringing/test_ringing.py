"""§F: call signalling through the Chat SDK."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.api import Client, Sut
from conformance.check import MUST, REFERENCE, SHOULD, check
from conformance.driver import ContractError


def logged_in(sut: Sut, *uids: str) -> list[Client]:
    clients = []
    for uid in uids:
        client = sut.client(uid)
        sut.user(uid)  # the backend knows the user whichever checks ran before
        client.chat("login", uid=uid)
        client.chat("addCallListener", listenerId="app")
        clients.append(client)
    return clients


def ring(alice: Client, bob: Client, **extra: Any) -> dict[str, Any]:
    call = alice.chat("initiateCall", receiverId=bob.name, callType="video", receiverType="user", **extra)
    assert call["status"] == "initiated"
    bob.wait("onIncomingCallReceived", listener="chat:app")
    return dict(call)


def chat_names(client: Client) -> list[str]:
    return client.names("chat:app")


@check("F", MUST, "ringing", items=("F.3", "F.4", "F.6"))
def test_initiate_rings_the_receiver_and_accept_tells_the_initiator(sut: Sut) -> None:
    alice, bob = logged_in(sut, "alice", "bob")
    assert alice.chat("getActiveCall") is None
    call = ring(alice, bob)
    assert alice.chat("getActiveCall")["sessionId"] == call["sessionId"]
    accepted = bob.chat("acceptCall", sessionId=call["sessionId"])
    assert accepted["status"] == "ongoing"
    event = alice.wait("onOutgoingCallAccepted", listener="chat:app")
    assert event.payload["sessionId"] == call["sessionId"]
    assert chat_names(alice) == ["onOutgoingCallAccepted"]
    assert chat_names(bob) == ["onIncomingCallReceived"]


@check("F", MUST, "ringing", items=("F.3", "F.4"))
@pytest.mark.parametrize("status", ["rejected", "busy"])
def test_reject_and_busy_tell_the_initiator(sut: Sut, status: str) -> None:
    alice, bob = logged_in(sut, "alice", "bob")
    call = ring(alice, bob)
    assert bob.chat("rejectCall", sessionId=call["sessionId"], status=status)["status"] == status
    event = alice.wait("onOutgoingCallRejected", listener="chat:app")
    assert event.payload["status"] == status
    assert alice.chat("getActiveCall") is None


@check("F", MUST, "ringing", items=("F.3", "F.4"))
def test_cancel_tells_the_receiver(sut: Sut) -> None:
    alice, bob = logged_in(sut, "alice", "bob")
    call = ring(alice, bob)
    assert alice.chat("rejectCall", sessionId=call["sessionId"], status="cancelled")["status"] == "cancelled"
    assert alice.chat("getActiveCall") is None
    assert bob.wait("onIncomingCallCancelled", listener="chat:app").payload["status"] == "cancelled"


@check("F", MUST, "ringing", "virtualClock", items=("F.4", "F.6"))
def test_unanswered_after_the_timeout(sut: Sut) -> None:
    alice, bob = logged_in(sut, "alice", "bob")
    ring(alice, bob, timeout=30)
    sut.advance(29)
    assert "onOutgoingCallRejected" not in chat_names(alice)
    sut.advance(1)
    assert alice.wait("onOutgoingCallRejected", listener="chat:app").payload["status"] == "unanswered"
    assert bob.wait("onIncomingCallCancelled", listener="chat:app").payload["status"] == "unanswered"
    assert alice.chat("getActiveCall") is None


@check("F", SHOULD, "ringing", "virtualClock", items=("F.1", "F.6"))
def test_default_ringing_is_45_seconds(sut: Sut) -> None:
    alice, bob = logged_in(sut, "alice", "bob")
    ring(alice, bob)
    sut.advance(44)
    assert "onOutgoingCallRejected" not in chat_names(alice)
    sut.advance(1)
    alice.wait("onOutgoingCallRejected", listener="chat:app")


@check("F", MUST, "ringing", items=("F.3", "F.4"))
def test_end_tells_the_other_side(sut: Sut) -> None:
    alice, bob = logged_in(sut, "alice", "bob")
    call = ring(alice, bob)
    bob.chat("acceptCall", sessionId=call["sessionId"])
    alice.wait("onOutgoingCallAccepted", listener="chat:app")
    assert bob.chat("endCall", sessionId=call["sessionId"])["status"] == "ended"
    assert alice.wait("onCallEndedMessageReceived", listener="chat:app").payload["status"] == "ended"
    assert alice.chat("getActiveCall") is None
    assert bob.chat("getActiveCall") is None


@check("F", MUST, "ringing", items=("F.3", "H.2"))
def test_call_already_initiated(sut: Sut) -> None:
    alice, bob = logged_in(sut, "alice", "bob")
    ring(alice, bob)
    with pytest.raises(ContractError) as caught:
        alice.chat("initiateCall", receiverId="bob", callType="video", receiverType="user")
    assert (caught.value.code, caught.value.message) == (
        "CALL_ALREADY_INITIATED",
        "There is already call in progress",
    )


@check("F", MUST, "ringing", items=("F.3", "H.2"))
def test_cannot_accept_while_in_a_call(sut: Sut) -> None:
    alice, bob, carol = logged_in(sut, "alice", "bob", "carol")
    first = ring(alice, bob)
    bob.chat("acceptCall", sessionId=first["sessionId"])
    second = ring(carol, bob)
    with pytest.raises(ContractError) as caught:
        bob.chat("acceptCall", sessionId=second["sessionId"])
    assert caught.value.code == "CALL_IN_PROGRESS"


@check("F", MUST, "ringing", items=("F.3", "H.4"))
@pytest.mark.parametrize(
    ("session_id", "kind", "code"),
    [
        ("", "direct", "ERROR_INVALID_SESSIONID"),
        (None, "", "ERROR_INVALID_SESSIONID"),
        ("s1", "", "ERROR_INVALID_TYPE"),
    ],
)
def test_participant_count_errors(sut: Sut, session_id: object, kind: object, code: str) -> None:
    (alice,) = logged_in(sut, "alice")
    with pytest.raises(ContractError) as caught:
        alice.chat("getCallParticipantCount", sessionId=session_id, type=kind)
    assert caught.value.code == code


@check("F", SHOULD, "ringing", items=("F.3",))
def test_participant_count_direct_any_case_k32(sut: Sut) -> None:
    alice, bob = logged_in(sut, "alice", "bob")
    alice.join("room")
    bob.join("room")
    for kind in ("direct", "DIRECT"):
        assert alice.chat("getCallParticipantCount", sessionId="room", type=kind) == 2


@check("F", SHOULD, "ringing", items=("F.3",))
def test_end_call_without_an_active_call_is_null_k27(sut: Sut) -> None:
    alice, bob = logged_in(sut, "alice", "bob")
    assert alice.chat("endCall", sessionId="nothing-active") is None
    ring(alice, bob)
    alice.chat("clearActiveCall")
    alice.chat("clearActiveCall")  # K29: idempotent
    assert alice.chat("getActiveCall") is None


@check("F", REFERENCE, "ringing", items=("F.3",))
def test_end_call_never_hangs_k27(sut: Sut) -> None:
    """REFERENCE, K27: the published SDK's endCall with another session's id never settles."""
    alice, bob = logged_in(sut, "alice", "bob")
    ring(alice, bob)
    assert alice.chat("endCall", sessionId="another-session") is None
