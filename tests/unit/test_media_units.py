"""Frame marks through a real VP8 round trip, tones, devices."""

from __future__ import annotations

import fractions

import av
import numpy as np
import pytest
from aiortc.codecs import get_decoder, get_encoder
from aiortc.codecs.vpx import vp8_depayload
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from simulator.media.devices import FakeDevices
from simulator.media.marks import Mark, read_mark, write_mark
from simulator.media.passthrough import is_vp8_keyframe
from simulator.media.sources import SourceTag
from simulator.media.tones import TONES_HZ, analyse, tone_for, tone_samples

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)


def test_marks_survive_vp8() -> None:
    encoder, decoder = get_encoder(VP8), get_decoder(VP8)
    rng = np.random.default_rng(1)
    read = []
    for i in range(10):
        picture = np.full((360, 320), 128, dtype=np.uint8)
        picture[:240] = rng.integers(40, 200, size=(240, 320), dtype=np.uint8)
        write_mark(picture[:240], Mark(i, 5_000 + i, SourceTag.pack(7, device=1)))
        frame = av.VideoFrame.from_ndarray(picture, format="yuv420p")
        frame.pts, frame.time_base = i * 6000, fractions.Fraction(1, 90000)
        payloads, timestamp = encoder.encode(frame, i == 0)
        data = b"".join(vp8_depayload(p) for p in payloads)
        assert is_vp8_keyframe(data) == (i == 0)
        read += [
            read_mark(out.to_ndarray(format="gray")) for out in decoder.decode(JitterFrame(data, timestamp))
        ]
    assert read == [Mark(i, 5_000 + i, SourceTag.pack(7, device=1)) for i in range(10)]


def test_a_damaged_mark_is_rejected_not_misread() -> None:
    luma = np.full((240, 320), 100, dtype=np.uint8)
    write_mark(luma, Mark(1, 2, 3))
    luma[0:10, 0:10] = 255 - luma[0:10, 0:10]
    assert read_mark(luma) is None
    assert read_mark(np.zeros((240, 320), dtype=np.uint8)) is None


def test_too_small_a_picture_cannot_carry_a_mark() -> None:
    with pytest.raises(ValueError, match="too small"):
        write_mark(np.zeros((20, 100), dtype=np.uint8), Mark(0, 0, 0))


def test_source_tag_round_trip() -> None:
    assert SourceTag.unpack(SourceTag.pack(513, screen=True, device=9)) == (513, True, 9)


@pytest.mark.parametrize("tone", TONES_HZ)
def test_every_tone_is_told_apart(tone: int) -> None:
    level, found = analyse(tone_samples(tone, 777, 960))
    assert found == tone
    assert level > -20


def test_silence_has_no_tone() -> None:
    assert analyse(np.zeros(960, dtype=np.int16))[1] is None


def test_tone_for_a_uid_is_stable() -> None:
    assert tone_for("alice") == tone_for("alice") in TONES_HZ


def test_devices_select_plug_unplug() -> None:
    devices = FakeDevices()
    changes: list[int] = []
    devices.subscribe(lambda: changes.append(1))
    cameras = devices.list("videoinput")
    assert [c.active for c in cameras] == [True, False]
    assert devices.select(cameras[1].device_id)
    active = devices.active("videoinput")
    assert active is not None
    assert (active.device_id, active.active, active.facing_mode) == (
        cameras[1].device_id,
        True,
        "environment",
    )
    assert not devices.select("nope")
    usb = FakeDevices.make("audioinput", "USB Mic")
    devices.plug(usb)
    assert usb.device_id in {d.device_id for d in devices.list("audioinput")}
    devices.unplug(cameras[1].device_id)
    assert devices.active("videoinput").device_id == cameras[0].device_id  # type: ignore[union-attr]
    assert len(changes) == 3


@pytest.mark.parametrize("closed", [True, False])
async def test_consent_task_is_dropped_only_when_close_ran_during_connect(closed: bool) -> None:
    """The aioice race fixed in simulator/media/ice.py, reproduced deterministically."""
    import asyncio

    from simulator.media.ice import _respecting_close

    class Connection:
        _closing = closed
        _query_consent_task: asyncio.Task[None] | None = None

    async def connect_whose_checks_finish_after_close(self: Connection) -> None:
        # What aioice's connect() does once its checks succeeded.
        self._query_consent_task = asyncio.create_task(asyncio.Event().wait())  # type: ignore[arg-type]

    connection = Connection()
    await _respecting_close(connect_whose_checks_finish_after_close)(connection)
    task = connection._query_consent_task
    assert (task is None) == closed
    if task is not None:
        task.cancel()
