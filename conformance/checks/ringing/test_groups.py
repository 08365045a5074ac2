"""§F.4, §F.5 group column: group calls ring every member but the initiator; answers go to
the initiator; one member's refusal does not end the call (weakness class 5)."""

from __future__ import annotations

from typing import Any

from conformance.api import Client, Sut
from conformance.check import REFERENCE, SHOULD, check
from conformance.checks.ringing.test_ringing import chat_names, logged_in

GROUP = "team"


def group_call(sut: Sut, *uids: str) -> tuple[list[Client], dict[str, Any]]:
    """``uids[0]`` calls a group of all of them; each other member has been rung."""
    clients = logged_in(sut, *uids)
    created = sut.call("Harness.createGroup", guid=GROUP, name="Team", members=list(uids))
    assert created["members"] == list(uids)
    call = clients[0].chat("initiateCall", receiverId=GROUP, callType="audio", receiverType="group")
    for member in clients[1:]:
        member.wait("onIncomingCallReceived", listener="chat:app")
    return clients, dict(call)


@check("F", SHOULD, "ringing", "groups", items=("F.3", "F.4"), closes=(1, 5, 10))
def test_a_group_call_rings_every_member_but_the_initiator(sut: Sut) -> None:
    (alice, bob, carol), call = group_call(sut, "alice", "bob", "carol")
    assert (call["status"], call["type"], call["receiverType"], call["receiverId"]) == (
        "initiated", "audio", "group", GROUP,
    )  # fmt: skip
    assert call["initiator"]["uid"] == "alice"
    for member in (bob, carol):
        incoming = member.events("chat:app", "onIncomingCallReceived")
        assert len(incoming) == 1, member.name
        payload = incoming[0].payload
        assert (payload["sessionId"], payload["status"], payload["receiverType"], payload["receiverId"]) == (
            call["sessionId"], "initiated", "group", GROUP,
        )  # fmt: skip
        assert payload["initiator"]["uid"] == "alice"
    assert "onIncomingCallReceived" not in chat_names(alice)


@check("F", SHOULD, "ringing", "groups", items=("F.4", "F.5"), closes=(5, 10))
def test_one_members_refusal_does_not_end_a_group_call(sut: Sut) -> None:
    """§F.4: bob rejects → alice (initiator) hears it and keeps her active call; carol's
    ringing goes on, and her acceptance still reaches alice."""
    (alice, bob, carol), call = group_call(sut, "alice", "bob", "carol")
    bob.chat("rejectCall", sessionId=call["sessionId"], status="rejected")
    rejected = alice.wait("onOutgoingCallRejected", listener="chat:app").payload
    assert (rejected["sessionId"], rejected["status"]) == (call["sessionId"], "rejected")
    assert alice.chat("getActiveCall")["sessionId"] == call["sessionId"]
    assert "onIncomingCallCancelled" not in chat_names(carol)
    accepted = carol.chat("acceptCall", sessionId=call["sessionId"])
    assert accepted["status"] == "ongoing"
    assert alice.wait("onOutgoingCallAccepted", listener="chat:app").payload["sessionId"] == call["sessionId"]
    assert chat_names(bob) == ["onIncomingCallReceived"]


@check("F", SHOULD, "ringing", "groups", items=("F.4", "F.5"), closes=(5, 10))
def test_several_members_may_accept_a_group_call(sut: Sut) -> None:
    (alice, bob, carol), call = group_call(sut, "alice", "bob", "carol")
    for member in (bob, carol):
        assert member.chat("acceptCall", sessionId=call["sessionId"])["status"] == "ongoing"
    alice.wait("onOutgoingCallAccepted", 2, listener="chat:app")
    assert chat_names(alice) == ["onOutgoingCallAccepted", "onOutgoingCallAccepted"]


@check("F", SHOULD, "ringing", "groups", items=("F.4",), closes=(5, 10))
def test_cancelling_a_group_call_tells_every_member(sut: Sut) -> None:
    (alice, bob, carol), call = group_call(sut, "alice", "bob", "carol")
    alice.chat("rejectCall", sessionId=call["sessionId"], status="cancelled")
    for member in (bob, carol):
        cancelled = member.wait("onIncomingCallCancelled", listener="chat:app").payload
        assert (cancelled["sessionId"], cancelled["status"]) == (call["sessionId"], "cancelled")
    assert alice.chat("getActiveCall") is None


@check("F", REFERENCE, "ringing", "groups", "virtualClock", items=("F.4", "F.6"), closes=(4, 5))
def test_an_accepted_group_call_is_never_unanswered_k30(sut: Sut) -> None:
    """REFERENCE, K30: the published SDK does not stop the initiator's ringing timer when a
    group member accepts; the reference does, so no late ``unanswered`` follows."""
    (alice, bob, _carol), call = group_call(sut, "alice", "bob", "carol")
    bob.chat("acceptCall", sessionId=call["sessionId"])
    alice.wait("onOutgoingCallAccepted", listener="chat:app")
    sut.advance(120)
    assert "onOutgoingCallRejected" not in chat_names(alice)
    assert alice.chat("getActiveCall")["sessionId"] == call["sessionId"]
