"""RTP forwarding: one publisher stream to its subscribers, never decoded.

A :class:`Forwarder` gets each of a publisher's packets once, decrypted by the
publisher's :class:`~simulator.media.rtp.RtpLink`, and an :class:`Outlet` per
subscriber re-addresses it: the SSRC and payload type the subscriber negotiated with
the SFU, a sequence number continuous for that subscriber, and a timestamp offset of
its own. The header's extensions are dropped (their IDs belong to the publisher's
negotiation). Then the subscriber's link protects and sends it.

* A new video outlet starts on a keyframe and asks the publisher for one (PLI).
* A subscriber's PLI is forwarded to the publisher, at most once per
  :data:`PLI_INTERVAL`.
* A subscriber's NACK is answered from the outlet's recent history; what the history
  lacks is translated back to the publisher's numbers and forwarded to the publisher. An aiortc
  publisher answers on its RTX stream, which :class:`~simulator.server.sfu.SfuPeer` unwraps
  and forwards like any other packet.
* **Simulcast**: a forwarder may take several layers of one camera (one SSRC each, the
  lowest first, as a browser announces them in its ``SIM`` group). Each outlet forwards one
  layer, its *target*: the highest whose picture fits the subscriber's ``max_height`` (read
  from the layers' own keyframes) among the layers still arriving. A switch waits for a
  keyframe on the new layer (asked for with a PLI on that layer's SSRC) and keeps sending the
  old one until then; sequence numbers and timestamps carry on across it, so the subscriber
  sees one continuous stream on its one SSRC.
* NACKs are budgeted, so a subscriber flooding them harms neither the publisher nor the
  SFU: each outlet resends at most :data:`RESEND_RATE` packets a second from its history,
  and each publisher stream is asked for at most :data:`NACK_RATE` packets a second, each
  sequence number at most once per :data:`NACK_REPEAT` (several subscribers missing the same
  packet ask once). Real loss stays far below both (5 % of a 300 packet/s stream is 15).
"""

from __future__ import annotations

import collections
import random
import struct
from collections.abc import Callable
from typing import Final

from simulator.media.rtp import (
    RtpLink,
    audible,
    nack,
    payload_offset,
    pli,
    vp8_keyframe_height,
    vp8_keyframe_start,
)
from simulator.server.budget import Budget

__all__ = ["LAYER_REVIEW", "NACK_RATE", "PLI_INTERVAL", "RESEND_RATE", "Forwarder", "Outlet"]

PLI_INTERVAL: Final = 0.3
"""At most one keyframe request per publisher stream in this many seconds."""
HISTORY: Final = 128
"""Protected packets an outlet keeps to answer NACKs (video only)."""
SFU_RTCP_SSRC: Final = 1
"""The SSRC the SFU's own feedback packets carry."""
NACK_RATE: Final = 100.0
"""Sequence numbers a second a publisher stream may be asked to retransmit (burst: one second's)."""
NACK_REPEAT: Final = 0.1
"""Seconds during which one sequence number is not asked of the publisher again."""
RESEND_RATE: Final = 200.0
"""Packets a second one outlet may resend from its history (burst: one second's)."""
LAYER_REVIEW: Final = 1.0
"""Seconds between reviews of each outlet's layer (layers that stop, constraints met)."""
LAYER_SILENT: Final = 1.5
"""A layer with no packet for this long is taken to have stopped (the browser drops its top
layers when its estimate falls)."""


_HEADER: Final = struct.Struct("!BBHII")
FRAME_TICKS: Final = {"audio": 960, "video": 6000}
"""A frame's length in RTP ticks (20 ms of Opus; a 15 fps frame): the step from one stream's
last timestamp to the next stream's first on a reused slot."""


