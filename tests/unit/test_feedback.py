"""The SFU's reports to a publisher: loss per stream, and a REMB that follows loss."""

from __future__ import annotations

from aiortc.rtp import RtcpPsfbPacket, RtcpRrPacket, unpack_remb_fci

from simulator.media.rtp import parse_rtcp
from simulator.server.feedback import LOSS_HIGH, REMB_CEILING, REMB_GROWTH, PublisherFeedback


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _report(feedback: PublisherFeedback) -> tuple[RtcpRrPacket, int | None]:
    packets = parse_rtcp(feedback.report())
    rr = next(p for p in packets if isinstance(p, RtcpRrPacket))
    remb = next((p for p in packets if isinstance(p, RtcpPsfbPacket)), None)
    return rr, None if remb is None else unpack_remb_fci(remb.fci)[0]


def test_reports_count_loss_per_interval_across_a_wrap() -> None:
    clock = Clock()
    feedback = PublisherFeedback({10: "audio", 20: "video"}, clock, remb=True)
    for seq in [*range(65530, 65536), *range(10)]:  # 16 sent across the wrap
        if seq != 2:  # one lost
            feedback.on_rtp(20, seq, 1000)
    clock.now += 1.0
    rr, remb = _report(feedback)
    (block,) = rr.reports  # the audio stream sent nothing: no block for it
    assert block.ssrc == 20
    assert block.packets_lost == 1
    assert block.fraction_lost == (1 << 8) // 16
    assert block.highest_sequence == 65536 + 9  # one cycle, then 9
    assert remb == REMB_CEILING  # 6 % lost is not congestion: what a camera wants is allowed


def test_remb_falls_on_loss_to_what_arrived_and_grows_back() -> None:
    clock = Clock()
    feedback = PublisherFeedback({20: "video"}, clock, remb=True)
    seq = 0
    for n in range(100):  # a second of 100 packets of 1,000 bytes, 20 % lost: 640 kb/s arrive
        if n % 5:
            feedback.on_rtp(20, seq, 1000)
        seq += 1
    clock.now += 1.0
    assert LOSS_HIGH < 0.2
    _, remb = _report(feedback)
    assert remb is not None and abs(remb - 0.85 * 640_000) < 1_000
    for _ in range(3):
        for _ in range(100):
            feedback.on_rtp(20, seq, 1000)
            seq += 1
        clock.now += 1.0
        _, grown = _report(feedback)
        assert grown is not None and grown >= min(REMB_CEILING, remb * REMB_GROWTH) * 0.99
        remb = grown


def test_no_remb_for_a_publisher_that_did_not_negotiate_it() -> None:
    feedback = PublisherFeedback({20: "video"}, Clock(), remb=False)
    feedback.on_rtp(20, 1, 100)
    _, remb = _report(feedback)
    assert remb is None
