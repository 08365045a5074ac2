"""A participant's network made worse, end to end: what the others and the SFU see.

The shapers sit under aioice (simulator/media/impairment.py), so real STUN, DTLS, RTP and RTCP
go through them; the figures are read where a user would read them: receive statistics,
end-to-end latency, the SFU's retransmissions.
"""

from __future__ import annotations

import statistics

import pytest

from simulator.media.impairment import Direction, Impairment, Schedule
from simulator.media.lean import LeanSource
from simulator.server import Backend
from tests.conftest import Join

pytestmark = pytest.mark.e2e
MEDIA = 30.0


def _down(**settings: float) -> Schedule:
    return Schedule(base=Direction(down=Impairment(**settings)))


async def test_downlink_loss_is_what_the_receiver_measures(join: Join) -> None:
    await join("alice", path="lean")
    bob = await join("bob", path="lean", network=_down(loss=0.05))
    assert bob.client.session is not None

    def received() -> int:
        receiver = bob.client.session._lean_receiver  # type: ignore[union-attr]
        return 0 if receiver is None else sum(s.packets for s in receiver.stats())

    await bob.evidence.wait_for(lambda: received() >= 1_200, MEDIA)
    stats = await bob.client.session.receive_stats()
    loss = stats.lost / (stats.lost + stats.packets)
    assert loss == pytest.approx(0.05, abs=0.02)
    shaper = bob.client.session.shaping
    assert shaper is not None and shaper.down.dropped > 0 and shaper.up.dropped == 0


async def test_uplink_delay_is_in_the_others_latency(join: Join) -> None:
    alice = await join("alice")
    await join("bob", network=Schedule(base=Direction(up=Impairment(delay_ms=150, jitter_ms=10))))
    await alice.evidence.wait_for(lambda: alice.evidence.frames_from("bob") >= 20, MEDIA)
    stream = alice.evidence.stream("bob", "camera")
    assert stream is not None
    median = statistics.median(stream.latencies_ms[5:])
    assert 150 <= median < 400


async def test_the_sfu_recovers_a_lossy_downlink_with_retransmissions(join: Join, backend: Backend) -> None:
    await join("alice")
    bob = await join("bob", network=_down(loss=0.05))
    await bob.evidence.wait_for(lambda: bob.evidence.frames_from("alice") >= 60, MEDIA)
    room = backend.rooms.get("s1")
    assert room is not None and bob.client.session is not None and bob.client.session.me is not None
    sfu = room.participants[bob.client.session.me.participant_id].sfu
    assert sfu is not None
    resent = sum(s.outlet.resent for s in sfu._subscriptions.values() if s.outlet is not None)
    assert resent > 0  # bob's NACKs were answered from the SFU's history


async def test_a_lossy_uplink_is_mended_from_the_publisher_and_newcomers_still_start(
    join: Join, backend: Backend
) -> None:
    alice = await join(
        "alice", path="lean", network=Schedule(base=Direction(up=Impairment(loss=0.08, burst=3)))
    )
    bob = await join("bob")  # joins a publisher whose keyframes arrive torn now and then
    await bob.evidence.wait_for(lambda: bob.evidence.frames_from("alice") >= 40, MEDIA)
    assert alice.client.session is not None and alice.client.session.me is not None
    room = backend.rooms.get("s1")
    assert room is not None
    sfu = room.participants[alice.client.session.me.participant_id].sfu
    assert sfu is not None
    counts = sfu.media_counts()
    # What never reached the SFU was asked of Alice (bob's NACKs, relayed), and keyframes were
    # asked until one arrived whole for bob's new outlet.
    assert counts["nacks_asked"] > 0
    assert counts["keyframes_asked"] >= 1
    camera = alice.client.session.camera
    assert isinstance(camera, LeanSource) and camera.keyframe_requests >= 1
