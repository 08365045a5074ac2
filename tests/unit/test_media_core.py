"""The media core's parts on their own: the library, RTP helpers, the forwarder, the lean receiver."""

from __future__ import annotations

import itertools
import struct
from typing import Any

import av
import numpy as np
import pytest
from aiortc.rtp import RtcpPacket, RtcpPsfbPacket, RtcpRtpfbPacket, RtpPacket, wrap_rtx
from hypothesis import given
from hypothesis import strategies as st

from simulator.crowd.metrics import Metrics
from simulator.crowd.steady import steady_state
from simulator.media.analysers import MediaEvidence, ReceivedStream
from simulator.media.lean import LeanReceiver
from simulator.media.library import LIBRARY_TAG, audio_stream, video_stream
from simulator.media.marks import NO_CAPTURE_TIME, Mark, read_mark
from simulator.media.rtp import (
    build_rtp,
    header,
    payload_offset,
    read_padding_mark,
    unwrap_retransmission,
    vp8_keyframe_start,
)
from simulator.server.forwarder import (
    FRAME_TICKS,
    NACK_RATE,
    NACK_REPEAT,
    PLI_INTERVAL,
    RESEND_RATE,
    Forwarder,
    Outlet,
)

VP8 = 96


# --- the library ---------------------------------------------------------------------------


def test_the_video_loop_has_a_keyframe_index_and_jumps_forward() -> None:
    stream = video_stream("qvga")
    assert stream.keyframes[0] == 0
    assert all(stream.frames[i].keyframe for i in stream.keyframes)
    assert sum(f.keyframe for f in stream.frames) == len(stream.keyframes)
    assert stream.next_keyframe(1) == stream.keyframes[1]
    assert stream.next_keyframe(stream.keyframes[1]) == stream.keyframes[1]
    assert stream.next_keyframe(len(stream.frames) - 1) == 0  # wraps round the loop
    assert video_stream("qvga") is stream  # encoded once per process


def test_library_frames_decode_and_carry_their_marks() -> None:
    stream = video_stream("qvga")
    decoder = av.CodecContext.create("libvpx", "r")
    marks = []
    for frame in stream.frames[:20]:
        for picture in decoder.decode(av.Packet(frame.data)):
            marks.append(read_mark(np.asarray(picture.to_ndarray(format="gray"), dtype=np.uint8)))
    assert [m.counter for m in marks if m is not None] == list(range(20))
    assert {(m.capture_ms, m.tag) for m in marks if m is not None} == {(NO_CAPTURE_TIME, LIBRARY_TAG)}


def test_every_payload_fits_a_packet_and_keyframes_start_with_one() -> None:
    stream = video_stream("qvga")
    for frame in stream.frames:
        assert all(len(p) <= 1300 for p in frame.payloads)
        packet = build_rtp(VP8, False, 1, 0, 1, frame.payloads[0])
        assert vp8_keyframe_start(packet, 12) == frame.keyframe
        assert not any(vp8_keyframe_start(build_rtp(VP8, False, 1, 0, 1, p), 12) for p in frame.payloads[1:])


def test_audio_loops_are_a_tone_or_silence() -> None:
    tone, silence = audio_stream(450), audio_stream(0)
    assert len(tone.frames) == 50
    assert tone.period == pytest.approx(0.02)
    assert min(len(f.data) for f in tone.frames) > 100
    assert max(len(f.data) for f in silence.frames) < 16


# --- RTP helpers -----------------------------------------------------------------------------


def test_a_padding_mark_reads_back_and_is_invisible_to_a_depacketiser() -> None:
    mark = Mark(7, 123456, 0x41)
    packet = build_rtp(VP8, True, 65535, 2**32 - 1, 0xABCD, b"payload", mark)
    assert header(packet)[2:] == (65535, 2**32 - 1, 0xABCD)
    assert read_padding_mark(packet) == mark
    parsed = RtpPacket.parse(packet)
    assert parsed.payload == b"payload"  # aiortc strips the padding: decoders never see the mark
    assert parsed.marker == 1
    assert read_padding_mark(build_rtp(VP8, True, 1, 1, 1, b"payload")) is None


def test_a_damaged_padding_mark_is_refused() -> None:
    packet = bytearray(build_rtp(VP8, True, 1, 1, 1, b"payload", Mark(1, 2, 3)))
    packet[-10] ^= 0xFF
    assert read_padding_mark(bytes(packet)) is None


