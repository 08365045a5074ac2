"""§C with three and four people: who hears of a join or a leave, and who alone hears the end.

Fixed scenarios, so that audiences and endings beyond two people never depend on the
model check's random walk reaching them (weakness class 10).
"""

from __future__ import annotations

from conformance.api import Client, Sut
from conformance.check import MUST, SHOULD, check

FOUR = ("alice", "bob", "carol", "dave")


def joined_in_order(sut: Sut, names: tuple[str, ...], session: str = "s1") -> list[Client]:
    """Each joins once the ones before have heard of the previous joiner (a fixed history)."""
    clients: list[Client] = []
    for name in names:
        client = sut.client(name)
        client.join(session)
        for earlier in clients:
            earlier.wait_members(*[c.name for c in clients], name)
        clients.append(client)
    clients[-1].wait_members(*names)
    return clients


@check("C", MUST, items=("C",), closes=(10,))
def test_four_join_each_hears_every_other_once(sut: Sut) -> None:
    """Everyone hears of each of the three others exactly once, and ends listing all four."""
    clients = joined_in_order(sut, FOUR)
    for client in clients:
        heard = sorted(e.payload["uid"] for e in client.events(callback="onUserJoined"))
        assert heard == sorted(set(FOUR) - {client.name}), client.name
        assert client.members() == set(FOUR), client.name


@check("C", MUST, items=("C",), closes=(10,))
def test_four_leave_one_by_one_only_the_last_hears_the_end(sut: Sut) -> None:
    """K4: dave, carol, bob leave in turn; each leave reaches exactly those still there, and
    onCallEnded reaches alice alone, once, after bob's leave."""
    alice, bob, carol, dave = joined_in_order(sut, FOUR)
    still = [alice, bob, carol, dave]
    for leaver in (dave, carol, bob):
        still.remove(leaver)
        leaver.end()
        for client in still:
            client.wait_members(*[c.name for c in still])
    alice.wait("onCallEnded")
    for client in (alice, bob, carol, dave):
        left = [e.payload["uid"] for e in client.events(callback="onUserLeft")]
        expected = {"alice": ["dave", "carol", "bob"], "bob": ["dave", "carol"], "carol": ["dave"]}
        assert left == expected.get(client.name, []), client.name
    assert alice.names()[-3:] == ["onUserLeft", "onUserListUpdated", "onCallEnded"]
    assert alice.names().count("onCallEnded") == 1
    for client in (bob, carol, dave):
        assert "onCallEnded" not in client.names(), client.name


@check("C", MUST, items=("C",), closes=(10,))
def test_three_one_leaves_the_two_go_on_without_an_end(sut: Sut) -> None:
    """The leaver of three is told to both others with its exact identity; nobody ends."""
    alice, bob, carol = joined_in_order(sut, ("alice", "bob", "carol"))
    bob.end()
    for client in (alice, carol):
        client.wait_members(alice.name, carol.name)
        left = client.events(callback="onUserLeft")
        assert [(e.payload["uid"], e.payload["name"]) for e in left] == [("bob", "Bob")]
        assert "onCallEnded" not in client.names()


@check("C", SHOULD, items=("C",), closes=(10,))
def test_a_joiner_after_a_leave_hears_only_those_still_there(sut: Sut) -> None:
    """Carol leaves a session of three; dave, joining after, hears of alice and bob only."""
    alice, bob, carol = joined_in_order(sut, ("alice", "bob", "carol"))
    carol.end()
    alice.wait_members("alice", "bob")
    bob.wait_members("alice", "bob")
    dave = sut.client("dave")
    dave.join("s1")
    dave.wait_members("alice", "bob", "dave")
    assert sorted(e.payload["uid"] for e in dave.events(callback="onUserJoined")) == ["alice", "bob"]
    assert "onUserLeft" not in dave.names()
