"""A virtual participant through the XMPP door (the client's side of the Jitsi protocol): it
joins as the published SDK does and gets the SDK's callbacks from MUC presence, beside native
participants, on a real Prosody."""

from __future__ import annotations

import asyncio

import pytest

from simulator.media.tones import TONES_HZ
from simulator.sdk.jitsi import JitsiParticipant, XmppRefusedError
from simulator.sdk.recorder import EventRecorder
from simulator.server import Backend
from tests.conftest import Join
from tests.e2e.test_xmpp_companion import backend  # noqa: F401 - the fixture
from tests.e2e.test_xmpp_door import call_token, pytestmark  # noqa: F401 - the skip marks

MEDIA = 30.0
"""Seconds for media evidence to show (a loaded 2-core machine)."""


def participant(backend: Backend, uid: str, token: str | None = None, **media: int) -> JitsiParticipant:  # noqa: F811
    return JitsiParticipant(
        backend.url,
        token or call_token(backend, uid, "s1"),
        session_id="s1",
        uid=uid,
        name=uid.title(),
        **media,
    )


async def test_its_lean_media_is_seen_and_heard_both_ways_and_its_mute_is_silence(
    backend: Backend,  # noqa: F811
    join: Join,
) -> None:
    bob = await join("bob", path="lean")  # the fixture's first participant: TONES_HZ[0]
    async with participant(backend, "alice", tone_hz=TONES_HZ[5], publisher_tag=9) as alice:
        await alice.evidence.wait_for(
            lambda: (
                alice.evidence.heard().get("bob") == TONES_HZ[0] and alice.evidence.frames_from("bob") >= 5
            ),
            MEDIA,
        )
        await bob.evidence.wait_for(
            lambda: (
                bob.evidence.heard().get("alice") == TONES_HZ[5] and bob.evidence.frames_from("alice") >= 5
            ),
            MEDIA,
        )
        assert alice.media.failure is None
        await alice.set_audio_muted(True)
        await bob.evidence.wait_for(lambda: "alice" not in bob.evidence.heard(), MEDIA)
        frames = bob.evidence.frames_from("alice")
        await bob.evidence.wait_for(
            lambda: bob.evidence.frames_from("alice") >= frames + 5, MEDIA
        )  # still seen


async def test_it_sees_the_natives_and_itself_join_as_the_sdk_does(backend: Backend, join: Join) -> None:  # noqa: F811
    bob = await join("bob", media=False)
    recorder = EventRecorder("alice")
    alice = participant(backend, "alice")
    alice.listeners.add("test", recorder.listener())
    async with alice:
        # Those already in first, then itself (the SDK's self-join), each with a fresh list.
        await recorder.wait_for("on_user_joined", 2)
        assert [u.uid for (u,) in recorder.of("on_user_joined")] == ["bob", "alice"]
        (listed,) = recorder.of("on_user_list_updated")[-1]
        assert {(u.uid, u.name) for u in listed} == {("bob", "Bob"), ("alice", "Alice")}
        assert alice.nick in {u.id for u in listed}
        # The natives see it as a member.
        joined = await bob.recorder.wait_for("on_user_joined")
        assert (joined[0].uid, joined[0].name) == ("alice", "Alice")

        # Its mute reaches the natives as state, with no callback (the contract's and the SDK's way).
        await alice.set_audio_muted(True)
        assert bob.client.session is not None
        async with asyncio.timeout(10):
            while not bob.client.session.participants[alice.nick].audio_muted:  # noqa: ASYNC110
                await asyncio.sleep(0.05)  # participant-state has no callback to wait on
        assert bob.recorder.of("on_user_muted") == []

        # The native leaves: it hears of it, and, alone, its call ends.
        bob.client.end_session()
        (left,) = await recorder.wait_for("on_user_left")
        assert left.uid == "bob"
        await recorder.wait_for("on_call_ended")
        assert recorder.names()[-3:] == ["on_user_left", "on_user_list_updated", "on_call_ended"]


async def test_its_leave_reaches_the_natives(backend: Backend, join: Join) -> None:  # noqa: F811
    bob = await join("bob", media=False)
    async with participant(backend, "alice"):
        await bob.recorder.wait_for("on_user_joined")
    (left,) = await bob.recorder.wait_for("on_user_left")
    assert left.uid == "alice"
    room = backend.rooms.get("s1")
    assert room is not None and [p.record.uid for p in room] == ["bob"]


async def test_a_token_for_another_session_or_a_forged_one_is_refused(backend: Backend) -> None:  # noqa: F811
    with pytest.raises(XmppRefusedError) as refused:
        async with participant(backend, "mallory", token=call_token(backend, "mallory", "s2")):
            pass
    assert refused.value.condition == "forbidden"
    with pytest.raises(XmppRefusedError) as refused:
        async with participant(backend, "mallory", token="not.a.token"):
            pass
    assert refused.value.condition == "not-authorized"
    assert backend.rooms.get("s1") is None
