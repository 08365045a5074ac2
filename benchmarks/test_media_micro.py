"""Per-operation costs of the media core, each beside aiortc's way of doing the same work.

Every group holds one ``aiortc`` benchmark (the baseline, measured in the same run) and
one ``lean`` benchmark; the ratio table at the end of the run divides the two. The
aiortc side calls aiortc's own objects (``Vp8Encoder``, ``RtpPacket``, its header
extension map, ``JitterBuffer``) the way its sender and receiver do per packet; both
sides use the same pylibsrtp sessions and the same loopback socket, so the difference
is the Python around the primitives.
"""

from __future__ import annotations

import fractions
import os
import socket
from collections.abc import Iterator

import av
import numpy as np
import pylibsrtp
import pytest
from aiortc import RTCRtpCodecParameters, RTCRtpHeaderExtensionParameters
from aiortc.codecs.vpx import Vp8Encoder, vp8_depayload
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtcrtpparameters import RTCRtpSendParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket, is_rtcp
from pytest_benchmark.fixture import BenchmarkFixture

from simulator.media.analysers import ReceivedStream
from simulator.media.lean import LeanReceiver
from simulator.media.library import video_stream
from simulator.media.marks import Mark, read_mark, write_mark
from simulator.media.rtp import build_rtp, read_padding_mark
from simulator.media.sources import CameraTrack
from simulator.server.forwarder import Forwarder, Outlet

SSRC = 0x1234
VP8 = 96


class LoopbackLink:
    """The two halves of an SRTP association and a loopback socket: what RtpLink wraps."""

    def __init__(self) -> None:
        key = os.urandom(30)
        self.tx = pylibsrtp.Session(pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND))
        self.rx = pylibsrtp.Session(pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND))
        self.sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sink.bind(("127.0.0.1", 0))
        self.sink.setblocking(False)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.address = self.sink.getsockname()
        self.sent = 0

    # The RtpLink surface the forwarder's outlets use.
    def send_rtp(self, packet: bytes) -> bytes:
        data = self.tx.protect(packet)
        self.send_protected(data)
        return data

    def send_protected(self, data: bytes) -> None:
        self.sock.sendto(data, self.address)
        self.sent += 1
        if self.sent % 256 == 0:
            self.drain()

    def unprotect(self, packet: bytes) -> bytes | None:
        return self.rx.unprotect(packet)

    def send_rtcp(self, packet: bytes) -> None:
        self.send_protected(self.tx.protect_rtcp(packet))

    def drain(self) -> None:
        try:
            while True:
                self.sink.recv(2048)
        except BlockingIOError:
            pass

    def close(self) -> None:
        self.sock.close()
        self.sink.close()


@pytest.fixture
def link() -> Iterator[LoopbackLink]:
    made = LoopbackLink()
    yield made
    made.close()


def _extensions() -> HeaderExtensionsMap:
    extensions = HeaderExtensionsMap()
    extensions.configure(
        RTCRtpSendParameters(
            codecs=[RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=VP8)],
            headerExtensions=[
                RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
                RTCRtpHeaderExtensionParameters(
                    id=2, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
                ),
            ],
        )
    )
    return extensions


EXTENSIONS = _extensions()
FRAME = video_stream().frames[8]  # an inter frame of two packets
PAYLOAD = FRAME.payloads[0]


def _aiortc_packet(sequence: int, payload: bytes = PAYLOAD) -> bytes:
    """What ``RTCRtpSender._run_rtp`` builds for one payload."""
    packet = RtpPacket(payload_type=VP8, sequence_number=sequence & 0xFFFF, timestamp=sequence * 3000)
    packet.ssrc = SSRC
    packet.payload = payload
    packet.marker = 1
    packet.extensions.abs_send_time = sequence & 0xFFFFFF
    packet.extensions.mid = "1"
    return packet.serialize(EXTENSIONS)


class Counter:
    def __init__(self) -> None:
        self.value = 0

    def __call__(self) -> int:
        self.value += 1
        return self.value


# --- packetise one encoded frame ---------------------------------------------------------------


@pytest.mark.benchmark(group="packetise a frame")
def test_aiortc_packetise(benchmark: BenchmarkFixture) -> None:
    encoder = Vp8Encoder()
    count = Counter()

    def packetise() -> list[bytes]:
        packet = av.Packet(FRAME.data)
        packet.pts = count()
        packet.time_base = fractions.Fraction(1, 90_000)
        payloads, _ = encoder.pack(packet)
        return [_aiortc_packet(count(), payload) for payload in payloads]

    assert len(benchmark(packetise)) == len(FRAME.payloads)


