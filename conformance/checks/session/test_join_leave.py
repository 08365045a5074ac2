"""§A, §C: what every participant hears of joins and leaves, in order, with payloads."""

from __future__ import annotations

from conformance.api import Sut
from conformance.check import MUST, SHOULD, check


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
    alice, bob, carol = sut.client("alice"), sut.client("bob"), sut.client("carol")
    alice.join("s1")
    bob.join("s1")
    carol.join("s1")
    carol.wait("onUserListUpdated", 2)
    assert carol.names() == ["onUserJoined", "onUserListUpdated"] * 2
    assert [e.payload["uid"] for e in carol.events(callback="onUserJoined")] == ["alice", "bob"]


@check("C", SHOULD)
def test_no_on_user_joined_for_oneself_k9(sut: Sut) -> None:
    alice, bob = sut.client("alice"), sut.client("bob")
    alice.join("s1")
    bob.join("s1")
    bob.wait("onUserListUpdated")
    alice.wait("onUserListUpdated")
    assert all(e.payload["uid"] != "alice" for e in alice.events(callback="onUserJoined"))
    assert all(e.payload["uid"] != "bob" for e in bob.events(callback="onUserJoined"))
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
def test_end_session_emits_nothing_locally(sut: Sut) -> None:
    """§A.2 #5, K20: the leaver gets no callback; the one left alone gets onCallEnded last (K4)."""
    alice, bob = sut.client("alice"), sut.client("bob")
    alice.join("s1")
    bob.join("s1")
    alice.wait("onUserListUpdated")
    bob.wait("onUserListUpdated")
    before = bob.names()
    bob.end()
    alice.wait("onCallEnded")
    assert bob.names() == before
    assert alice.names()[-3:] == ["onUserLeft", "onUserListUpdated", "onCallEnded"]


@check("C", SHOULD)
def test_end_session_is_idempotent(sut: Sut) -> None:
    alice = sut.client("alice")
    alice.join("s1")
    alice.calls("endSession")
    alice.calls("endSession")
    alice.harness("waitClosed")
    assert alice.names() == []