def test_payload_offset_skips_csrcs_and_extensions() -> None:
    packet = RtpPacket(payload_type=VP8, sequence_number=1, timestamp=2, ssrc=3, payload=b"xyz")
    packet.csrc = [9, 10]
    plain = packet.serialize()
    assert plain[payload_offset(plain) :] == b"xyz"
    with_extension = bytearray(plain)
    with_extension[0] |= 0x10
    offset = 12 + 8
    with_extension[offset:offset] = struct.pack("!HH", 0xBEDE, 1) + b"\x10\x01\x00\x00"
    assert bytes(with_extension)[payload_offset(bytes(with_extension)) :] == b"xyz"


def test_a_retransmission_unwraps_to_the_original_packet() -> None:
    original = RtpPacket(
        payload_type=VP8, sequence_number=4242, timestamp=90_000, ssrc=0x1111, payload=b"frame"
    )
    original.marker = 1
    rtx = wrap_rtx(original, payload_type=97, sequence_number=7, ssrc=0x2222).serialize()
    unwrapped = unwrap_retransmission(rtx, 0x1111)
    assert unwrapped is not None
    assert header(unwrapped)[2:] == (4242, 90_000, 0x1111)
    assert unwrapped[payload_offset(unwrapped) :] == b"frame"
    assert unwrap_retransmission(build_rtp(97, False, 1, 1, 1, b"x"), 1) is None  # too short for an OSN


# --- the forwarder ---------------------------------------------------------------------------


class RecordingLink:
    """The RtpLink surface, recording instead of encrypting and sending."""

    def __init__(self) -> None:
        self.rtp: list[bytes] = []
        self.rtcp: list[Any] = []
        self.resent: list[bytes] = []

    def send_rtp(self, packet: bytes) -> bytes:
        self.rtp.append(packet)
        return b"protected:" + packet

    def send_protected(self, data: bytes) -> None:
        self.resent.append(data)

    def send_rtcp(self, packet: bytes) -> None:
        self.rtcp.extend(RtcpPacket.parse(packet))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _video(seq: int, *, key: bool, first: bool = True) -> bytes:
    descriptor = b"\x10" if first else b"\x00"
    body = (b"\x00" if key else b"\x01") + b"frame"
    return build_rtp(VP8, True, seq & 0xFFFF, seq * 3000, 0x1111, descriptor + body)


def _forwarder() -> tuple[Forwarder, Outlet, RecordingLink, RecordingLink, Clock]:
    publisher, subscriber, clock = RecordingLink(), RecordingLink(), Clock()
    forwarder = Forwarder("video", 0x1111, lambda: publisher, clock)  # type: ignore[arg-type,return-value]
    outlet = Outlet("video", 0x2222, 100, lambda: subscriber, clock)  # type: ignore[arg-type,return-value]
    forwarder.attach(outlet)
    return forwarder, outlet, publisher, subscriber, clock


def test_a_new_video_outlet_starts_on_a_keyframe_and_asks_for_one() -> None:
    forwarder, _, publisher, subscriber, _ = _forwarder()
    assert [type(p) for p in publisher.rtcp] == [RtcpPsfbPacket]  # PLI on attach
    assert publisher.rtcp[0].media_ssrc == 0x1111
    forwarder.forward(_video(10, key=False))
    assert subscriber.rtp == []
    forwarder.forward(_video(11, key=True))
    forwarder.forward(_video(12, key=False, first=False))
    sent = [header(p) for p in subscriber.rtp]
    assert [s[4] for s in sent] == [0x2222, 0x2222]  # the subscriber's SSRC
    assert [s[1] & 0x7F for s in sent] == [100, 100]  # the subscriber's payload type
    assert (sent[1][2] - sent[0][2]) & 0xFFFF == 1  # continuous numbering
    assert (sent[1][3] - sent[0][3]) & 0xFFFFFFFF == 3000  # timestamps keep their spacing
    assert subscriber.rtp[0][12:] == _video(11, key=True)[12:]  # the payload untouched


def test_keyframe_requests_are_rate_limited() -> None:
    forwarder, _, publisher, _, clock = _forwarder()
    for _ in range(5):
        forwarder.request_keyframe()
    assert len(publisher.rtcp) == 1
    clock.now += PLI_INTERVAL + 0.001
    forwarder.forward(_video(1, key=False))  # still waiting: asks again, now allowed
    assert len(publisher.rtcp) == 2


