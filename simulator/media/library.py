"""Pre-encoded media, encoded once per process and shared by every participant in it.

Encoding is the dominant cost of a synthetic participant (VP8 320×240: ~1.6 ms a
frame, docs/media.md), and every efficient load generator avoids it by sending media that
was encoded beforehand. Here a *profile* (resolution, rate, bitrate) is encoded once,
the first time a participant asks for it, into a loop of frames with a keyframe every
:data:`KEYFRAME_INTERVAL` seconds; an Opus loop is encoded once per tone. Each frame is
kept both whole (``data``: what an aiortc sender packetises) and already packetised
(``payloads``: what the lean path sends as is).

Encoded video loops are also kept on disk (:func:`cache_dir`), so a loop is encoded once per
machine, not once per worker process: a large one (720 lines: seconds of encoding) would
otherwise delay every worker's start.

The keyframe index lets a keyframe request (PLI) be honoured without an encoder: the
sender jumps to the next keyframe of the loop (:meth:`EncodedStream.next_keyframe`).

Every video frame still carries its pixel mark (see :mod:`marks`): the counter is the
frame's place in the loop and the capture time is :data:`NO_CAPTURE_TIME`, because a
frame encoded once cannot know when it will be sent. The lean path sends the real
capture time in the packet instead (:mod:`simulator.media.rtp`).
"""

from __future__ import annotations

import fractions
import functools
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import av
import msgspec
import numpy as np
import platformdirs
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Encoder

from simulator.media.marks import NO_CAPTURE_TIME, Mark, write_mark
from simulator.media.passthrough import is_vp8_keyframe
from simulator.media.tones import AMPLITUDE, SAMPLE_RATE, tone_samples

__all__ = [
    "AUDIO_PTIME",
    "KEYFRAME_INTERVAL",
    "LIBRARY_TAG",
    "PROFILES",
    "EncodedFrame",
    "EncodedStream",
    "VideoProfile",
    "audio_stream",
    "cache_dir",
    "prepare",
    "video_stream",
    "warm",
]

VIDEO_CLOCK: Final = 90_000
AUDIO_PTIME: Final = 0.020
KEYFRAME_INTERVAL: Final = 2.0
"""Seconds between keyframes in the loop (what a PLI waits for at most)."""
LOOP_SECONDS: Final = 10.0
LIBRARY_TAG: Final = 0xFFFF
"""The pixel-mark tag of library frames: a shared picture names no publisher."""


@dataclass(frozen=True, slots=True)
class VideoProfile:
    """One resolution and rate of pre-encoded video."""

    name: str
    width: int
    height: int
    fps: int
    bitrate: int


PROFILES: Final = {
    p.name: p
    for p in (
        VideoProfile("qvga", 320, 240, 15, 300_000),
        VideoProfile("vga", 640, 480, 15, 800_000),
        VideoProfile("hd", 1280, 720, 30, 2_000_000),
        # A simulcast camera's layers, as the published SDK sends them (16:9, lowest first).
        VideoProfile("l180", 320, 180, 15, 150_000),
        VideoProfile("l360", 640, 360, 15, 450_000),
        VideoProfile("l720", 1280, 720, 15, 1_200_000),
    )
}
"""The profiles a scenario can name; ``qvga`` is the load-test default."""


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """One encoded frame of a loop."""

    data: bytes
    payloads: tuple[bytes, ...]
    keyframe: bool


@dataclass(frozen=True, slots=True)
class EncodedStream:
    """A loop of encoded frames with its keyframe index."""

    kind: Literal["audio", "video"]
    clock_rate: int
    frame_ticks: int
    """RTP timestamp increment per frame."""
    period: float
    """Seconds per frame."""
    frames: tuple[EncodedFrame, ...]
    keyframes: tuple[int, ...]

    def next_keyframe(self, index: int) -> int:
        """The position of the first keyframe at or after ``index`` (wrapping round the loop)."""
        index %= len(self.frames)
        for position in self.keyframes:
            if position >= index:
                return position
        return self.keyframes[0]

    @property
    def bitrate(self) -> float:
        """Bits per second of payload."""
        total = sum(len(payload) for frame in self.frames for payload in frame.payloads)
        return total * 8 / (len(self.frames) * self.period)


