"""§A, §C: what every participant hears of joins and leaves, in order, with payloads."""

from __future__ import annotations

from conformance.api import Sut
from conformance.check import MUST, REFERENCE, SHOULD, check


@check("C", MUST)
def test_existing_participants_hear_the_newcomer(sut: Sut) -> None:
    alice, bob = sut.client("alice"), sut.client("bob")
    alice.join("s1")
    bob.join("s1")
    joined = alice.wait("onUserJoined").payload
    assert (joined["uid"], joined["name"], joined["avatar"]) == ("bob", "Bob", "https://a.test/bob.png")
    listed = alice.wait("onUserListUpdated").payload
    assert sorted(u["uid"] for u in listed) == ["alice", "bob"]
    assert alice.names()[:2] == ["onUserJoined", "onUserListUpdated"]


@check("C", SHOULD)
def test_the_joiner_hears_of_everyone_already_there_k10(sut: Sut) -> None:
    """K10: one onUserJoined + onUserListUpdated per participant already there, in any order."""
    alice, bob, carol = sut.client("alice"), sut.client("bob"), sut.client("carol")
    alice.join("s1")
    bob.join("s1")
    carol.join("s1")
    carol.wait("onUserListUpdated", 2)
    assert carol.names() == ["onUserJoined", "onUserListUpdated"] * 2
    assert sorted(e.payload["uid"] for e in carol.events(callback="onUserJoined")) == ["alice", "bob"]


@check("C", REFERENCE)
def test_the_joiner_hears_of_them_in_join_order_k10(sut: Sut) -> None:
    """REFERENCE, K10: in the order they joined. The published SDK follows the MUC's presence
    order, which Prosody takes from its occupant table, not from join order."""
    alice, bob, carol = sut.client("alice"), sut.client("bob"), sut.client("carol")
    alice.join("s1")
    bob.join("s1")
    carol.join("s1")
    carol.wait("onUserListUpdated", 2)
    assert [e.payload["uid"] for e in carol.events(callback="onUserJoined")] == ["alice", "bob"]


@check("C", REFERENCE)
def test_no_on_user_joined_for_oneself_k9(sut: Sut) -> None:
    """REFERENCE, K9: the published SDK fires onUserJoined for the local user too (docs/jitsi.md)."""
    alice, bob = sut.client("alice"), sut.client("bob")
    alice.join("s1")
    bob.join("s1")
    bob.wait("onUserListUpdated")
    alice.wait("onUserListUpdated")
    assert all(e.payload["uid"] != "alice" for e in alice.events(callback="onUserJoined", everything=True))
    assert all(e.payload["uid"] != "bob" for e in bob.events(callback="onUserJoined", everything=True))
    assert "bob" in [u["uid"] for u in bob.events(callback="onUserListUpdated")[-1].payload]


@check("C", MUST)
def test_leave_order_at_the_others(sut: Sut) -> None:
    """Two remain: onUserLeft, then onUserListUpdated without the leaver; no onCallEnded."""
    alice, bob, carol = sut.client("alice"), sut.client("bob"), sut.client("carol")
    for c in (alice, bob, carol):
        c.join("s1")
    alice.wait("onUserJoined", 2)
    bob.wait("onUserJoined", 2)
    carol.end()
    for c in (alice, bob):
        c.wait("onUserListUpdated", 3)
        assert c.names()[-2:] == ["onUserLeft", "onUserListUpdated"]
        left = c.events(callback="onUserLeft")[-1].payload
        assert (left["uid"], left["name"]) == ("carol", "Carol")
        assert "carol" not in [u["uid"] for u in c.events(callback="onUserListUpdated")[-1].payload]
        assert "onCallEnded" not in c.names()


@check("C", MUST)
def test_end_session_tells_the_others(sut: Sut) -> None:
    """§A.2 #5, K4: the others get onUserLeft, then onUserListUpdated; the one left alone onCallEnded last."""
    alice, bob = sut.client("alice"), sut.client("bob")
    alice.join("s1")
    bob.join("s1")
    alice.wait("onUserListUpdated")
    bob.wait("onUserListUpdated")
    bob.end()
    alice.wait("onCallEnded")
    assert alice.names()[-3:] == ["onUserLeft", "onUserListUpdated", "onCallEnded"]
    assert alice.events(callback="onUserLeft")[-1].payload["uid"] == "bob"


@check("C", REFERENCE)
def test_end_session_emits_nothing_locally_k20(sut: Sut) -> None:
    """REFERENCE, K20: the leaver gets no callback. The published SDK tells the leaver that
    everyone else left (onUserLeft each, onUserListUpdated, onCallEnded) as its own MUC leave
    is echoed (docs/published-sdk-verdicts.toml)."""
    alice, bob = sut.client("alice"), sut.client("bob")
    alice.join("s1")
    bob.join("s1")
    alice.wait("onUserListUpdated")
    bob.wait("onUserListUpdated")
    before = bob.names(everything=True)
    bob.end()
    alice.wait("onCallEnded")
    bob.harness("waitClosed")
    assert bob.names(everything=True) == before


@check("C", SHOULD)
def test_end_session_is_idempotent(sut: Sut) -> None:
    alice = sut.client("alice")
    alice.join("s1")
    alice.calls("endSession")
    alice.calls("endSession")
    alice.harness("waitClosed")
    assert alice.names() == []
