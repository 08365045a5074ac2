"""§A.3: a session's lifecycle around ``endSession`` and the join: ending a session whose
join is still under way, muting and pausing in that window, and starting the next session
at once (each written for a surviving mutant, docs/mutation.md)."""

from __future__ import annotations

from conformance.api import Sut
from conformance.check import REFERENCE, SHOULD, check


@check("A", REFERENCE, items=("A.3", "A.2"), closes=(4,))
def test_end_session_while_the_join_is_under_way_closes_the_session_k51(sut: Sut) -> None:
    """REFERENCE, K51: ``startSession`` resolves before the join is done (§A.3); an
    ``endSession`` right after it still ends the session: it closes, and the one who ended it
    is not left in the room (a later joiner's list and the first participant's do not hold
    it). The published SDK's ``endSession`` does nothing until its call UI is mounted, and
    the join goes on."""
    alice, bob, carol = sut.client("alice"), sut.client("bob"), sut.client("carol")
    alice.join("s1")
    bob.start("s1")
    bob.end()  # waitClosed: the session closed, whatever point its join had reached
    carol.join("s1")
    alice.wait_members("alice", "carol")
    carol.wait_members("alice", "carol")


@check("A", SHOULD, "virtualClock", items=("A.3", "I"), closes=(4,))
def test_a_session_started_right_after_end_session_gets_its_device_list(sut: Sut) -> None:
    """§A.3, §A.2 #3: after ``endSession`` (which returns before its teardown is done) the
    next ``startSession`` starts at once, and its own ``onMediaDeviceListUpdated`` comes
    500 ms later: the first session's teardown, finishing meanwhile, does not cancel it."""
    alice = sut.client("alice")
    alice.join("s1")
    token = alice.token("s2")  # ready before the end, so the next start follows it at once
    alice.end(wait=False)
    alice.calls("startSession", callToken=token, callSettings={"setCallListener": True})
    alice.harness("waitJoined")
    sut.advance(0.5)
    update = alice.wait("onMediaDeviceListUpdated").payload
    assert set(update) == {"audioInputDevices", "audioOutputDevices", "videoInputDevices"}, update
    sut.advance(5)
    assert len(alice.events(callback="onMediaDeviceListUpdated")) == 1


@check("A", SHOULD, items=("A.3", "A.2"))
def test_mute_and_pause_while_the_join_is_under_way_neither_throw_nor_call_back(sut: Sut) -> None:
    """§A.3, §A.2 #6–#10: between ``startSession`` resolving and the join, mute and pause are
    accepted like any in-call method (silently: no exception, no callback, no onError), and
    the join then completes."""
    alice, bob = sut.client("alice"), sut.client("bob")
    alice.join("s1")
    bob.start("s1")
    for method, params in [
        ("muteAudio", {"mute": True}),
        ("pauseVideo", {"pause": True}),
        ("unMuteAudio", {}),
        ("resumeVideo", {}),
    ]:
        bob.calls(method, **params)
    bob.harness("waitJoined")
    alice.wait_members("alice", "bob")
    assert bob.events(callback="onError") == []
    assert "onUserMuted" not in bob.names() and "onUserUnMuted" not in bob.names()
