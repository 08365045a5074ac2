"""The three media paths in one call, the lean path's own effects, and bad datagrams."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest

from simulator.media.ice import ice_connection
from simulator.media.lean import LeanSource
from simulator.media.sources import PreEncodedTrack
from simulator.server import Backend
from simulator.server import sfu as sfu_module
from tests.conftest import Join

pytestmark = pytest.mark.e2e
MEDIA = 20.0


async def test_full_passthrough_and_lean_participants_share_a_call(join: Join) -> None:
    full = await join("alice", path="full")
    passthrough = await join("bob", path="passthrough")
    lean = await join("carol", path="lean")
    assert full.client.session is not None and lean.client.session is not None
    assert isinstance(lean.client.session.mic, LeanSource)
    assert passthrough.client.session is not None
    assert isinstance(passthrough.client.session.camera, PreEncodedTrack)

    def receives_from_both(p: object, others: tuple[str, str]) -> bool:
        evidence = p.evidence  # type: ignore[attr-defined]
        return all(
            (s := evidence.stream(uid, "camera")) is not None and s.frames >= 10 and uid in evidence.heard()
            for uid in others
        )

    # The decoding participant hears the library's tones and decodes its pictures (their marks too).
    await full.evidence.wait_for(lambda: receives_from_both(full, ("bob", "carol")), MEDIA)
    assert full.evidence.frames_from("carol") > 0
    # The lean one counts aiortc's packets as well as its own kind's.
    await lean.evidence.wait_for(lambda: receives_from_both(lean, ("alice", "bob")), MEDIA)
    # Marked packets come from the lean path only: alice (aiortc sender) gives frames, no marks.
    alice_seen = lean.evidence.stream("alice", "camera")
    assert alice_seen is not None
    assert alice_seen.marked_frames == 0
    await passthrough.evidence.wait_for(
        lambda: all(
            (s := passthrough.evidence.stream(u, "camera")) and s.frames >= 10 for u in ("alice", "carol")
        ),
        MEDIA,
    )


async def test_a_decoders_picture_loss_makes_a_lean_publisher_jump_to_a_keyframe(join: Join) -> None:
    lean = await join("alice", path="lean")
    full = await join("bob", path="full")
    await full.evidence.wait_for(lambda: full.evidence.frames_from("alice") >= 3, MEDIA)
    assert lean.client.session is not None and full.client.session is not None
    camera = lean.client.session.camera
    assert isinstance(camera, LeanSource)
    asked = asyncio.Event()
    jump = camera.on_keyframe_request

    def spy() -> None:
        asked.set()
        jump()

    camera.on_keyframe_request = spy  # type: ignore[method-assign]
    pc = full.client.session.receiving_connection
    assert pc is not None
    receiver = next(
        t.receiver
        for t in pc.getTransceivers()
        if (s := full.client.session._consumed.get(t.mid or "")) is not None
        and (s.uid, s.source) == ("alice", "camera")
    )
    await receiver._send_rtcp_pli(receiver.getSynchronizationSources()[-1].source)
    await asyncio.wait_for(asked.wait(), MEDIA)
    assert camera.keyframe_requests >= 1
    frames = full.evidence.frames_from("alice")
    await full.evidence.wait_for(lambda: full.evidence.frames_from("alice") >= frames + 3, MEDIA)


async def test_garbage_datagrams_at_the_sfu_harm_nobody(join: Join) -> None:
    """Forged SRTP, short packets and noise at the SFU's media socket: dropped, media goes on."""
    alice, bob = await join("alice", path="lean"), await join("bob", path="lean")
    await bob.evidence.wait_for(lambda: bob.evidence.frames_from("alice") >= 5, MEDIA)
    assert alice.client.session is not None
    connection = ice_connection(alice.client.session._transport)  # bundled lean: an ORTC transport
    assert connection is not None
    sfu_address = connection._nominated[1].remote_addr
    junk = [
        b"\x80",  # too short for a header
        b"\x80\x60" + os.urandom(40),  # an RTP header with a forged body: fails SRTP authentication
        b"\x80\xc8" + os.urandom(40),  # forged RTCP
        os.urandom(200),
        b"\x16\xfe\xfd" + os.urandom(30),  # not a DTLS record of this association
    ]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for _ in range(50):
            for datagram in junk:
                sender.sendto(datagram, sfu_address)
    frames = bob.evidence.frames_from("alice")
    await bob.evidence.wait_for(lambda: bob.evidence.frames_from("alice") >= frames + 10, MEDIA)
    await alice.evidence.wait_for(lambda: "bob" in alice.evidence.heard(), MEDIA)


async def test_a_packet_lost_before_the_sfu_is_recovered_from_the_publisher(
    join: Join, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hole in what the SFU got: the subscriber's NACK goes on to the publisher, whose RTX
    answer the SFU unwraps and forwards (the NACK path the lean loopback never needs)."""
    await join("alice")
    bob = await join("bob")
    await bob.evidence.wait_for(lambda: bob.evidence.frames_from("alice") >= 3, MEDIA)
    room = backend.rooms.get("s1")
    assert room is not None
    publisher = next(p for p in room if p.record.uid == "alice").sfu
    assert publisher is not None
    camera = publisher.forwarders["camera"]
    dropped: set[int] = set()
    recovered = asyncio.Event()
    forward = camera.forward

    def lossy(clear: bytes) -> None:
        sequence = int.from_bytes(clear[2:4], "big")
        if len(dropped) < 3 and sequence % 7 == 0 and sequence not in dropped:
            dropped.add(sequence)  # lost once, on the way in
            return
        forward(clear)

    unwrap = sfu_module.unwrap_retransmission

    def spy(packet: bytes, ssrc: int) -> bytes | None:
        original = unwrap(packet, ssrc)
        if original is not None and int.from_bytes(original[2:4], "big") in dropped:
            recovered.set()
        return original

    monkeypatch.setattr(camera, "forward", lossy)
    monkeypatch.setattr(sfu_module, "unwrap_retransmission", spy)
    await asyncio.wait_for(recovered.wait(), MEDIA)
    frames = bob.evidence.frames_from("alice")
    await bob.evidence.wait_for(lambda: bob.evidence.frames_from("alice") >= frames + 5, MEDIA)
