"""The bundled transport: one connection per participant, receive slots filled by
the SFU and named in ``slots``, never a renegotiation for others' comings and goings."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import aiohttp
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from simulator.crowd.metrics import CONNECT_PHASES
from simulator.media import MediaPath
from simulator.media.peer import close_peer_connection, open_peer_connection
from simulator.media.sources import SourceTag
from simulator.protocol import ReceiveSlots, Transport
from simulator.sdk import CallSettingsBuilder
from simulator.server import Backend
from simulator.server.sfu import SfuPeer
from tests.conftest import Join, Participant

pytestmark = pytest.mark.e2e

MEDIA = 20.0


def _sfu(backend: Backend, participant: Participant) -> SfuPeer:
    room = backend.rooms.get("s1")
    session = participant.client.session
    assert room is not None and session is not None and session.me is not None
    peer = room.participants[session.me.participant_id].sfu
    assert isinstance(peer, SfuPeer)
    return peer


async def test_others_joining_and_leaving_never_renegotiate_and_the_description_stays(
    join: Join, backend: Backend
) -> None:
    alice = await join("alice", path="lean")
    bob = await join("bob", path="lean")
    await alice.evidence.wait_for(
        lambda: "bob" in alice.evidence.heard() and alice.evidence.frames_from("bob") >= 5, MEDIA
    )
    peer = _sfu(backend, alice)
    assert peer.bundled and peer.subscribe_mlines == 7  # 3 audio + 3 video + 1 screen slots
    size = peer.description_bytes
    carol = await join("carol", path="lean")
    bob.client.start_screen_share()
    await alice.evidence.wait_for(lambda: alice.evidence.frames_from("bob", "screen") >= 3, MEDIA)
    bob.client.end_session()
    await alice.recorder.wait_for("on_user_left")
    dave = await join("dave", path="lean")
    await alice.evidence.wait_for(
        lambda: {"carol", "dave"} <= set(alice.evidence.heard()) and alice.evidence.frames_from("dave") >= 5,
        MEDIA,
    )
    assert peer.negotiations == 0 and peer.description_bytes == size and peer.subscribe_mlines == 7
    assert peer.slot_changes >= 4  # bob; carol; bob's screen; bob gone (and dave, maybe with it)
    assert alice.evidence.stream("bob", "camera") is None and alice.evidence.stream("bob", "screen") is None
    stream = alice.evidence.stream("dave", "camera")
    assert stream is not None and stream.last_tag is not None
    assert SourceTag.unpack(stream.last_tag)[0] == 4  # dave's picture on the slot bob had
    await carol.evidence.wait_for(lambda: {"alice", "dave"} <= set(carol.evidence.heard()), MEDIA)
    await dave.evidence.wait_for(lambda: dave.evidence.frames_from("carol") >= 3, MEDIA)


async def test_a_slot_goes_to_who_speaks_when_there_are_more_streams_than_slots(join: Join) -> None:
    """One audio and one video slot, two others: the one speaking has both, the other none."""
    muted = lambda: CallSettingsBuilder().start_with_audio_muted(True)  # noqa: E731
    alice = await join("alice", path="lean", receive_slots=ReceiveSlots(audio=1, video=1, screen=0))
    bob = await join("bob", path="lean", builder=muted())
    await alice.evidence.wait_for(lambda: alice.evidence.frames_from("bob") >= 3, MEDIA)  # the only one
    carol = await join("carol", path="lean")  # speaking: she takes the slots from bob, who is silent
    await alice.evidence.wait_for(
        lambda: "carol" in alice.evidence.heard() and alice.evidence.stream("bob", "camera") is None, MEDIA
    )
    await alice.evidence.wait_for(lambda: alice.evidence.frames_from("carol") >= 3, MEDIA)
    assert alice.evidence.stream("bob", "mic") is None
    carol.client.mute_audio(True)
    bob.client.mute_audio(False)
    await alice.evidence.wait_for(
        lambda: "bob" in alice.evidence.heard() and alice.evidence.stream("carol", "camera") is None, MEDIA
    )
    frames = alice.evidence.frames_from("bob")
    await alice.evidence.wait_for(lambda: alice.evidence.frames_from("bob") >= frames + 3, MEDIA)


@pytest.mark.parametrize("media_path", ["full", "lean"])
async def test_split_and_bundled_participants_share_a_call(join: Join) -> None:
    alice = await join("alice", transport="split")
    bob = await join("bob")
    for me, other in ((alice, "bob"), (bob, "alice")):
        await me.evidence.wait_for(
            lambda me=me, other=other: other in me.evidence.heard() and me.evidence.frames_from(other) >= 3,
            MEDIA,
        )


async def _offer(slots: list[tuple[str, str]]) -> tuple[RTCPeerConnection, str]:
    """A bundled publish offer: mic, camera, screen, then ``slots`` as (kind, direction)."""
    pc = open_peer_connection()
    for kind in ("audio", "video", "video"):
        pc.addTransceiver(kind, direction="sendonly")
    for kind, direction in slots:
        pc.addTransceiver(kind, direction=direction)
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


async def test_a_bundled_publish_is_held_to_its_slots_and_told_who_fills_them(
    join: Join, backend: Backend
) -> None:
    """From docs/signalling.md alone: shapes refused by name, a corrected offer answered with an
    SSRC per slot, then ``slots`` naming whoever joins."""
    user = backend.store.user_for_auth_token(backend.provision_user("pat", "Pat"))
    assert user is not None
    good = [("audio", "recvonly"), ("video", "recvonly")]
    offers = [
        await _offer([]),  # no slot m-lines
        await _offer([("audio", "sendonly"), ("video", "sendonly")]),  # slots that would send
        await _offer(good),
    ]
    receive = {"audio": 1, "video": 1, "screen": 0}
    try:
        async with aiohttp.ClientSession() as http, http.ws_connect(backend.ws_url) as ws:
            await ws.send_str(
                json.dumps({"type": "join", "token": backend.tokens.issue(user, "s1"), "sessionId": "s1"})
            )
            assert json.loads((await ws.receive(timeout=10)).data)["type"] == "joined"

            async def publish(sdp: str, slots: object) -> dict[str, Any]:
                await ws.send_str(json.dumps({"type": "publish", "sdp": sdp, "receive": slots}))
                return json.loads((await ws.receive(timeout=20)).data)  # type: ignore[no-any-return]

            too_many = await publish(offers[2][1], {"audio": 17})
            assert (too_many["code"], too_many["fatal"]) == ("ERR_MESSAGE_INVALID", False)
            assert "receive.audio" in too_many["message"]
            unknown = await publish(offers[2][1], {"audio": 1, "speakers": 2})
            assert unknown["code"] == "ERR_MESSAGE_INVALID"
            shape = await publish(offers[0][1], receive)
            assert shape["code"] == "ERR_NEGOTIATION_FAILED"
            assert shape["message"] == (
                "publish offer must have m-lines audio (mic), video (camera), video (screen), then 1 audio,"
                " 1 video and 0 video (screen) receive m-lines (recvonly)"
            )
            sending = await publish(offers[1][1], receive)
            assert sending["message"] == "publish offer refused: receive m-lines must be recvonly"
            answer = await publish(offers[2][1], receive)
            assert answer["type"] == "publish-answer"
            pc = offers[2][0]
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
            sections = answer["sdp"].split("\r\nm=")[1:]
            assert [s.split(" ")[0] for s in sections] == ["audio", "video", "video", "audio", "video"]
            assert all("a=sendonly" in s and "a=ssrc:" in s for s in sections[3:])
            # One SSRC a slot: the SFU resends on it (no RTX stream), and negotiates no extension.
            assert all(s.count("a=ssrc:") == 1 and "a=extmap" not in s for s in sections[3:])
            mids = [t.mid for t in pc.getTransceivers()]
            await join("bob", path="lean")
            while (message := json.loads((await ws.receive(timeout=20)).data))["type"] != "slots":
                assert message["type"] in ("participant-joined", "participant-state"), message
            assert {mid: (info["uid"], info["source"]) for mid, info in message["slots"].items()} == {
                mids[3]: ("bob", "mic"),
                mids[4]: ("bob", "camera"),
            }
    finally:
        for pc, _ in offers:
            await close_peer_connection(pc)


@pytest.mark.parametrize(("path", "transport"), [("lean", "bundled"), ("lean", "split"), ("full", "bundled")])
async def test_a_connect_says_where_its_time_went(join: Join, path: MediaPath, transport: Transport) -> None:
    """answer · ICE · DTLS add up to createOffer → connected, on an ORTC transport and a peer
    connection alike (a slow join under load then shows which side was slow)."""
    session = (await join("alice", path=path, transport=transport)).client.session
    assert session is not None and session.connect_ms is not None
    phases = session.connect_phases
    assert phases is not None
    assert phases.answer_ms > 0 and phases.ice_ms > 0 and phases.dtls_ms > 0
    assert phases.answer_ms + phases.ice_ms + phases.dtls_ms == pytest.approx(session.connect_ms)
    assert {f"{field.name.removesuffix('_ms')}" for field in dataclasses.fields(phases)} == set(
        CONNECT_PHASES
    )


async def test_a_lean_session_left_anywhere_in_its_join_leaves_nothing_open(join: Join) -> None:
    """The transport a lean client gathers while it joins is closed wherever the join is cut:
    before, during or after its gathering (the leak check counts the sockets)."""
    for turns in range(0, 51, 3):  # 17 joins: the fixture has a tone for 18
        participant = await join(f"p{turns}", path="lean", wait=False)
        session = participant.client.session
        assert session is not None
        for _ in range(turns):
            await asyncio.sleep(0)  # not a wait: where the join is cut, one turn of the loop apart
        participant.client.end_session()
        async with asyncio.timeout(15):
            await session.closed.wait()