class Outlet:
    """One subscriber's copy of a publisher stream."""

    def __init__(
        self,
        kind: str,
        ssrc: int,
        payload_type: int,
        link: Callable[[], RtpLink | None],
        now: Callable[[], float],
        *,
        follows: Outlet | None = None,
        max_height: int | None = None,
    ) -> None:
        self.kind = kind
        self.ssrc = ssrc
        self.payload_type = payload_type
        self._link = link
        self._seq_offset = 0
        self._ts_offset = 0
        # An outlet on a reused slot carries on where the slot's last stream stopped, so the
        # subscriber sees one continuous stream on that SSRC (numbers and timestamps).
        self._next_seq: int = random.getrandbits(16) if follows is None else follows._next_seq
        self._next_ts: int = random.getrandbits(32) if follows is None else follows._next_ts
        self._started = False
        self.layer: int | None = 0 if kind == "audio" else None
        """The publisher's layer this outlet forwards now (None: none yet, waiting for a keyframe)."""
        self.target = 0
        """The layer this outlet wants; it moves to it on that layer's next keyframe."""
        self.max_height = max_height
        """The tallest picture the subscriber wants (None: no limit), for the choice of layer."""
        self._history: collections.OrderedDict[int, bytes] = collections.OrderedDict()
        self.forwarded = 0
        self.resent = 0
        self._resends = Budget(RESEND_RATE, now)

    @property
    def waiting_for_keyframe(self) -> bool:
        """Whether the outlet waits for a keyframe: to start, or to switch layers."""
        return self.layer != self.target

    def send(self, clear: bytes, offset: int, keyframe: bool, layer: int = 0) -> bool:
        """Re-address and send one packet of ``layer``; False when the outlet waits for a
        keyframe on that layer (it forwards another, or none yet)."""
        link = self._link()
        if link is None:
            if self.kind == "video":
                self.layer = None
            return True
        if layer != self.layer:
            if layer != self.target:
                return True  # another layer's packet: not for this subscriber
            if not keyframe:
                return False
            # The target layer's keyframe: switch, numbering carried on from the last packet sent.
            self.layer = layer
            self._started = False
        first, second, seq, timestamp, _ = _HEADER.unpack_from(clear)
        if not self._started:
            self._started = True
            self._seq_offset = (self._next_seq - seq) & 0xFFFF
            self._ts_offset = (self._next_ts - timestamp) & 0xFFFFFFFF
        out_seq = (seq + self._seq_offset) & 0xFFFF
        out_ts = (timestamp + self._ts_offset) & 0xFFFFFFFF
        if ((out_seq - self._next_seq) & 0xFFFF) < 0x8000:
            self._next_seq = (out_seq + 1) & 0xFFFF
            self._next_ts = (out_ts + FRAME_TICKS[self.kind]) & 0xFFFFFFFF
        packet = (
            _HEADER.pack(
                0x80 | (first & 0x20),
                (second & 0x80) | self.payload_type,
                out_seq,
                out_ts,
                self.ssrc,
            )
            + clear[offset:]
        )
        sent = link.send_rtp(packet)
        if sent is not None:
            self.forwarded += 1
            if self.kind == "video":
                self._history[out_seq] = sent
                if len(self._history) > HISTORY:
                    self._history.popitem(last=False)
        return True

    def resend(self, lost: list[int]) -> list[int]:
        """Retransmit what the history holds (within the resend budget); returns the
        publisher's numbers of the rest."""
        link = self._link()
        held = [seq for seq in lost if seq in self._history]
        if link is not None:
            for seq in held[: self._resends.take(len(held))]:
                link.send_protected(self._history[seq])
                self.resent += 1
        return [(seq - self._seq_offset) & 0xFFFF for seq in lost if seq not in self._history]