def test_a_nack_is_served_from_history_and_the_rest_asked_of_the_publisher() -> None:
    forwarder, outlet, publisher, subscriber, _ = _forwarder()
    forwarder.forward(_video(500, key=True))
    forwarder.forward(_video(501, key=False))
    first = header(subscriber.rtp[0])[2]
    forwarder.on_nack(outlet, [first, (first + 5) & 0xFFFF])
    assert subscriber.resent == [b"protected:" + subscriber.rtp[0]]
    nacks = [p for p in publisher.rtcp if isinstance(p, RtcpRtpfbPacket)]
    assert [n.lost for n in nacks] == [[505]]  # in the publisher's own numbers
    assert nacks[0].media_ssrc == 0x1111


def _nacked(link: RecordingLink) -> list[int]:
    return [seq for p in link.rtcp if isinstance(p, RtcpRtpfbPacket) for seq in p.lost]


def test_a_nack_flood_asks_the_publisher_within_a_budget_and_each_packet_once() -> None:
    forwarder, outlet, publisher, subscriber, clock = _forwarder()
    forwarder.forward(_video(1000, key=True))
    base = header(subscriber.rtp[0])[2]

    # 50,000 NACKs for packets nobody kept, within one repeat window: the publisher is asked
    # for the burst at most, each packet once.
    def flood(rounds: int, step: float) -> None:
        for n in range(rounds):
            forwarder.on_nack(outlet, [(base + 1 + (n * 100 + k) % 30000) & 0xFFFF for k in range(100)])
            clock.now += step

    flood(500, NACK_REPEAT / 1000)
    asked = _nacked(publisher)
    assert 0 < len(asked) <= NACK_RATE * 1.1
    assert len(asked) == len(set(asked))
    # Kept up for a whole second, the flood still gets no more than the rate.
    flood(1000, 0.001)
    assert len(_nacked(publisher)) <= 2.2 * NACK_RATE
    # A lost packet asked by two subscribers at once goes to the publisher once; after the
    # window (and with budget back) it may be asked again.
    clock.now += 2.0
    before = len(_nacked(publisher))
    forwarder.on_nack(outlet, [(base + 7) & 0xFFFF])
    forwarder.on_nack(outlet, [(base + 7) & 0xFFFF])
    assert _nacked(publisher)[before:] == [1007]
    clock.now += NACK_REPEAT + 0.001
    forwarder.on_nack(outlet, [(base + 7) & 0xFFFF])
    assert _nacked(publisher)[before:] == [1007, 1007]


def test_resends_from_history_are_budgeted_per_outlet() -> None:
    forwarder, outlet, _, subscriber, clock = _forwarder()
    forwarder.forward(_video(1, key=True))
    held = header(subscriber.rtp[0])[2]
    for _ in range(int(RESEND_RATE) * 5):
        forwarder.on_nack(outlet, [held])
    assert len(subscriber.resent) == RESEND_RATE  # a second's worth, not five
    clock.now += 0.5
    forwarder.on_nack(outlet, [held] * int(RESEND_RATE))
    assert len(subscriber.resent) == RESEND_RATE * 1.5


def test_audio_is_forwarded_from_the_first_packet() -> None:
    publisher, subscriber, clock = RecordingLink(), RecordingLink(), Clock()
    forwarder = Forwarder("audio", 5, lambda: publisher, clock)  # type: ignore[arg-type,return-value]
    forwarder.attach(Outlet("audio", 6, 111, lambda: subscriber, clock))  # type: ignore[arg-type,return-value]
    forwarder.forward(build_rtp(111, False, 1, 960, 5, b"opus"))
    assert len(subscriber.rtp) == 1
    assert publisher.rtcp == []  # no keyframes in audio


def test_an_outlet_on_a_reused_slot_carries_on_the_last_streams_numbering() -> None:
    """A reused slot: the subscriber sees one stream on the slot's SSRC, not a jump back."""
    forwarder, first, _, subscriber, clock = _forwarder()
    forwarder.forward(_video(40_000, key=True))
    forwarder.forward(_video(40_001, key=False))
    forwarder.detach(first)
    last_seq, last_ts = header(subscriber.rtp[-1])[2:4]
    other = Forwarder("video", 0x3333, RecordingLink, clock)  # type: ignore[arg-type,return-value]
    second = Outlet("video", 0x2222, 100, lambda: subscriber, clock, follows=first)  # type: ignore[arg-type,return-value]
    other.attach(second)
    other.forward(build_rtp(VP8, True, 7, 123_456, 0x3333, b"\x10\x00frame"))
    seq, timestamp, ssrc = header(subscriber.rtp[-1])[2:5]
    assert ssrc == 0x2222
    assert seq == (last_seq + 1) & 0xFFFF
    assert (timestamp - last_ts) & 0xFFFFFFFF == FRAME_TICKS["video"]


