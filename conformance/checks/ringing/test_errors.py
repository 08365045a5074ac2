"""§H.2, §H.4, §F.1: ringing refusals compared whole (code, name, message, details), with
several bad arguments at once, and each call type (weakness classes 2, 3, 9)."""

from __future__ import annotations

import pytest

from conformance.api import Sut
from conformance.check import MUST, check
from conformance.checks.ringing.test_ringing import logged_in, ring
from conformance.driver import ContractError

Entry = tuple[str, str, str, object]
"""(code, message, name, details)."""

ALREADY_INITIATED: Entry = (
    "CALL_ALREADY_INITIATED",
    "There is already call in progress",
    "CALL_ALREADY_INITIATED",
    {},
)
CANNOT_ACCEPT: Entry = ("CALL_IN_PROGRESS", "There is already a call in progress", "CALL_IN_PROGRESS", {})
INVALID_SESSIONID: Entry = (
    "ERROR_INVALID_SESSIONID",
    "The provided sessionId cannot be null or empty. Please provide a valid sessionId.",
    "ERROR_INVALID_SESSIONID",
    "",
)
INVALID_TYPE: Entry = (
    "ERROR_INVALID_TYPE",
    "The provided type cannot be null or empty. Please provide a valid type.",
    "ERROR_INVALID_TYPE",
    "",
)


def whole(error: ContractError) -> tuple[object, object, object, object]:
    return (error.code, error.message, error.name, error.details)


@check("F", MUST, "ringing", items=("F.3", "H.2"), closes=(3,))
def test_call_already_initiated_whole_entry(sut: Sut) -> None:
    alice, bob, carol = logged_in(sut, "alice", "bob", "carol")
    ring(alice, bob)
    with pytest.raises(ContractError) as caught:
        alice.chat("initiateCall", receiverId="carol", callType="audio", receiverType="user")
    assert whole(caught.value) == ALREADY_INITIATED
    assert "onIncomingCallReceived" not in carol.names("chat:app")


@check("F", MUST, "ringing", items=("F.3", "H.2"), closes=(3,))
def test_cannot_accept_call_whole_entry(sut: Sut) -> None:
    alice, bob, carol = logged_in(sut, "alice", "bob", "carol")
    first = ring(alice, bob)
    bob.chat("acceptCall", sessionId=first["sessionId"])
    second = ring(carol, bob)
    with pytest.raises(ContractError) as caught:
        bob.chat("acceptCall", sessionId=second["sessionId"])
    assert whole(caught.value) == CANNOT_ACCEPT
    assert bob.chat("getActiveCall")["sessionId"] == first["sessionId"]


@check("F", MUST, "ringing", items=("F.3", "H.4"), closes=(2, 3))
@pytest.mark.parametrize(
    ("session_id", "kind", "entry"),
    [
        ("", "", INVALID_SESSIONID),
        (None, None, INVALID_SESSIONID),
        ("  ", "direct", INVALID_SESSIONID),
        ("s1", None, INVALID_TYPE),
        ("s1", "  ", INVALID_TYPE),
    ],
    ids=["both-empty", "both-null", "blank-session", "null-type", "blank-type"],
)
def test_participant_count_refusals_whole_and_in_order(
    sut: Sut, session_id: object, kind: object, entry: tuple[object, ...]
) -> None:
    """§F.3: sessionId is checked before type ("falsy" includes blank strings); §H.4's entries."""
    (alice,) = logged_in(sut, "alice")
    with pytest.raises(ContractError) as caught:
        alice.chat("getCallParticipantCount", sessionId=session_id, type=kind)
    assert whole(caught.value) == entry


@check("F", MUST, "ringing", items=("F.1", "F.3", "F.4"), closes=(1, 9, 11))
@pytest.mark.parametrize("call_type", ["audio", "video"])
def test_each_call_type_reaches_the_receiver_whole(sut: Sut, call_type: str) -> None:
    """§F.1 CALL_TYPE: each type is carried to the receiver, with every field of the call."""
    alice, bob = logged_in(sut, "alice", "bob")
    call = alice.chat("initiateCall", receiverId="bob", callType=call_type, receiverType="user")
    assert (call["status"], call["type"], call["receiverType"], call["receiverId"]) == (
        "initiated", call_type, "user", "bob",
    )  # fmt: skip
    assert call["initiator"]["uid"] == "alice"
    incoming = bob.wait("onIncomingCallReceived", listener="chat:app").payload
    assert {k: incoming[k] for k in ("sessionId", "status", "type", "receiverType", "receiverId")} == {
        "sessionId": call["sessionId"], "status": "initiated", "type": call_type,
        "receiverType": "user", "receiverId": "bob",
    }  # fmt: skip
    assert (incoming["initiator"]["uid"], incoming["initiator"]["name"]) == ("alice", "Alice")
    accepted = bob.chat("acceptCall", sessionId=call["sessionId"])
    assert (accepted["status"], accepted["type"]) == ("ongoing", call_type)
    told = alice.wait("onOutgoingCallAccepted", listener="chat:app").payload
    assert (told["sessionId"], told["status"], told["type"]) == (call["sessionId"], "ongoing", call_type)


@check("F", MUST, "ringing", items=("F.1", "F.4"), closes=(1, 9))
@pytest.mark.parametrize("status", ["rejected", "busy", "cancelled"])
def test_each_refusal_status_reaches_the_other_side_whole(sut: Sut, status: str) -> None:
    """§F.1 CALL_STATUS: rejected and busy reach the initiator, cancelled the receiver, each
    with the call's session id, status and type; nobody else is told."""
    alice, bob = logged_in(sut, "alice", "bob")
    call = ring(alice, bob)
    actor, other, callback = (
        (alice, bob, "onIncomingCallCancelled")
        if status == "cancelled"
        else (bob, alice, "onOutgoingCallRejected")
    )
    result = actor.chat("rejectCall", sessionId=call["sessionId"], status=status)
    assert (result["sessionId"], result["status"]) == (call["sessionId"], status)
    told = other.wait(callback, listener="chat:app").payload
    assert (told["sessionId"], told["status"], told["type"]) == (call["sessionId"], status, "video")
    assert actor.names("chat:app") == ([] if actor is alice else ["onIncomingCallReceived"])
