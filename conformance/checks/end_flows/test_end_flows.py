"""§F.7: the end-call choreography, session-only and ringing."""

from __future__ import annotations

from conformance.api import Sut
from conformance.check import MUST, SHOULD, check


@check("F.7", MUST, "callView")
def test_session_only_end_button_flow(sut: Sut) -> None:
    alice, bob = sut.client("alice"), sut.client("bob")
    alice.join("s1")
    bob.join("s1")
    bob.wait("onUserListUpdated")
    alice.press("endCall")
    # The seed's flow: endSession from inside onCallEndButtonPressed, so after it (the
    # published SDK runs the button's handler 1 s after the press: a debounce).
    alice.wait("onCallEndButtonPressed")
    alice.calls("endSession")
    alice.harness("waitClosed")
    bob.wait("onCallEnded")
    assert alice.names()[-1] == "onCallEndButtonPressed"
    assert bob.names()[-3:] == ["onUserLeft", "onUserListUpdated", "onCallEnded"]
    assert bob.events(callback="onUserListUpdated")[-1].payload[0]["uid"] == "bob"


@check("F.7", MUST, "ringing")
def test_no_active_call_in_the_session_only_flow(sut: Sut) -> None:
    """§F.7: a session started without the ringing flow leaves the Chat SDK with no active call."""
    alice, bob = sut.client("alice"), sut.client("bob")
    alice.join("s1")  # provisions alice
    alice.chat("login", uid="alice")
    bob.join("s1")
    alice.wait("onUserJoined")
    assert alice.chat("getActiveCall") is None
    alice.end()
    assert alice.chat("getActiveCall") is None


@check("F.7", SHOULD, "callView")
def test_the_end_button_leaves_even_without_end_session_k21(sut: Sut) -> None:
    alice, bob = sut.client("alice"), sut.client("bob")
    alice.join("s1")
    bob.join("s1")
    bob.wait("onUserListUpdated")
    alice.press("endCall")
    bob.wait("onCallEnded")
    alice.harness("waitClosed")


@check("F.7", MUST, "ringing")
def test_ringing_end_flow(sut: Sut) -> None:
    alice, bob = sut.client("alice"), sut.client("bob")
    for client in (alice, bob):
        sut.user(client.name)  # the backend knows the user whichever checks ran before
        client.chat("login", uid=client.name)
    bob.chat("addCallListener", listenerId="app")
    call = alice.chat("initiateCall", receiverId="bob", callType="video", receiverType="user")
    bob.wait("onIncomingCallReceived", listener="chat:app")
    bob.chat("acceptCall", sessionId=call["sessionId"])
    alice.join(call["sessionId"])
    bob.join(call["sessionId"])
    bob.wait("onUserListUpdated")
    # A ends: endCall, clearActiveCall, endSession.
    ended = alice.chat("endCall", sessionId=call["sessionId"])
    assert ended["status"] == "ended"
    alice.chat("clearActiveCall")
    alice.end()
    bob.wait("onCallEndedMessageReceived", listener="chat:app")
    bob.wait("onCallEnded")
    assert bob.names()[-3:] == ["onUserLeft", "onUserListUpdated", "onCallEnded"]
    bob.chat("clearActiveCall")
    bob.end()
    assert alice.chat("getActiveCall") is None
    assert bob.chat("getActiveCall") is None
