"""§E: the idle timeout, on the implementation's virtual clock."""

from __future__ import annotations

import pytest

from conformance.api import Sut
from conformance.check import MUST, REFERENCE, SHOULD, check


@check("E", MUST, "virtualClock")
@pytest.mark.parametrize("period", [None, 120, 300])
def test_timeout_at_t_and_not_before(sut: Sut, period: int | None) -> None:
    """Default 180 s; custom periods. onSessionTimeout at T, never at T − ε."""
    alice = sut.client("alice")
    settings = {} if period is None else {"setIdleTimeoutPeriod": period}
    alice.join("s1", settings)
    total = period or 180
    sut.advance(total - 0.5)
    assert "onSessionTimeout" not in alice.names()
    sut.advance(0.5)
    alice.wait("onSessionTimeout")
    alice.harness("waitClosed")
    assert "onCallEnded" not in alice.names()


@check("E", SHOULD, "virtualClock", "callView")
def test_prompt_at_t_minus_60(sut: Sut) -> None:
    alice = sut.client("alice")
    alice.join("s1", {"setIdleTimeoutPeriod": 150})
    sut.advance(89.5)
    assert alice.view()["idle"] != "prompt"
    sut.advance(0.5)
    view = alice.view()
    assert (view["idle"], view["secondsLeft"]) == ("prompt", 60)
    assert alice.names() == []  # the prompt itself raises no callback


@check("E", SHOULD, "virtualClock", "callView")
def test_stay_restarts_the_cycle_k17(sut: Sut) -> None:
    alice = sut.client("alice")
    alice.join("s1")
    sut.advance(150)
    alice.press("stay")
    sut.advance(179)
    assert "onSessionTimeout" not in alice.names()
    sut.advance(1)
    alice.wait("onSessionTimeout")


@check("E", MUST, "virtualClock", "callView")
def test_leave_now_is_the_end_button_not_a_timeout(sut: Sut) -> None:
    alice = sut.client("alice")
    alice.join("s1")
    sut.advance(130)
    alice.press("leaveNow")
    alice.wait("onCallEndButtonPressed")
    alice.harness("waitClosed")
    sut.advance(600)
    assert "onSessionTimeout" not in alice.names()


@check("E", MUST, "virtualClock")
def test_a_join_before_the_prompt_cancels_the_timeout(sut: Sut) -> None:
    alice, bob = sut.client("alice"), sut.client("bob")
    alice.join("s1")
    sut.advance(100)  # the prompt is 20 s away
    bob.join("s1")
    alice.wait("onUserJoined")
    sut.advance(600)
    assert "onSessionTimeout" not in alice.names()


@check("E", REFERENCE, "virtualClock")
def test_a_join_cancels_the_timeout_k15(sut: Sut) -> None:
    """REFERENCE, K15: in the published SDK a join leaves a visible countdown running to its end (§E.8)."""
    alice, bob = sut.client("alice"), sut.client("bob")
    alice.join("s1")
    sut.advance(130)  # the prompt is showing
    bob.join("s1")
    alice.wait("onUserJoined")
    sut.advance(600)
    assert "onSessionTimeout" not in alice.names()


@check("E", SHOULD, "virtualClock")
def test_alone_again_starts_a_fresh_timer(sut: Sut) -> None:
    alice, bob = sut.client("alice"), sut.client("bob")
    alice.join("s1")
    sut.advance(100)
    bob.join("s1")
    alice.wait("onUserJoined")
    bob.end()
    alice.wait("onCallEnded")
    sut.advance(179)
    assert "onSessionTimeout" not in alice.names()
    sut.advance(1)
    alice.wait("onSessionTimeout")


@check("E", MUST, "virtualClock")
def test_a_timed_out_participant_has_left_the_room(sut: Sut) -> None:
    """Those who join after the timeout are listed without the one who timed out."""
    alice, bob, carol = sut.client("alice"), sut.client("bob"), sut.client("carol")
    alice.join("s1")
    sut.advance(180)
    alice.wait("onSessionTimeout")
    alice.harness("waitClosed")
    bob.join("s1")
    carol.join("s1")
    bob.wait_members("bob", "carol")
    assert "alice" not in [e.payload["uid"] for e in bob.events(callback="onUserJoined")]


@check("E", REFERENCE, "virtualClock")
def test_after_a_timeout_the_next_session_starts_k50(sut: Sut) -> None:
    """REFERENCE, K50: after onSessionTimeout and endSession, the client's next startSession
    joins. The published SDK keeps its "Meeting Ended" view until its own Leave button is
    pressed, and a startSession into that element does nothing, with no onError."""
    alice, bob = sut.client("alice"), sut.client("bob")
    alice.join("s1")
    sut.advance(180)
    alice.wait("onSessionTimeout")
    alice.harness("waitClosed")
    alice.calls("endSession")
    alice.join("s2")
    bob.join("s2")
    bob.wait_members("alice", "bob")