@pytest.mark.benchmark(group="packetise a frame")
def test_lean_packetise(benchmark: BenchmarkFixture) -> None:
    count = Counter()
    mark = Mark(1, 2, 3)

    def packetise() -> list[bytes]:
        last = len(FRAME.payloads) - 1
        return [
            build_rtp(VP8, i == last, count() & 0xFFFF, 3000, SSRC, payload, mark if i == 0 else None)
            for i, payload in enumerate(FRAME.payloads)
        ]

    assert len(benchmark(packetise)) == len(FRAME.payloads)


# --- send one packet: build, SRTP protect, sendto ----------------------------------------------


@pytest.mark.benchmark(group="send a packet")
def test_aiortc_send(benchmark: BenchmarkFixture, link: LoopbackLink) -> None:
    count = Counter()
    benchmark(lambda: link.send_protected(link.tx.protect(_aiortc_packet(count()))))


@pytest.mark.benchmark(group="send a packet")
def test_lean_send(benchmark: BenchmarkFixture, link: LoopbackLink) -> None:
    count = Counter()
    benchmark(lambda: link.send_rtp(build_rtp(VP8, True, count() & 0xFFFF, 3000, SSRC, PAYLOAD)))


# --- SRTP protect + unprotect (the same pylibsrtp on both sides) ------------------------------


@pytest.mark.benchmark(group="SRTP protect+unprotect")
def test_aiortc_srtp(benchmark: BenchmarkFixture, link: LoopbackLink) -> None:
    """As RTCDtlsTransport does it: demultiplex RTP from RTCP, then the session."""
    packets = iter([_aiortc_packet(n) for n in range(30_000)])

    def round_trip() -> bytes:
        data = next(packets)
        protected = link.tx.protect_rtcp(data) if is_rtcp(data) else link.tx.protect(data)
        return link.rx.unprotect_rtcp(protected) if is_rtcp(protected) else link.rx.unprotect(protected)

    benchmark.pedantic(round_trip, rounds=20_000, iterations=1)


@pytest.mark.benchmark(group="SRTP protect+unprotect")
def test_lean_srtp(benchmark: BenchmarkFixture, link: LoopbackLink) -> None:
    """The lean path calls the session directly (it knows what it sends and receives)."""
    packets = iter([build_rtp(VP8, True, n, n * 3000, SSRC, PAYLOAD) for n in range(30_000)])
    benchmark.pedantic(lambda: link.rx.unprotect(link.tx.protect(next(packets))), rounds=20_000, iterations=1)


# --- receive one packet ---------------------------------------------------------------------


def _protected(link: LoopbackLink, count: int, *, lean: bool) -> list[bytes]:
    if lean:
        return [
            link.tx.protect(build_rtp(VP8, True, n, n * 3000, SSRC, PAYLOAD, Mark(n, 0, 1)))
            for n in range(count)
        ]
    return [link.tx.protect(_aiortc_packet(n)) for n in range(count)]


@pytest.mark.benchmark(group="receive a packet")
def test_aiortc_receive(benchmark: BenchmarkFixture, link: LoopbackLink) -> None:
    """Unprotect, parse with extensions, into the jitter buffer (RTCRtpReceiver's per-packet path)."""
    packets = iter(_protected(link, 60_000, lean=False))
    jitter = JitterBuffer(capacity=128, is_video=True)

    def receive() -> None:
        packet = RtpPacket.parse(link.rx.unprotect(next(packets)), EXTENSIONS)
        packet._data = vp8_depayload(packet.payload)  # type: ignore[attr-defined]  # as RTCRtpReceiver does
        jitter.add(packet)

    benchmark.pedantic(receive, rounds=20_000, iterations=1)


@pytest.mark.benchmark(group="receive a packet")
def test_lean_receive(benchmark: BenchmarkFixture, link: LoopbackLink) -> None:
    """Header in the clear, counted; one marked packet in five decrypted (LeanReceiver)."""
    from simulator.media.analysers import MediaEvidence  # noqa: PLC0415

    packets = iter(_protected(link, 60_000, lean=True))
    receiver = LeanReceiver(MediaEvidence())
    receiver.link = link  # type: ignore[assignment]  # the RtpLink surface, on a bare SRTP pair
    stream = ReceivedStream("p", "alice", "camera", "video")
    receiver.bind(SSRC, stream)
    benchmark.pedantic(lambda: receiver.on_rtp(next(packets), 0.0), rounds=20_000, iterations=1)
    assert stream.marked_frames > 0
    assert stream.last_counter is not None


