"""The media floor: what the kernel and SRTP alone cost lean participants on this machine.

Every forwarded packet costs the SFU a ``recvfrom``, an SRTP unprotect, and per subscriber
an SRTP protect and a ``sendto``; on loopback the ``sendto`` also pays the delivery into the
receiving socket. No Python around those calls can make them cheaper, so their sum is a
lower bound on the share of a core that N participants need, whatever the code. The ramps
of :mod:`benchmarks.joins` are read against it: a size whose floor already fills most of a
core cannot also take joins fast.

Measured with bare loops: one second of a lean participant's media (the library's Opus and
VP8 ``qvga`` packets, as the lean sender builds them), protected and sent to a socket of the
same process in batches small enough for its receive buffer, then received and unprotected.
The floor leaves out RTCP, the lean receiver's sampled decryptions and the event loop's own
work per datagram. It also leaves out wake-ups: in a run, a datagram for a process asleep in
``epoll_wait`` on the other core wakes it, and the sender pays for that.
:attr:`MediaFloor.send_waking_us` measures a send that wakes its receiver every time, the
other bound.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import socket
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Final

import pylibsrtp

from simulator.media import library
from simulator.media.rtp import build_rtp
from simulator.media.tones import TONES_HZ

__all__ = ["SUBSCRIBERS", "MediaFloor", "measure_floor", "participant_second"]

SUBSCRIBERS: Final = 3
"""Rooms of 4, as in the ramps and the capacity search: each packet goes to three room-mates."""
BATCH: Final = 48
"""Packets sent before the receiving socket is drained: well within its default buffer."""
ROUNDS: Final = 30
WAKING_ROUNDS: Final = 10
"""Passes of one second's packets sent to the receiver on the other core (the least counts)."""
KEY: Final = bytes(range(30))


@dataclass(frozen=True, slots=True)
class MediaFloor:
    """Per-packet costs in µs, and from them the least share of a core per participant."""

    packets_per_second: int
    """What one participant publishes a second."""
    send_us: float
    """SRTP protect + ``sendto`` on loopback (the delivery included)."""
    receive_us: float
    """``recvfrom`` + SRTP unprotect: the SFU decrypts every packet it forwards."""
    receive_clear_us: float
    """``recvfrom`` only: the lean receiver reads RTP headers in the clear."""
    send_waking_us: float
    """:attr:`send_us` to a process on another core that sleeps for each packet."""

    @property
    def sfu_share(self) -> float:
        """Of a core, per participant: each packet in once, out to every room-mate."""
        return self.packets_per_second * (self.receive_us + SUBSCRIBERS * self.send_us) / 1e6

    @property
    def sfu_waking_share(self) -> float:
        """:attr:`sfu_share` with every send waking its receiver: the other bound."""
        return self.packets_per_second * (self.receive_us + SUBSCRIBERS * self.send_waking_us) / 1e6

    @property
    def generator_share(self) -> float:
        """Of a core, per participant: its own packets out, its room-mates' in."""
        return self.packets_per_second * (self.send_us + SUBSCRIBERS * self.receive_clear_us) / 1e6

    def to_data(self) -> dict[str, Any]:
        """The figures for a benchmark's JSON."""
        return {
            "packets_per_participant_second": self.packets_per_second,
            "send_us": round(self.send_us, 2),
            "receive_us": round(self.receive_us, 2),
            "receive_clear_us": round(self.receive_clear_us, 2),
            "send_waking_us": round(self.send_waking_us, 2),
            "sfu_participants_per_core": round(1 / self.sfu_share, 1),
            "generator_participants_per_core": round(1 / self.generator_share, 1),
        }


def participant_second(first_sequence: int = 0) -> list[bytes]:
    """One second of what a lean participant publishes: Opus 20 ms and VP8 ``qvga`` packets,
    numbered from ``first_sequence`` (SRTP refuses to protect or accept an index twice)."""
    audio = library.audio_stream(TONES_HZ[0])
    video = library.video_stream()
    packets = [
        build_rtp(111, False, (first_sequence + n) & 0xFFFF, n * audio.frame_ticks, 1, payload)
        for n, frame in enumerate(audio.frames[: round(1 / audio.period)])
        for payload in frame.payloads
    ]
    sequence = first_sequence
    for n, frame in enumerate(video.frames[: round(1 / video.period)]):
        for i, payload in enumerate(frame.payloads):
            last = i == len(frame.payloads) - 1
            packets.append(build_rtp(96, last, sequence & 0xFFFF, n * video.frame_ticks, 2, payload))
            sequence += 1
    return packets


def measure_floor() -> MediaFloor:
    """Measure the per-packet floor of sending and receiving one participant's media.

    The least over :data:`ROUNDS` passes of one second's packets: the machine's floor, not
    its noise. Only the step measured is timed; the sends that feed a receive are not.
    """
    tx = pylibsrtp.Session(pylibsrtp.Policy(key=KEY, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND))
    rx = pylibsrtp.Session(pylibsrtp.Policy(key=KEY, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND))
    send_us = receive_us = receive_clear_us = float("inf")
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as source,
    ):
        sink.bind(("127.0.0.1", 0))
        address = sink.getsockname()
        clock = time.process_time_ns
        packets: list[bytes] = []
        for n in range(ROUNDS):
            packets = participant_second(n * 1000)
            sending = receiving = clear = 0
            for first in range(0, len(packets), BATCH):
                batch = packets[first : first + BATCH]
                start = clock()
                for packet in batch:
                    source.sendto(tx.protect(packet), address)
                sending += clock() - start
                start = clock()
                for _ in batch:
                    rx.unprotect(sink.recv(2048))
                receiving += clock() - start
                for packet in batch:
                    source.sendto(packet, address)
                start = clock()
                for _ in batch:
                    sink.recv(2048)
                clear += clock() - start
            send_us = min(send_us, sending / len(packets) / 1000)
            receive_us = min(receive_us, receiving / len(packets) / 1000)
            receive_clear_us = min(receive_clear_us, clear / len(packets) / 1000)
    return MediaFloor(len(packets), send_us, receive_us, receive_clear_us, _send_waking_us(tx))


def _receive_apart(ready: Connection, core: int | None) -> None:
    """A receiver in its own process: blocks in ``recv`` for each packet until a second passes
    without one, then says it is done."""
    if core is not None:
        os.sched_setaffinity(0, {core})
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        sink.settimeout(1.0)
        ready.send(sink.getsockname())
        with contextlib.suppress(TimeoutError):
            while True:
                sink.recv(2048)
        ready.send("drained")


def _send_waking_us(tx: pylibsrtp.Session) -> float:
    """Protect + ``sendto`` to a receiver on another core, asleep in ``recv`` between packets:
    the least per packet over :data:`WAKING_ROUNDS` passes."""
    cores = sorted(os.sched_getaffinity(0))
    context = multiprocessing.get_context("spawn")
    mine, theirs = context.Pipe()
    receiver = context.Process(target=_receive_apart, args=(theirs, cores[-1] if len(cores) > 1 else None))
    receiver.start()
    try:
        address = mine.recv()
        best = float("inf")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as source:
            for n in range(ROUNDS, ROUNDS + WAKING_ROUNDS):  # numbered after measure_floor's
                packets = participant_second(n * 1000)
                start = time.process_time_ns()
                for packet in packets:
                    source.sendto(tx.protect(packet), address)
                best = min(best, (time.process_time_ns() - start) / len(packets) / 1000)
        mine.recv()  # drained: it can be joined
        return best
    finally:
        receiver.join(5)
        if receiver.is_alive():
            receiver.kill()