# --- the lean receiver -----------------------------------------------------------------------


def test_the_lean_receiver_counts_loss_frames_and_jitter_from_headers() -> None:
    evidence = MediaEvidence()
    receiver = LeanReceiver(evidence)
    stream = ReceivedStream("p1", "alice", "mic", "audio")
    evidence.add(stream)
    receiver.bind(7, stream)
    for n in [*range(10), *range(12, 20)]:  # 10 and 11 lost
        receiver.on_rtp(build_rtp(111, False, 65530 + n & 0xFFFF, n * 960, 7, bytes(200)), n * 0.02)
    (stats,) = receiver.stats()
    assert stats.packets == 18
    assert stats.lost == 2  # across the sequence wrap
    assert stats.jitter == pytest.approx(0.0, abs=1e-6)  # perfectly paced
    assert stream.frames == 18
    assert stream.last_audible_at is not None


# --- properties ------------------------------------------------------------------------------


@given(
    start=st.integers(0, 0xFFFF),
    steps=st.lists(st.integers(1, 5), min_size=1, max_size=300),
)
def test_an_outlet_keeps_the_publishers_gaps_and_nothing_else(start: int, steps: list[int]) -> None:
    """Whatever the publisher's numbering (wraps, gaps), the subscriber sees the same gaps."""
    _, outlet, _, subscriber, _ = _forwarder()
    sequences = [start]
    for step in steps:
        sequences.append((sequences[-1] + step) & 0xFFFF)
    assert outlet.send(_video(sequences[0], key=True), 12, keyframe=True)
    for seq in sequences[1:]:
        outlet.send(_video(seq, key=False, first=False), 12, keyframe=False)
    sent = [header(p)[2] for p in subscriber.rtp]
    assert [(b - a) & 0xFFFF for a, b in itertools.pairwise(sent)] == steps
    assert {header(p)[4] for p in subscriber.rtp} == {0x2222}


def _sample(worker: int, at: float, joined: int, frames: int, due: int, cpu: float) -> dict[str, Any]:  # noqa: PLR0917 - one row of a series table
    return {
        "worker": worker, "at": at, "joined": joined, "frames_received": frames, "frames_expected": due,
        "packets_received": frames * 2, "packets_lost": 0, "cpu_s": cpu, "lags_ms": [1.0, 2.0],
        "jitter_ms": 1.5, "rss_mib": 100.0,
    }  # fmt: skip


def test_the_steady_window_starts_when_everyone_is_in() -> None:
    metrics = Metrics()
    metrics.workers = [
        {"worker": 0, "participants": 2, "rss_start_mib": 90.0, "rss_steady_mib": 92.0},
        {"worker": 1, "participants": 2, "rss_start_mib": 90.0, "rss_steady_mib": 94.0},
    ]
    metrics.series = [
        _sample(0, 2.0, 1, 10, 10, 1.0),  # ramping: not in the window
        _sample(0, 4.0, 2, 100, 100, 2.0),
        _sample(0, 6.0, 2, 190, 200, 3.0),
        _sample(1, 5.0, 2, 50, 50, 1.0),
        _sample(1, 7.0, 2, 150, 150, 1.5),
    ]
    state = steady_state(metrics, backend_cpu=[(5.0, 10.0), (6.0, 10.5)])
    assert state is not None
    assert state.participants == 4
    assert state.delivery == pytest.approx(190 / 200)  # (90 + 100) / (100 + 100)
    assert state.generator_cpu_share == pytest.approx(0.5 + 0.25)
    assert state.generator_per_core == pytest.approx(4 / 0.75)
    assert state.backend_cpu_share == pytest.approx(0.5)
    assert state.rss_per_participant_mib == pytest.approx(1.5)
    assert state.seconds == 2.0
    # One sample with everyone in is not a window.
    metrics.series = metrics.series[:2] + metrics.series[3:]
    assert steady_state(metrics, backend_cpu=[]) is None
