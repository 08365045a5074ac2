"""The three media paths a participant can take, and the sources each one publishes.

* ``full`` — aiortc's default path: live synthetic sources encoded per participant,
  everything received decoded and analysed (marks, tones, levels). Realism, on a sample.
* ``passthrough`` — aiortc's senders given pre-encoded library packets (they only
  packetise) and receivers that count frames without decoding (docs/media.md's ~20 per core).
* ``lean`` — aiortc negotiates and secures; callsim sends the library's pre-built
  payloads and counts what arrives (:mod:`simulator.media.lean`). For load.
"""

from __future__ import annotations

from typing import Protocol

from aiortc.mediastreams import MediaStreamTrack

from simulator.media import MEDIA_PATHS, MediaPath
from simulator.media.devices import FakeDevices
from simulator.media.lean import LeanSource
from simulator.media.sources import CameraTrack, MicrophoneTrack, PreEncodedTrack

__all__ = ["MEDIA_PATHS", "MediaPath", "Source", "make_sources"]


class Source(Protocol):
    """What a session controls of a publish slot, whatever the path."""

    muted: bool

    @property
    def track(self) -> MediaStreamTrack:
        """What aiortc's sender is given."""
        ...

    @property
    def enabled(self) -> bool: ...

    def set_enabled(self, enabled: bool) -> None: ...

    def stop(self) -> None: ...


def make_sources(
    path: MediaPath,
    *,
    tone_hz: int,
    publisher_tag: int,
    devices: FakeDevices,
    mic_muted: bool,
    camera_enabled: bool,
    profile: str = "qvga",
) -> tuple[Source, Source, Source]:
    """The microphone, camera and screen of one participant on ``path``."""
    if path == "lean":
        return (
            LeanSource("audio", tone_hz=tone_hz, devices=devices, muted=mic_muted),
            LeanSource(
                "video", publisher_tag=publisher_tag, devices=devices, profile=profile, enabled=camera_enabled
            ),
            LeanSource("video", publisher_tag=publisher_tag, screen=True, profile=profile, enabled=False),
        )
    if path == "passthrough":
        return (
            PreEncodedTrack("audio", tone_hz=tone_hz, muted=mic_muted),
            PreEncodedTrack("video", profile=profile, enabled=camera_enabled),
            PreEncodedTrack("video", profile=profile, enabled=False),
        )
    return (
        MicrophoneTrack(tone_hz, devices, muted=mic_muted),
        CameraTrack(publisher_tag, devices, enabled=camera_enabled),
        CameraTrack(publisher_tag, None, screen=True, enabled=False),
    )