class Forwarder:
    """One publisher stream (one SSRC) and its outlets."""

    def __init__(
        self,
        kind: str,
        ssrc: int,
        link: Callable[[], RtpLink | None],
        now: Callable[[], float],
        *,
        layers: list[int] | None = None,
    ) -> None:
        self.kind = kind
        self.ssrc = ssrc
        """The stream's SSRC (a simulcast camera's lowest layer)."""
        self.layers = layers or [ssrc]
        """One SSRC per layer, the lowest first."""
        self._link = link
        self._now = now
        self.outlets: list[Outlet] = []
        self._last_pli = [-PLI_INTERVAL] * len(self.layers)
        self._pli_wanted = [False] * len(self.layers)
        self.heights: list[int | None] = [None] * len(self.layers)
        """Each layer's picture height, read from its keyframes."""
        self._last_packet: list[float | None] = [None] * len(self.layers)
        self._chosen_at = -LAYER_REVIEW
        self._started_at: float | None = None
        self.announced_as: tuple[str, str] | None = None
        """(endpoint, source name) under which Jitsi-style subscribers are told of this stream
        when it is not its member's own (the published SDK's screen share comes from a
        companion occupant); None: its member's."""
        self.packets_in = 0
        self.audible_at: float | None = None
        """When an audio stream last carried sound (loop clock; the SFU notes it): who speaks."""
        self.keyframes_asked = 0
        """PLIs sent to the publisher."""
        self.nacks_asked = 0
        """Sequence numbers the publisher was asked to retransmit."""
        self._nacks = Budget(NACK_RATE, now)
        self._asked: dict[int, float] = {}
        """Publisher sequence number → when it was last asked for (pruned as it goes)."""

    def attach(self, outlet: Outlet) -> None:
        self.outlets.append(outlet)
        if self.kind == "video":
            outlet.target = self._choose(outlet)
        if outlet.waiting_for_keyframe:
            self.request_keyframe(outlet.target)

    def detach(self, outlet: Outlet) -> None:
        if outlet in self.outlets:
            self.outlets.remove(outlet)

    def request_keyframe(self, layer: int | None = None) -> None:
        """Ask the publisher for a keyframe on ``layer`` (default: every layer an outlet
        forwards or waits for), now or as soon as the rate limit allows."""
        if self.kind != "video":
            return
        wanted = (
            {layer}
            if layer is not None
            else {o.target for o in self.outlets} | {o.layer for o in self.outlets if o.layer is not None}
        )
        for index in wanted or {0}:
            self._pli_wanted[index] = True
            self._maybe_send_pli(index)

    def _maybe_send_pli(self, layer: int) -> None:
        now = self._now()
        link = self._link()
        if link is None or now - self._last_pli[layer] < PLI_INTERVAL:
            return
        self._pli_wanted[layer] = False
        self._last_pli[layer] = now
        self.keyframes_asked += 1
        link.send_rtcp(pli(SFU_RTCP_SSRC, self.layers[layer]))

    def set_max_height(self, outlet: Outlet, max_height: int | None) -> None:
        """A subscriber's constraint changed: it may take another layer."""
        outlet.max_height = max_height
        self._retarget(outlet)

    def _choose(self, outlet: Outlet) -> int:
        """The layer for ``outlet``: the tallest that fits its constraint among those arriving
        (a layer whose height is not known yet counts as fitting: layers go up in size)."""
        now = self._now()
        # A layer not heard from yet counts while the stream is young: layers start together.
        young = self._started_at is None or now - self._started_at < LAYER_SILENT
        arriving = [
            index
            for index, last in enumerate(self._last_packet)
            if (young if last is None else now - last < LAYER_SILENT)
        ] or list(range(len(self.layers)))
        limit = outlet.max_height
        if limit is None:
            return arriving[-1]
        fitting = [index for index in arriving if (self.heights[index] or 0) <= limit]
        return fitting[-1] if fitting else arriving[0]

    def _retarget(self, outlet: Outlet) -> None:
        target = self._choose(outlet)
        if target != outlet.target:
            outlet.target = target
            if outlet.waiting_for_keyframe:
                self.request_keyframe(target)

    def note_arrival(self, packet: bytes, arrival: float) -> None:
        """A packet of this stream arrived (still protected: only its length is read). An audio
        stream notes when it last carried sound, for who is speaking; call it for every packet,
        forwarded or not, so that a speaker nobody receives yet can be chosen."""
        if self.kind == "audio" and audible(packet):
            self.audible_at = arrival

    def forward(self, clear: bytes, layer: int = 0) -> None:
        """One clear packet of ``layer`` from the publisher, to every outlet that takes it."""
        self.packets_in += 1
        offset = payload_offset(clear)
        keyframe = self.kind == "audio" or vp8_keyframe_start(clear, offset)
        if len(self.layers) > 1:  # a single stream pays nothing for simulcast's bookkeeping
            self._note_layer(clear, offset, layer, keyframe)
        for outlet in self.outlets:
            if not outlet.send(clear, offset, keyframe, layer):
                self._pli_wanted[layer] = True
        if self._pli_wanted[layer]:
            self._maybe_send_pli(layer)

    def _note_layer(self, clear: bytes, offset: int, layer: int, keyframe: bool) -> None:
        """A simulcast layer's packet: its height, that it still arrives, and, once a review
        is due, every outlet's choice of layer."""
        now = self._now()
        if self._started_at is None:
            self._started_at = now
        if keyframe and self.heights[layer] is None:
            self.heights[layer] = vp8_keyframe_height(clear, offset)
        self._last_packet[layer] = now
        if now - self._chosen_at >= LAYER_REVIEW:
            self._chosen_at = now
            for outlet in self.outlets:
                self._retarget(outlet)

    def on_nack(self, outlet: Outlet, lost: list[int]) -> None:
        """A subscriber's NACK: answered from history, the rest asked of the publisher,
        each within its budget."""
        missing = outlet.resend(lost)
        link = self._link()
        if not missing or link is None:
            return
        now = self._now()
        if len(self._asked) > 4 * NACK_RATE:
            self._asked = {seq: at for seq, at in self._asked.items() if now - at < NACK_REPEAT}
        fresh = sorted({seq for seq in missing if now - self._asked.get(seq, -NACK_REPEAT) >= NACK_REPEAT})
        fresh = fresh[: self._nacks.take(len(fresh))]
        if fresh:
            self.nacks_asked += len(fresh)
            self._asked.update(dict.fromkeys(fresh, now))
            layer = outlet.layer or 0
            link.send_rtcp(nack(SFU_RTCP_SSRC, self.layers[layer], fresh))
