"""Media as evidence: who hears whom, and the effects of mute, pause, share and switch (§A.2).

Every test runs on the full path (decoded pictures and tones) and on the lean path
(marks read from sampled packets): the evidence must be the same on both.
"""

from __future__ import annotations

import pytest

from simulator.media.paths import MediaPath
from simulator.media.sources import SourceTag
from simulator.media.tones import TONES_HZ
from simulator.sdk import CallSettingsBuilder
from simulator.server import Backend
from tests.conftest import Join

pytestmark = pytest.mark.e2e
MEDIA = 20.0


@pytest.fixture(params=["full", "lean"])
def media_path(request: pytest.FixtureRequest) -> MediaPath:
    return request.param  # type: ignore[no-any-return]


async def test_everyone_hears_and_sees_everyone(join: Join) -> None:
    people = [await join(uid) for uid in ("alice", "bob", "carol")]
    for index, p in enumerate(people):
        others = {q.uid: TONES_HZ[j] for j, q in enumerate(people) if q is not p}
        await p.evidence.wait_for(
            lambda p=p, others=others: (
                p.evidence.heard() == others and all(p.evidence.frames_from(uid) >= 5 for uid in others)
            ),
            MEDIA,
        )
        # The picture carries its publisher's tag: nothing is cross-wired.
        for j, q in enumerate(people):
            if q is not p:
                stream = p.evidence.stream(q.uid, "camera")
                assert stream is not None and stream.last_tag is not None
                assert SourceTag.unpack(stream.last_tag)[0] == j + 1
        assert index >= 0
    latencies = people[0].evidence.latencies_ms()
    assert latencies and max(latencies) < 5_000


async def test_mute_silences_for_the_others_and_unmute_restores(join: Join) -> None:
    alice, bob = await join("alice"), await join("bob")
    await alice.evidence.wait_for(lambda: "bob" in alice.evidence.heard(), MEDIA)
    bob.client.mute_audio(True)
    await alice.evidence.wait_for(lambda: "bob" not in alice.evidence.heard(), MEDIA)
    assert bob.recorder.of("on_user_muted") == []  # K13: the API path emits nothing
    bob.client.un_mute_audio()
    await alice.evidence.wait_for(lambda: "bob" in alice.evidence.heard(), MEDIA)


async def test_pause_video_freezes_and_resume_continues(join: Join) -> None:
    alice, bob = await join("alice"), await join("bob")
    await alice.evidence.wait_for(lambda: alice.evidence.frames_from("bob") >= 5, MEDIA)
    bob.client.pause_video(True)
    assert bob.client.session is not None
    sent_when_paused = bob.client.session.camera.frames_sent
    # Audio keeps flowing while video is paused: wait on it, then check no new picture came.
    count = alice.evidence.frames_from("bob")
    stream = alice.evidence.stream("bob", "mic")
    assert stream is not None
    audio_frames = stream.frames
    await alice.evidence.wait_for(lambda: stream.frames >= audio_frames + 50, MEDIA)  # ≥ 1 s of audio
    assert bob.client.session.camera.frames_sent == sent_when_paused
    assert alice.evidence.frames_from("bob") <= count + 2  # at most what was in flight
    frozen_at = alice.evidence.frames_from("bob")
    bob.client.resume_video()
    await alice.evidence.wait_for(lambda: alice.evidence.frames_from("bob") >= frozen_at + 5, MEDIA)
    camera = alice.evidence.stream("bob", "camera")
    assert camera is not None and camera.freezes >= 1


async def test_screen_share_is_a_second_video_stream(join: Join) -> None:
    alice, bob = await join("alice"), await join("bob")
    await alice.evidence.wait_for(lambda: alice.evidence.frames_from("bob") >= 3, MEDIA)
    assert alice.evidence.stream("bob", "screen") is None
    bob.client.start_screen_share()
    bob.client.start_screen_share()  # no second share
    await alice.evidence.wait_for(lambda: alice.evidence.frames_from("bob", "screen") >= 3, MEDIA)
    screen = alice.evidence.stream("bob", "screen")
    assert screen is not None and screen.last_tag is not None and SourceTag.unpack(screen.last_tag)[1]
    assert bob.recorder.names().count("on_screen_share_started") == 1
    assert alice.recorder.of("on_screen_share_started") == []  # K34: local only
    bob.client.stop_screen_share()
    await bob.recorder.wait_for("on_screen_share_stopped")
    await alice.evidence.wait_for(lambda: alice.evidence.stream("bob", "screen") is None, MEDIA)


async def test_subscribe_slots_are_reused_through_churn_and_carry_the_newcomer(
    join: Join, backend: Backend
) -> None:
    """The split transport: shares and leaves free m-lines that the next stream takes; the
    description stays as long as the most streams at once, and a stream on a reused slot is whole."""
    alice, bob = await join("alice", transport="split"), await join("bob", transport="split")
    room = backend.rooms.get("s1")
    assert room is not None and alice.client.session is not None and alice.client.session.me is not None
    alice_sfu = room.participants[alice.client.session.me.participant_id].sfu
    assert alice_sfu is not None
    for _ in range(4):
        bob.client.start_screen_share()
        await alice.evidence.wait_for(
            lambda: (s := alice.evidence.stream("bob", "screen")) is not None and s.frames >= 2, MEDIA
        )
        bob.client.stop_screen_share()
        await alice.evidence.wait_for(lambda: alice.evidence.stream("bob", "screen") is None, MEDIA)
    assert alice_sfu.subscribe_mlines == 3  # bob's mic, camera and one screen slot, reused each time
    bob.client.end_session()
    await alice.recorder.wait_for("on_user_left")
    carol = await join("carol", transport="split")
    await alice.evidence.wait_for(
        lambda: "carol" in alice.evidence.heard() and alice.evidence.frames_from("carol") >= 5, MEDIA
    )
    assert alice_sfu.subscribe_mlines == 3  # carol's mic and camera took bob's slots
    stream = alice.evidence.stream("carol", "camera")
    assert stream is not None and stream.last_tag is not None
    assert SourceTag.unpack(stream.last_tag)[0] == 3  # carol's picture, not bob's, on the slot
    assert alice.evidence.stream("bob", "camera") is None
    assert carol.uid in alice.evidence.heard()


