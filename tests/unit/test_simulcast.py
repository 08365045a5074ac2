"""Simulcast forwarding: one layer per subscriber, switched on keyframes, one continuous stream.

A browser publishes its camera in three layers (SSRCs in its ``SIM`` group, the lowest
first). The forwarder sends each outlet the tallest layer that fits its subscriber's
``max_height`` among the layers still arriving, and switches only on the new layer's
keyframe, so the subscriber's decoder never sees a frame it cannot decode.
"""

from __future__ import annotations

import itertools
import struct

from aiortc.rtp import RtcpPsfbPacket

from simulator.media.rtp import build_rtp, header, payload_offset, vp8_keyframe_height
from simulator.server.forwarder import LAYER_REVIEW, LAYER_SILENT, PLI_INTERVAL, Forwarder, Outlet
from tests.unit.test_media_core import VP8, Clock, RecordingLink

LAYERS = [0xA1, 0xA2, 0xA3]
HEIGHTS = [180, 360, 720]


def _frame(layer: int, seq: int, *, key: bool) -> bytes:
    """A VP8 packet of ``layer``; a keyframe carries its picture's size as VP8 writes it."""
    descriptor = b"\x90\x80\x80\x01"  # X=1, S=1; I=1 with a two-octet picture ID
    if key:
        size = struct.pack("<HH", HEIGHTS[layer] * 16 // 9, HEIGHTS[layer])
        body = b"\x00\x00\x00\x9d\x01\x2a" + size + b"key"
    else:
        body = b"\x01\x00\x00delta"
    return build_rtp(VP8, True, seq & 0xFFFF, seq * 3000 + layer * 77_777, LAYERS[layer], descriptor + body)


def _simulcast(max_height: int | None) -> tuple[Forwarder, Outlet, RecordingLink, RecordingLink, Clock]:
    publisher, subscriber, clock = RecordingLink(), RecordingLink(), Clock()
    forwarder = Forwarder("video", LAYERS[0], lambda: publisher, clock, layers=LAYERS)  # type: ignore[arg-type,return-value]
    outlet = Outlet("video", 0x5555, 100, lambda: subscriber, clock, max_height=max_height)  # type: ignore[arg-type,return-value]
    forwarder.attach(outlet)
    return forwarder, outlet, publisher, subscriber, clock


def _all_layers(forwarder: Forwarder, seq: int, *, key: bool) -> None:
    for layer in range(3):
        forwarder.forward(_frame(layer, seq, key=key), layer)


def test_the_keyframe_height_is_read_from_the_vp8_frame_header() -> None:
    packet = _frame(2, 1, key=True)
    assert vp8_keyframe_height(packet, payload_offset(packet)) == 720
    assert vp8_keyframe_height(_frame(2, 2, key=False), 12) is None


def test_without_a_limit_the_outlet_takes_the_top_layer_only() -> None:
    forwarder, outlet, publisher, subscriber, _ = _simulcast(None)
    assert [p.media_ssrc for p in publisher.rtcp] == [LAYERS[2]]  # the PLI went to the top layer
    for seq in range(1, 6):
        _all_layers(forwarder, seq, key=seq == 1)
    assert outlet.layer == 2
    assert len(subscriber.rtp) == 5  # one layer's packets, not three
    assert {header(p)[4] for p in subscriber.rtp} == {0x5555}
    assert forwarder.heights == HEIGHTS


def test_a_limit_picks_the_tallest_layer_that_fits() -> None:
    forwarder, outlet, _, subscriber, clock = _simulcast(400)
    _all_layers(forwarder, 1, key=True)  # heights learnt from these keyframes
    clock.now += LAYER_REVIEW
    _all_layers(forwarder, 2, key=False)
    assert outlet.target == 1
    _all_layers(forwarder, 3, key=True)
    assert outlet.layer == 1
    assert subscriber.rtp[-1][payload_offset(subscriber.rtp[-1]) :] == _frame(1, 3, key=True)[12:]


def test_a_switch_waits_for_the_new_layers_keyframe_and_numbering_carries_on() -> None:
    forwarder, outlet, publisher, subscriber, clock = _simulcast(None)
    for seq in range(1, 4):
        _all_layers(forwarder, seq, key=seq == 1)
    clock.now += PLI_INTERVAL
    forwarder.set_max_height(outlet, 200)  # the subscriber's tile got small
    assert outlet.target == 0 and outlet.layer == 2
    assert publisher.rtcp[-1].media_ssrc == LAYERS[0]  # a keyframe asked of the new layer
    _all_layers(forwarder, 4, key=False)  # no keyframe yet: still the old layer
    assert outlet.layer == 2
    _all_layers(forwarder, 5, key=True)
    assert outlet.layer == 0
    sent = [header(p) for p in subscriber.rtp]
    numbers = [s[2] for s in sent]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(numbers))
    stamps = [s[3] for s in sent]
    assert all(0 < (b - a) & 0xFFFFFFFF < 10_000 for a, b in itertools.pairwise(stamps))
    assert {s[4] for s in sent} == {0x5555}  # one stream, whatever the layer


def test_a_layer_that_stops_is_replaced_by_the_tallest_still_arriving() -> None:
    forwarder, outlet, publisher, _, clock = _simulcast(None)
    _all_layers(forwarder, 1, key=True)
    assert outlet.layer == 2
    for seq in range(2, 6):  # the browser dropped its top layer (its estimate fell)
        clock.now += LAYER_SILENT / 2
        forwarder.forward(_frame(0, seq, key=False), 0)
        forwarder.forward(_frame(1, seq, key=False), 1)
    assert outlet.target == 1
    assert any(isinstance(p, RtcpPsfbPacket) and p.media_ssrc == LAYERS[1] for p in publisher.rtcp)
    forwarder.forward(_frame(1, 6, key=True), 1)
    assert outlet.layer == 1


def test_a_subscribers_nack_reaches_the_layer_it_receives() -> None:
    forwarder, outlet, publisher, subscriber, _ = _simulcast(None)
    _all_layers(forwarder, 100, key=True)
    sent = header(subscriber.rtp[0])[2]
    forwarder.on_nack(outlet, [(sent + 3) & 0xFFFF])
    nack = publisher.rtcp[-1]
    assert nack.media_ssrc == LAYERS[2] and nack.lost == [103]