# --- forward one packet in the SFU ------------------------------------------------------------


@pytest.mark.benchmark(group="forward a packet (SFU)")
def test_aiortc_forward(benchmark: BenchmarkFixture, link: LoopbackLink) -> None:
    """A pass-through SFU on aiortc: the receiver's path in, then the sender's path out."""
    packets = iter(_protected(link, 60_000, lean=False))
    jitter = JitterBuffer(capacity=128, is_video=True)
    count = Counter()

    def forward() -> None:
        packet = RtpPacket.parse(link.rx.unprotect(next(packets)), EXTENSIONS)
        packet._data = vp8_depayload(packet.payload)  # type: ignore[attr-defined]  # as RTCRtpReceiver does
        jitter.add(packet)
        link.send_protected(link.tx.protect(_aiortc_packet(count(), packet.payload)))

    benchmark.pedantic(forward, rounds=20_000, iterations=1)


@pytest.mark.benchmark(group="forward a packet (SFU)")
def test_lean_forward(benchmark: BenchmarkFixture, link: LoopbackLink) -> None:
    """Unprotect once, re-address, protect and send (Forwarder with one outlet)."""
    packets = iter(_protected(link, 60_000, lean=True))
    outlet_link = LoopbackLink()
    forwarder = Forwarder("audio", SSRC, lambda: link, lambda: 0.0)  # type: ignore[arg-type,return-value]
    outlet = Outlet("audio", 0x9999, 111, lambda: outlet_link, lambda: 0.0)  # type: ignore[arg-type,return-value]
    forwarder.attach(outlet)
    benchmark.pedantic(
        lambda: forwarder.forward(link.rx.unprotect(next(packets))), rounds=20_000, iterations=1
    )
    assert outlet.forwarded == 20_000
    outlet_link.close()


# --- write and read a frame mark ----------------------------------------------------------------


@pytest.mark.benchmark(group="write+read a frame mark")
def test_aiortc_mark(benchmark: BenchmarkFixture) -> None:
    """In the picture: what a decoding receiver reads (the decode itself not counted)."""
    picture = np.full((240, 320), 128, dtype=np.uint8)

    def write_and_read() -> Mark | None:
        write_mark(picture, Mark(1, 2, 3))
        return read_mark(picture)

    assert benchmark(write_and_read) == Mark(1, 2, 3)


@pytest.mark.benchmark(group="write+read a frame mark")
def test_lean_mark(benchmark: BenchmarkFixture) -> None:
    """In the RTP padding of the frame's first packet."""

    def write_and_read() -> Mark | None:
        return read_padding_mark(build_rtp(VP8, False, 1, 2, SSRC, PAYLOAD, Mark(1, 2, 3)))

    assert benchmark(write_and_read) == Mark(1, 2, 3)


# --- synthesise one video frame, ready to packetise ---------------------------------------------


@pytest.mark.benchmark(group="synthesise a frame")
def test_aiortc_synthesise(benchmark: BenchmarkFixture) -> None:
    """A marked picture, encoded by aiortc's VP8 encoder (the full path's camera)."""
    camera = CameraTrack(1)
    encoder = Vp8Encoder()
    picture = camera._base  # the pattern CameraTrack draws on
    count = Counter()

    def synthesise() -> list[bytes]:
        frame_picture = picture.copy()
        write_mark(frame_picture[:240], Mark(count(), 0, 1))
        frame = av.VideoFrame.from_ndarray(frame_picture, format="yuv420p")
        frame.pts = count.value * 6000
        frame.time_base = fractions.Fraction(1, 90_000)
        payloads, _ = encoder.encode(frame)
        return payloads

    benchmark(synthesise)


@pytest.mark.benchmark(group="synthesise a frame")
def test_lean_synthesise(benchmark: BenchmarkFixture) -> None:
    """The shared library's next frame (encoded once per process)."""
    stream = video_stream()
    count = Counter()
    benchmark(lambda: stream.frames[count() % len(stream.frames)].payloads)
