"""The media floor the join benchmark reads each ramp against (benchmarks.floor)."""

from __future__ import annotations

import math

import pytest

from benchmarks.floor import SUBSCRIBERS, MediaFloor, measure_floor, participant_second
from simulator.media import library
from simulator.media.rtp import header


def test_a_participant_second_is_what_the_lean_sender_publishes_in_a_second() -> None:
    packets = participant_second()
    audio, video = library.audio_stream(450), library.video_stream()
    frames = round(1 / video.period)
    video_packets = sum(len(frame.payloads) for frame in video.frames[:frames])
    assert len(packets) == round(1 / audio.period) + video_packets
    # Opus at 20 ms is 50 packets a second; qvga video adds more than one a frame.
    assert round(1 / audio.period) == 50
    assert video_packets >= frames


def test_seconds_numbered_apart_never_repeat_an_srtp_index() -> None:
    def indexes(packets: list[bytes]) -> set[tuple[int, int]]:
        return {(ssrc, sequence) for _, _, sequence, _, ssrc in map(header, packets)}

    first, second = participant_second(0), participant_second(1000)
    assert len(indexes(first)) == len(first)
    assert not indexes(first) & indexes(second)


def test_the_shares_follow_from_the_per_packet_costs() -> None:
    floor = MediaFloor(
        packets_per_second=100, send_us=10.0, receive_us=5.0, receive_clear_us=2.0, send_waking_us=20.0
    )
    # The SFU: each packet in and decrypted once, out to three room-mates.
    assert floor.sfu_share == pytest.approx(100 * (5.0 + SUBSCRIBERS * 10.0) / 1e6)
    assert floor.sfu_waking_share == pytest.approx(100 * (5.0 + SUBSCRIBERS * 20.0) / 1e6)
    # The generator: its own packets out, three room-mates' in, headers read in the clear.
    assert floor.generator_share == pytest.approx(100 * (10.0 + SUBSCRIBERS * 2.0) / 1e6)
    data = floor.to_data()
    assert data["sfu_participants_per_core"] == pytest.approx(1 / floor.sfu_share, rel=0.01)
    assert data["generator_participants_per_core"] == pytest.approx(1 / floor.generator_share, rel=0.01)


def test_the_floor_is_measured_on_this_machine() -> None:
    floor = measure_floor()
    assert floor.packets_per_second == len(participant_second())
    for cost in (floor.send_us, floor.receive_us, floor.receive_clear_us, floor.send_waking_us):
        assert math.isfinite(cost)
        assert cost > 0