def _pictures(profile: VideoProfile, count: int) -> Iterator[np.ndarray[Any, np.dtype[np.uint8]]]:
    """Moving content, so that the inter frames cost what a camera's would."""
    rows, cols = np.indices((profile.height, profile.width))
    rng = np.random.default_rng(6)
    grain = rng.integers(0, 24, size=(profile.height, profile.width), dtype=np.uint8)
    box = max(16, profile.width // 8)
    for n in range(count):
        picture = np.empty((profile.height * 3 // 2, profile.width), dtype=np.uint8)
        luma = ((rows + cols + 3 * n) % 160 + 48).astype(np.uint8) + np.roll(grain, n, axis=1)
        x = (n * 7) % (profile.width - box)
        y = (n * 3) % (profile.height - box)
        luma[y : y + box, x : x + box] = 230
        picture[: profile.height] = luma
        picture[profile.height :] = 128
        write_mark(picture[: profile.height], Mark(n, NO_CAPTURE_TIME, LIBRARY_TAG))
        yield picture


CACHE_FORMAT: Final = 1
"""Bumped whenever what a cached loop holds changes."""


def cache_dir() -> Path:
    """Where encoded loops are kept: ``$CALLSIM_CACHE``, else the user's cache folder."""
    return Path(os.environ.get("CALLSIM_CACHE") or platformdirs.user_cache_dir("callsim"))


class _Cached(msgspec.Struct, array_like=True):
    frames: list[tuple[bytes, list[bytes], bool]]


def _cache_path(profile: VideoProfile) -> Path:
    key = (
        f"vp8-{profile.name}-{profile.width}x{profile.height}-{profile.fps}-{profile.bitrate}"
        f"-{LOOP_SECONDS:g}-{KEYFRAME_INTERVAL:g}-av{av.__version__}-f{CACHE_FORMAT}"
    )
    return cache_dir() / f"{key}.msgpack"


def _load(profile: VideoProfile) -> tuple[EncodedFrame, ...] | None:
    """A loop encoded earlier on this machine (None if there is none, or it is unreadable)."""
    try:
        cached = msgspec.msgpack.decode(_cache_path(profile).read_bytes(), type=_Cached)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return None
    return tuple(EncodedFrame(data, tuple(payloads), keyframe) for data, payloads, keyframe in cached.frames)


def _store(profile: VideoProfile, frames: tuple[EncodedFrame, ...]) -> None:
    """Keep a loop for later processes (written whole or not at all; a failure only costs time)."""
    path = _cache_path(profile)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        data = msgspec.msgpack.encode(_Cached([(f.data, list(f.payloads), f.keyframe) for f in frames]))
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, suffix=".tmp") as out:
            out.write(data)
        os.replace(out.name, path)
    except OSError:
        pass


def warm(profiles: Iterable[str]) -> None:
    """Encode and keep on disk the loops of ``profiles`` not kept yet (a run does this once,
    before its workers start, so none of them spends its first seconds encoding)."""
    for name in dict.fromkeys(profiles):
        profile = PROFILES[name]
        if not _cache_path(profile).exists():
            _store(profile, _encode(profile))


@functools.cache
def video_stream(profile_name: str = "qvga") -> EncodedStream:
    """The shared VP8 loop of a profile (encoded on first use on this machine, kept on disk,
    then cached for the process)."""
    profile = PROFILES[profile_name]
    frames = _load(profile)
    if frames is None:
        frames = _encode(profile)
        _store(profile, frames)
    keyframes = tuple(i for i, f in enumerate(frames) if f.keyframe)
    if not keyframes or keyframes[0] != 0:
        raise RuntimeError(f"the {profile_name} loop does not start with a keyframe")
    return EncodedStream("video", VIDEO_CLOCK, VIDEO_CLOCK // profile.fps, 1 / profile.fps, frames, keyframes)


def _encode(profile: VideoProfile) -> tuple[EncodedFrame, ...]:
    """A profile's loop, encoded with libvpx and packetised."""
    count = int(LOOP_SECONDS * profile.fps)
    interval = int(KEYFRAME_INTERVAL * profile.fps)
    codec = av.CodecContext.create("libvpx", "w")
    codec.width = profile.width
    codec.height = profile.height
    codec.pix_fmt = "yuv420p"
    codec.bit_rate = profile.bitrate
    codec.framerate = fractions.Fraction(profile.fps, 1)
    codec.time_base = fractions.Fraction(1, profile.fps)
    codec.gop_size = interval
    codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    packets: list[bytes] = []
    for n, picture in enumerate(_pictures(profile, count)):
        frame = av.VideoFrame.from_ndarray(picture, format="yuv420p")
        frame.pts = n
        if n % interval == 0:
            frame.pict_type = av.video.frame.PictureType.I
        packets.extend(bytes(p) for p in codec.encode(frame))
    packets.extend(bytes(p) for p in codec.encode(None))
    packer = Vp8Encoder()
    frames = []
    for n, data in enumerate(packets):
        packet = av.Packet(data)
        packet.pts = n
        packet.time_base = codec.time_base
        payloads, _ = packer.pack(packet)
        frames.append(EncodedFrame(data, tuple(payloads), keyframe=is_vp8_keyframe(data)))
    return tuple(frames)


@functools.cache
def audio_stream(tone_hz: int, attenuation_db: int = 0) -> EncodedStream:
    """One second of Opus (20 ms frames) carrying ``tone_hz``; 0 Hz is silence.

    The tones sit on whole cycles per 20 ms (see :mod:`tones`), so the loop is seamless.
    """
    samples_per_frame = int(SAMPLE_RATE * AUDIO_PTIME)
    amplitude = AMPLITUDE * 10 ** (-attenuation_db / 20)
    encoder = OpusEncoder()
    frames = []
    for n in range(int(1 / AUDIO_PTIME)):
        if tone_hz:
            samples = tone_samples(tone_hz, n * samples_per_frame, samples_per_frame, amplitude)
        else:
            samples = np.zeros(samples_per_frame, dtype=np.int16)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = n * samples_per_frame
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        payloads, _ = encoder.encode(frame)
        frames.append(EncodedFrame(payloads[0], tuple(payloads), keyframe=True))
    return EncodedStream(
        "audio", SAMPLE_RATE, samples_per_frame, AUDIO_PTIME, tuple(frames), tuple(range(len(frames)))
    )


def prepare(tones: Iterable[int], profile: str = "qvga") -> None:
    """Encode what a process's participants will send, before any of them joins.

    Encoding the video loop takes ~0.3–0.5 s of the event loop; done at the first join,
    it would stall every join in flight behind it.
    """
    video_stream(profile)
    audio_stream(0)
    for tone in set(tones):
        audio_stream(tone)