async def test_switch_to_video_starts_video_on_an_audio_only_call_k14(join: Join) -> None:
    audio_only = lambda: CallSettingsBuilder().set_is_audio_only_call(True)  # noqa: E731
    alice = await join("alice", builder=audio_only())
    bob = await join("bob", builder=audio_only())
    await alice.evidence.wait_for(lambda: "bob" in alice.evidence.heard(), MEDIA)
    assert alice.evidence.frames_from("bob") == 0
    alice.client.switch_to_video_call()
    event = (await bob.recorder.wait_for("on_call_switched_to_video"))[0]
    await alice.recorder.wait_for("on_call_switched_to_video")
    assert (event.session_id, event.initiator.uid, event.responder.uid) == ("s1", "alice", "bob")
    await alice.evidence.wait_for(lambda: alice.evidence.frames_from("bob") >= 3, MEDIA)
    await bob.evidence.wait_for(lambda: bob.evidence.frames_from("alice") >= 3, MEDIA)
    alice.client.switch_to_video_call()  # already switched: no-op
    bob.client.switch_to_video_call()


async def test_switch_to_video_on_a_video_call_is_a_no_op(join: Join) -> None:
    alice, bob = await join("alice"), await join("bob")
    await bob.evidence.wait_for(lambda: bob.evidence.frames_from("alice") >= 2, MEDIA)
    alice.client.switch_to_video_call()
    alice.client.mute_audio(True)  # a later message proves the earlier one was handled
    await bob.evidence.wait_for(lambda: "alice" not in bob.evidence.heard(), MEDIA)
    assert bob.recorder.of("on_call_switched_to_video") == []


async def test_start_muted_settings(join: Join) -> None:
    muted = CallSettingsBuilder().start_with_audio_muted(True).start_with_video_muted(True)
    alice = await join("alice")
    bob = await join("bob", builder=muted)
    await alice.evidence.wait_for(lambda: alice.evidence.stream("bob", "mic") is not None, MEDIA)
    stream = alice.evidence.stream("bob", "mic")
    assert stream is not None
    await alice.evidence.wait_for(lambda: stream.frames >= 25, MEDIA)
    assert "bob" not in alice.evidence.heard()
    assert alice.evidence.frames_from("bob") == 0
    tiles = {t.uid: t for t in alice.view.tiles}
    assert tiles["bob"].audio_muted and tiles["bob"].video_muted
    # Unmuting makes the tone and the picture appear: the start state was the only gate.
    bob.client.un_mute_audio()
    bob.client.resume_video()
    await alice.evidence.wait_for(
        lambda: "bob" in alice.evidence.heard() and alice.evidence.frames_from("bob") >= 3, MEDIA
    )


@pytest.mark.parametrize("media_path", ["full"])
async def test_a_subscribers_picture_loss_reaches_the_publisher(join: Join) -> None:
    """The SFU does not decode, so it cannot make keyframes: it forwards PLI to the publisher."""
    import asyncio

    alice, bob = await join("alice"), await join("bob")
    await bob.evidence.wait_for(lambda: bob.evidence.frames_from("alice") >= 3, MEDIA)
    alice_session, bob_session = alice.client.session, bob.client.session
    assert alice_session is not None and bob_session is not None
    assert alice_session._publish_pc is not None and bob_session.receiving_connection is not None

    camera_sender = alice_session._publish_pc.getTransceivers()[1].sender
    keyframe_asked = asyncio.Event()
    force_keyframe = camera_sender._send_keyframe

    def spy() -> None:
        keyframe_asked.set()
        force_keyframe()

    camera_sender._send_keyframe = spy
    receiver = next(
        t.receiver
        for t in bob_session.receiving_connection.getTransceivers()
        if (s := bob_session._consumed.get(t.mid or "")) is not None
        and (s.uid, s.source) == ("alice", "camera")
    )
    # Bob's decoder reports a lost picture for the stream it gets from the SFU.
    await receiver._send_rtcp_pli(receiver.getSynchronizationSources()[-1].source)
    async with asyncio.timeout(MEDIA):
        await keyframe_asked.wait()
    frames = bob.evidence.frames_from("alice")
    await bob.evidence.wait_for(lambda: bob.evidence.frames_from("alice") >= frames + 3, MEDIA)


@pytest.mark.parametrize("media_path", ["full"])
async def test_an_undecoding_participant_counts_frames_without_decoding(join: Join) -> None:
    """Pass-through participants (scenario ``media = "passthrough"``) decode nothing."""
    alice = await join("alice")
    bob = await join("bob", path="passthrough")
    stream = None

    def video_arrives() -> bool:
        nonlocal stream
        stream = bob.evidence.stream("alice", "camera")
        return stream is not None and stream.frames >= 5

    await bob.evidence.wait_for(video_arrives, MEDIA)
    assert stream is not None
    assert stream.marked_frames == 0  # nothing decoded: no picture, no marks
    assert bob.evidence.heard() == {}  # nor tones
    assert not bob.evidence.latencies_ms()
    # Alice, in the same process, still decodes: the choice is per receiver.
    await alice.evidence.wait_for(lambda: alice.evidence.frames_from("bob") >= 3, MEDIA)
