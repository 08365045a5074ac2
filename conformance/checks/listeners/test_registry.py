"""§D: how listeners are registered, ordered, removed and cleared."""

from __future__ import annotations

from conformance.api import Client, Sut
from conformance.check import MUST, REFERENCE, SHOULD, check


def two_in_a_call(sut: Sut) -> tuple[Client, Client]:
    alice, bob = sut.client("alice"), sut.client("bob")
    alice.join("s1")
    return alice, bob


def order(alice: Client, callback: str) -> list[str]:
    return [e.listener for e in alice.events(None, callback)]


@check("D", MUST)
def test_both_ways_of_registering_receive_events(sut: Sut) -> None:
    alice, bob = two_in_a_call(sut)
    alice.calls("addCallEventListener", listenerId="extra")
    bob.join("s1")
    alice.wait("onUserJoined")
    alice.wait("onUserJoined", listener="extra")


@check("D", MUST)
def test_handlers_run_before_the_settings_listener(sut: Sut) -> None:
    alice, bob = two_in_a_call(sut)
    alice.calls("addCallEventListener", listenerId="a")
    alice.calls("addCallEventListener", listenerId="b")
    bob.join("s1")
    alice.wait("onUserJoined")
    assert order(alice, "onUserJoined") == ["a", "b", "settings"]


@check("D", MUST)
def test_re_adding_an_id_replaces_it(sut: Sut) -> None:
    alice, bob = two_in_a_call(sut)
    alice.calls("addCallEventListener", listenerId="a")
    alice.calls("addCallEventListener", listenerId="a")
    bob.join("s1")
    alice.wait("onUserJoined")
    assert order(alice, "onUserJoined").count("a") == 1


@check("D", SHOULD)
def test_re_adding_an_id_moves_it_to_the_end_k6(sut: Sut) -> None:
    alice, bob = two_in_a_call(sut)
    for listener_id in ("a", "b", "a"):
        alice.calls("addCallEventListener", listenerId=listener_id)
    bob.join("s1")
    alice.wait("onUserJoined")
    assert order(alice, "onUserJoined") == ["b", "a", "settings"]


@check("D", MUST)
def test_removal_is_targeted_and_unknown_ids_are_ignored(sut: Sut) -> None:
    alice, bob = two_in_a_call(sut)
    alice.calls("addCallEventListener", listenerId="a")
    alice.calls("addCallEventListener", listenerId="b")
    alice.calls("removeCallEventListener", listenerId="a")
    alice.calls("removeCallEventListener", listenerId="never-added")
    bob.join("s1")
    alice.wait("onUserJoined")
    assert order(alice, "onUserJoined") == ["b", "settings"]


@check("D", SHOULD)
def test_dispatch_iterates_a_snapshot_d7(sut: Sut) -> None:
    alice, bob = two_in_a_call(sut)
    alice.calls(
        "addCallEventListener",
        listenerId="a",
        onCallback={"onUserJoined": [{"remove": "b"}, {"add": "c"}]},
    )
    alice.calls("addCallEventListener", listenerId="b")
    bob.join("s1")
    alice.wait("onUserListUpdated")
    assert order(alice, "onUserJoined") == ["a", "b", "settings"]  # b removed mid-dispatch still runs
    assert "c" not in order(alice, "onUserJoined")
    assert order(alice, "onUserListUpdated") == ["a", "c", "settings"]  # the next event sees the change


@check("D", SHOULD)
def test_handlers_cleared_after_on_call_ended_d9(sut: Sut) -> None:
    alice, bob = two_in_a_call(sut)
    bob.join("s1")
    alice.wait("onUserJoined")
    alice.calls("addCallEventListener", listenerId="a")
    bob.end()
    alice.wait("onCallEnded")
    carol = sut.client("carol")
    carol.join("s1")
    alice.wait("onUserJoined", 2)
    assert order(alice, "onUserJoined")[-1:] == ["settings"]
    assert "a" not in order(alice, "onUserJoined")[1:]


@check("D", SHOULD, "callView")
def test_handlers_cleared_after_the_end_button_d9(sut: Sut) -> None:
    alice, bob = two_in_a_call(sut)
    alice.calls("addCallEventListener", listenerId="a")
    alice.press("endCall")
    alice.harness("waitClosed")
    alice.join("s2")
    bob.join("s2")
    alice.wait("onUserJoined")
    assert order(alice, "onCallEndButtonPressed") == ["a", "settings"]
    assert order(alice, "onUserJoined") == ["settings"]


@check("D", SHOULD)
def test_handlers_kept_after_end_session_d10(sut: Sut) -> None:
    alice, bob = two_in_a_call(sut)
    alice.calls("addCallEventListener", listenerId="a")
    alice.end()
    alice.join("s2")
    bob.join("s2")
    alice.wait("onUserJoined")
    assert order(alice, "onUserJoined") == ["a", "settings"]


@check("D", REFERENCE)
def test_a_throwing_listener_does_not_stop_the_others_k8(sut: Sut) -> None:
    """REFERENCE, K8: the published SDK has no try/catch; a throwing listener aborts the dispatch (§D.8)."""
    alice, bob = two_in_a_call(sut)
    alice.calls("addCallEventListener", listenerId="bad", throws=["onUserJoined"])
    alice.calls("addCallEventListener", listenerId="good")
    bob.join("s1")
    alice.wait("onUserListUpdated")
    assert order(alice, "onUserJoined") == ["bad", "good", "settings"]


@check("D", SHOULD, "virtualClock")
def test_handlers_cleared_after_on_session_timeout_d9(sut: Sut) -> None:
    alice, bob = sut.client("alice"), sut.client("bob")
    alice.join("s1")
    alice.calls("addCallEventListener", listenerId="a")
    sut.advance(180)
    alice.wait("onSessionTimeout")
    alice.harness("waitClosed")
    assert order(alice, "onSessionTimeout") == ["a", "settings"]
    # As an application does after a timeout: end the session (the seed: endSession releases
    # its resources), then start the next one. The published SDK keeps its ended call view
    # mounted until then and starts no other session in that element.
    alice.calls("endSession")
    alice.join("s2")
    bob.join("s2")
    alice.wait("onUserJoined")
    assert order(alice, "onUserJoined") == ["settings"]
