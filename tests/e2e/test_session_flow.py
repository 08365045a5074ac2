"""Join and leave over real aiortc: event order and payloads at every participant (§C, §F.7)."""

from __future__ import annotations

import asyncio

import pytest

from simulator.sdk import CallUser, ListedUser
from simulator.server import Backend
from tests.conftest import Join

pytestmark = pytest.mark.e2e


def uids(users: list[ListedUser]) -> list[str]:
    return [u.uid for u in users]


async def test_join_events_at_every_participant(join: Join) -> None:
    alice = await join("alice")
    bob = await join("bob")
    await alice.recorder.wait_for("on_user_list_updated")
    carol = await join("carol")
    await alice.recorder.wait_for("on_user_list_updated", 2)
    await bob.recorder.wait_for("on_user_list_updated", 2)

    # Existing participants: the newcomer, then the list including the local user (K9).
    assert alice.recorder.names()[:4] == ["on_user_joined", "on_user_list_updated"] * 2
    joined = alice.recorder.of("on_user_joined")[0][0]
    assert isinstance(joined, CallUser)
    assert (joined.uid, joined.name, joined.avatar) == ("bob", "Bob", "https://avatars.test/bob.png")
    assert joined.joinned_at is not None and joined.joinned_at.isdigit()  # K11
    assert uids(alice.recorder.of("on_user_list_updated")[-1][0]) == ["alice", "bob", "carol"]

    # The joiner hears of everyone already there, one at a time (K10); never of itself.
    carol_events = [(n, a) for n, a in carol.recorder.events if n != "on_media_device_list_updated"]
    assert [n for n, _ in carol_events] == ["on_user_joined", "on_user_list_updated"] * 2
    assert [a[0].uid for n, a in carol_events if n == "on_user_joined"] == ["alice", "bob"]
    assert [uids(a[0]) for n, a in carol_events if n == "on_user_list_updated"] == [
        ["carol", "alice"],
        ["carol", "alice", "bob"],
    ]
    assert all(a[0].uid != "carol" for a in carol.recorder.of("on_user_joined"))
    list_entry = carol.recorder.of("on_user_list_updated")[-1][0][0]
    assert list_entry.id and list_entry.name == "Carol"


async def test_session_only_end_flow(join: Join, backend: Backend) -> None:
    """§F.7: end button → onCallEndButtonPressed → endSession; the other gets left, list, ended."""
    alice = await join("alice")
    bob = await join("bob")
    await alice.recorder.wait_for("on_user_joined")
    alice.recorder.clear()
    bob.recorder.clear()

    alice.client.add_call_event_listener("app", {"on_call_end_button_pressed": alice.client.end_session})
    alice.view.press("end_call")
    await alice.client.wait_closed()
    await bob.recorder.wait_for("on_call_ended")

    assert alice.recorder.names() == ["on_call_end_button_pressed"]
    assert alice.client.registry.ids() == []  # §D.9
    assert not alice.view.mounted
    assert bob.recorder.names() == ["on_user_left", "on_user_list_updated", "on_call_ended"]
    left = bob.recorder.of("on_user_left")[0][0]
    assert (left.uid, left.name, left.avatar, left.joinned_at) == (
        "alice",
        "Alice",
        "https://avatars.test/alice.png",
        None,
    )
    assert uids(bob.recorder.of("on_user_list_updated")[0][0]) == ["bob"]
    assert backend.rooms.participant_count("s1") == 1

    bob.client.end_session()
    await bob.client.wait_closed()
    assert backend.rooms.participant_count("s1") == 0


async def test_end_session_emits_nothing_locally_and_keeps_handlers(join: Join) -> None:
    """§A.2 #5, K20, §D.10."""
    alice = await join("alice")
    bob = await join("bob")
    carol = await join("carol")
    await alice.recorder.wait_for("on_user_joined", 2)
    alice.client.add_call_event_listener("kept", {"on_user_left": lambda user: None})
    for p in (alice, bob, carol):
        p.recorder.clear()

    alice.client.end_session()
    alice.client.end_session()  # idempotent
    await alice.client.wait_closed()
    await bob.recorder.wait_for("on_user_list_updated")
    await carol.recorder.wait_for("on_user_list_updated")

    assert alice.recorder.names() == []
    assert alice.client.registry.ids() == ["kept"]
    # Two remain: nobody is alone, so no on_call_ended (K4).
    assert bob.recorder.names() == ["on_user_left", "on_user_list_updated"]
    assert carol.recorder.names() == ["on_user_left", "on_user_list_updated"]

    bob.client.end_session()
    await carol.recorder.wait_for("on_call_ended")
    assert carol.recorder.names()[2:] == ["on_user_left", "on_user_list_updated", "on_call_ended"]


async def test_a_client_can_start_again_after_ending(join: Join) -> None:
    alice = await join("alice")
    alice.client.end_session()
    await alice.client.wait_closed()
    token = await alice.client.generate_token("s2", alice.auth_token)
    from simulator.sdk import CallSettingsBuilder

    await alice.client.start_session(token.token, CallSettingsBuilder().build(), alice.view)
    await alice.client.wait_joined()
    assert alice.view.mounts == 2


async def test_cancelling_a_join_mid_flight_leaves_nothing_behind(join: Join, backend: Backend) -> None:
    """STYLE rule 8: end_session() while the join is in flight; the backend keeps no one."""
    alice = await join("alice", wait=False)
    alice.client.end_session()
    await alice.client.wait_closed()
    assert backend.rooms.participant_count("s1") == 0
    assert alice.recorder.names() == []
    # The next participant finds an empty room.
    bob = await join("bob")
    assert bob.recorder.of("on_user_joined") == []
    assert backend.rooms.participant_count("s1") == 1


async def test_leaving_right_after_join_is_seen_by_the_others(join: Join) -> None:
    alice = await join("alice")
    bob = await join("bob", media=False)
    bob.client.end_session()
    await alice.recorder.wait_for("on_call_ended")
    assert alice.recorder.names()[-3:] == ["on_user_left", "on_user_list_updated", "on_call_ended"]
    await asyncio.wait_for(bob.client.wait_closed(), 10)
