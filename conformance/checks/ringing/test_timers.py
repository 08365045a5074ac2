"""§F.3, §F.6: the ringing timer followed to its end: its boundary, after an accept, and
the values of its ``timeout`` argument (weakness class 4)."""

from __future__ import annotations

import pytest

from conformance.api import Sut
from conformance.check import MUST, REFERENCE, SHOULD, check
from conformance.checks.ringing.test_ringing import chat_names, logged_in, ring


@check("F", MUST, "ringing", "virtualClock", items=("F.6",), closes=(4,))
def test_an_accepted_call_is_never_unanswered(sut: Sut) -> None:
    """§F.6 step 2: the acceptance stops the initiator's ringing timer; long after, the call
    is still the active one on both sides and nobody heard of an unanswered call."""
    alice, bob = logged_in(sut, "alice", "bob")
    call = ring(alice, bob, timeout=30)
    sut.advance(10)
    bob.chat("acceptCall", sessionId=call["sessionId"])
    alice.wait("onOutgoingCallAccepted", listener="chat:app")
    sut.advance(600)
    assert chat_names(alice) == ["onOutgoingCallAccepted"]
    assert chat_names(bob) == ["onIncomingCallReceived"]
    assert alice.chat("getActiveCall")["status"] in ("initiated", "ongoing")
    assert bob.chat("getActiveCall")["sessionId"] == call["sessionId"]


@check("F", MUST, "ringing", "virtualClock", items=("F.6", "F.7"), closes=(4,))
def test_an_accepted_call_outlives_the_ringing_timeout_and_ends_at_the_other_side(sut: Sut) -> None:
    """§F.6, §F.7: after the accept both join; the clock passes the ringing timeout (the
    timer stopped at the accept must not fire, §F.3: its expiry would mark the call
    unanswered or, refused, drop the initiator's active call); the initiator then leaves
    and ends the call, which reaches the receiver as ``onCallEndedMessageReceived``."""
    alice, bob = logged_in(sut, "alice", "bob")
    call = ring(alice, bob, timeout=30)
    session_id = call["sessionId"]
    bob.chat("acceptCall", sessionId=session_id)
    alice.wait("onOutgoingCallAccepted", listener="chat:app")
    alice.join(session_id)
    bob.join(session_id)
    sut.advance(600)
    alice.end()  # its leave takes a round trip to the backend: a fired timer's request lands first
    ended = alice.chat("endCall", sessionId=session_id)
    assert ended is not None and (ended["sessionId"], ended["status"]) == (session_id, "ended"), ended
    assert bob.wait("onCallEndedMessageReceived", listener="chat:app").payload["status"] == "ended"
    assert chat_names(alice) == ["onOutgoingCallAccepted"]
    assert chat_names(bob) == ["onIncomingCallReceived", "onCallEndedMessageReceived"]


@check("F", MUST, "ringing", "virtualClock", items=("F.6",), closes=(4,))
def test_a_cancelled_call_is_never_unanswered(sut: Sut) -> None:
    alice, bob = logged_in(sut, "alice", "bob")
    call = ring(alice, bob, timeout=30)
    alice.chat("rejectCall", sessionId=call["sessionId"], status="cancelled")
    bob.wait("onIncomingCallCancelled", listener="chat:app")
    sut.advance(600)
    assert chat_names(alice) == []
    assert [e.payload["status"] for e in bob.events("chat:app", "onIncomingCallCancelled")] == ["cancelled"]


@check("F", SHOULD, "ringing", "virtualClock", items=("F.3", "F.6"), closes=(4,))
@pytest.mark.parametrize(
    ("timeout", "rings"),
    [(30.9, 30), (1, 1), (0, 45), (-5, 45), (None, 45)],
    ids=["fraction", "one", "zero", "negative", "null"],
)
def test_the_timeout_argument_is_normalised(sut: Sut, timeout: float | None, rings: int) -> None:
    """§F.3: ``floor(x)``; ≤ 0 and null mean 45. Silent just before, unanswered exactly at it,
    once."""
    alice, bob = logged_in(sut, "alice", "bob")
    ring(alice, bob, timeout=timeout)
    sut.advance(rings - 0.01)
    assert "onOutgoingCallRejected" not in chat_names(alice)
    sut.advance(0.01)
    assert alice.wait("onOutgoingCallRejected", listener="chat:app").payload["status"] == "unanswered"
    sut.advance(100)
    assert chat_names(alice) == ["onOutgoingCallRejected"]


@check("F", REFERENCE, "ringing", "virtualClock", items=("F.3",), closes=(4,))
@pytest.mark.parametrize("timeout", ["soon", True, {}], ids=["string", "boolean", "object"])
def test_a_non_number_timeout_means_45_k31(sut: Sut, timeout: object) -> None:
    """REFERENCE, K31: the published SDK turns a non-number into NaN and gives up at once."""
    alice, bob = logged_in(sut, "alice", "bob")
    ring(alice, bob, timeout=timeout)
    sut.advance(44.99)
    assert "onOutgoingCallRejected" not in chat_names(alice)
    sut.advance(0.01)
    alice.wait("onOutgoingCallRejected", listener="chat:app")
