"""A virtual participant through the XMPP door (the client's side of the Jitsi protocol): it
joins as the published SDK does and gets the SDK's callbacks from MUC presence, beside native
participants, on a real Prosody."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from simulator.jitsi.colibri import MappedSource
from simulator.media.tones import TONES_HZ
from simulator.sdk.jitsi import JitsiParticipant, XmppRefusedError
from simulator.sdk.recorder import EventRecorder
from simulator.server import Backend
from simulator.server.jitsi.endpoint import Endpoint
from tests.conftest import Join
from tests.e2e.test_xmpp_companion import backend  # noqa: F401 - the fixture
from tests.e2e.test_xmpp_door import call_token, pytestmark  # noqa: F401 - the skip marks

MEDIA = 30.0
"""Seconds for media evidence to show (a loaded 2-core machine)."""


def participant(backend: Backend, uid: str, token: str | None = None, **options: Any) -> JitsiParticipant:  # noqa: F811
    options.setdefault("bridge_base", backend.url)  # the bridge channel at the backend's own listener
    return JitsiParticipant(
        backend.url,
        token or call_token(backend, uid, "s1"),
        session_id="s1",
        uid=uid,
        name=uid.title(),
        **options,
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


async def test_its_bridge_channel_asks_its_layer_hears_the_bridge_and_relays_endpoint_messages(
    backend: Backend,  # noqa: F811
    join: Join,
) -> None:
    bob = await join("bob", path="lean")
    alice = participant(backend, "alice")
    carol = participant(backend, "carol")
    async with alice, carol:
        await alice.wait_media(MEDIA)
        await carol.wait_media(MEDIA)
        assert alice.media.channel is not None and carol.media.channel is not None
        channel, other = alice.media.channel, carol.media.channel
        await channel.wait_for(lambda: channel.hello == "callsim" and len(channel.forwarded) == 2, MEDIA)
        assert bob.client.session is not None and bob.client.session.me is not None
        owners = {name.rpartition("-")[0] for name in channel.forwarded}
        assert owners == {bob.client.session.me.participant_id, carol.nick}
        # An endpoint message reaches the others' channels, from its sender ...
        await channel.send_endpoint_message({"hello": "everyone"})
        await other.wait_for(lambda: (alice.nick, {"hello": "everyone"}) in other.messages, MEDIA)
        # ... and, read after the constraints it sent first, they were taken: its layer follows them.
        endpoint = next(p.sfu for p in backend.rooms.get("s1") or () if p.record.uid == "alice")
        assert isinstance(endpoint, Endpoint) and endpoint.constraints.default == 360


async def test_a_rewriting_bridges_source_map_moves_an_ssrc_to_its_new_owner(
    backend: Backend,  # noqa: F811
    join: Join,
) -> None:
    """lib-jitsi-meet's reading of a bridge that rewrites SSRCs: an SSRC announced for one
    owner, then re-mapped to another: what arrives on it from then on is the new owner's."""
    bob = await join("bob", path="lean")
    async with participant(backend, "alice") as alice:
        await alice.wait_media(MEDIA)
        await alice.evidence.wait_for(lambda: alice.evidence.frames_from("bob") >= 5, MEDIA)
        (camera,) = [s for s in alice.media._streams.items() if s[1].source == "camera"]
        ssrc, before = camera
        alice.media.on_sources_map("video", [MappedSource(ssrc, "d4e5f6a7", "d4e5f6a7-v0", "camera")])
        assert before.active is False
        await alice.evidence.wait_for(lambda: alice.evidence.frames_from("d4e5f6a7") >= 5, MEDIA)
        # The same map again changes nothing; one for the old owner moves it back.
        alice.media.on_sources_map("video", [MappedSource(ssrc, "d4e5f6a7", "d4e5f6a7-v0", "camera")])
        assert len([s for s in alice.evidence.streams if s.participant_id == "d4e5f6a7"]) == 1
        assert bob.client.session is not None


async def test_its_simulcast_camera_is_forwarded_one_layer_per_receiver_and_unwanted_layers_stop(
    backend: Backend,  # noqa: F811
    join: Join,
) -> None:
    """Three layers in a SIM group, as lib-jitsi-meet sends them: each receiver gets the tallest
    that fits what it asked, and a layer taller than anyone takes is no longer sent."""
    bob = await join("bob", path="lean")  # a native receiver: the bridge's default height
    alice = participant(backend, "alice", simulcast=True, publisher_tag=5)
    carol = participant(backend, "carol", receive_height=180)
    async with alice, carol:
        await alice.wait_media(MEDIA)
        await carol.wait_media(MEDIA)
        camera = next(p.sfu for p in backend.rooms.get("s1") or () if p.record.uid == "alice")
        assert isinstance(camera, Endpoint)
        forwarder = camera.forwarders["camera"]
        assert len(forwarder.layers) == 3
        await carol.evidence.wait_for(lambda: carol.evidence.frames_from("alice") >= 10, MEDIA)
        await bob.evidence.wait_for(lambda: bob.evidence.frames_from("alice") >= 10, MEDIA)
        assert forwarder.heights[:2] == [180, 360]

        def chosen() -> dict[int | None, int | None]:
            """Each outlet's constraint → the height of the layer it now gets."""
            return {
                o.max_height: forwarder.heights[o.layer] for o in forwarder.outlets if o.layer is not None
            }

        def settled() -> bool:
            return chosen() == {180: 180, 360: 360}

        # A layer switch waits for the target layer's keyframe: the forwarder's state has no
        # event to wait on, so it is looked at until it settles (bounded).
        async with asyncio.timeout(MEDIA):
            while not settled():  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        # carol asked for 180 lines and gets that layer; bob (native: the bridge's 360) the next.
        # Nobody takes 720 lines: the bridge says so, and alice stops sending that layer.
        channel = alice.media.channel
        assert channel is not None
        await channel.wait_for(lambda: channel.sender_limit is not None and channel.sender_limit < 720, MEDIA)
        assert [layer.enabled for layer in alice.media.layers] == [True, True, False]


async def test_on_the_full_path_it_encodes_and_decodes_and_both_sides_see_and_hear(
    backend: Backend,  # noqa: F811
    join: Join,
) -> None:
    """The realistic sample: aiortc's encoders and decoders on the Jingle session's transport,
    beside a native participant on the full path: pixel marks and tones, decoded both ways."""
    bob = await join("bob", path="full")
    async with participant(backend, "alice", path="full", tone_hz=TONES_HZ[6], publisher_tag=4) as alice:
        await alice.wait_media(MEDIA)
        await alice.evidence.wait_for(
            lambda: (
                alice.evidence.heard().get("bob") == TONES_HZ[0] and alice.evidence.frames_from("bob") >= 10
            ),
            MEDIA,
        )
        camera = alice.evidence.stream("bob", "camera")
        assert camera is not None and camera.marked_frames > 0  # decoded pictures, marks read
        await bob.evidence.wait_for(
            lambda: (
                bob.evidence.heard().get("alice") == TONES_HZ[6] and bob.evidence.frames_from("alice") >= 10
            ),
            MEDIA,
        )
        stats = await alice.receive_stats()
        assert stats.packets > 0
        await alice.set_audio_muted(True)
        await bob.evidence.wait_for(lambda: "alice" not in bob.evidence.heard(), MEDIA)
