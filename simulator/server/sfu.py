"""The SFU side of one participant: its media in, the others' media out.

A participant is **bundled** (one connection, fixed receive slots) or **split** (a publish
connection and a subscribe connection), as its publish offer says (docs/signalling.md §3).

* **Publish** — the client offers its microphone, camera and screen slots (in that
  m-line order) once; the SFU answers. Once connected, the connection's RTP moves to
  an :class:`~simulator.media.rtp.RtpLink`, and each announced SSRC feeds a
  :class:`~simulator.server.forwarder.Forwarder`: the SFU forwards RTP, it never decodes.
* **Subscribe** — the SFU offers the other participants' streams and renegotiates
  whenever the set changes (someone publishes, leaves, starts or stops sharing). Each
  stream is a send-only slot with an idle track (it gives the SSRC) and an
  :class:`~simulator.server.forwarder.Outlet` that re-addresses the publisher's
  packets to it. A slot whose stream has gone goes inactive and is the next of its
  kind to be filled, carrying on its numbering: the description grows only to the most
  streams a subscriber has had at once, however long the churn. The SFU is always the
  offerer here and the client always the offerer on publish, so offers never cross.
  Negotiations run one at a time in the negotiator.
* **Bundled** — the publish offer also carries a fixed number of receive m-lines per
  kind (microphones, cameras, screens: the client's last-N), answered send-only with the
  SFU's SSRCs. The SFU fills them with outlets and tells the client who is in each
  (``slots``): the others' joins and leaves cost a message, never a negotiation, and
  the participant does one ICE and one DTLS handshake. No peer connection serves it:
  :mod:`~simulator.server.offer` reads the offer and writes the answer, and an ORTC
  transport (:class:`~simulator.media.ortc.IceDtlsTransport`) carries the RTP links.
  When a kind has more streams than slots, the slots go to those speaking, then to those
  already holding one, then in join order, reviewed every :data:`SLOT_REVIEW` seconds.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from dataclasses import dataclass
from typing import Final

from aiortc import (
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.exceptions import OperationError
from aiortc.rtp import RtcpPsfbPacket, RtcpRtpfbPacket

from simulator import protocol
from simulator.media.description import fresh_ssrcs
from simulator.media.liveness import MediaWatch, Watched
from simulator.media.ortc import IceDtlsTransport, TransportPool
from simulator.media.peer import (
    FORWARDED_CODECS,
    close_peer_connection,
    open_peer_connection,
)
from simulator.media.rtp import (
    PSFB_PLI,
    RTPFB_NACK,
    RtpLink,
    SilentTrack,
    header,
    parse_rtcp,
    release_receivers,
    remote_ssrcs,
    unwrap_retransmission,
)
from simulator.server.errors import ApiError, Codes
from simulator.server.feedback import REPORT_INTERVAL, PublisherFeedback
from simulator.server.forwarder import Forwarder, Outlet
from simulator.server.offer import (
    PUBLISH_KINDS,
    PUBLISH_SLOTS,
    AnsweredLine,
    PublishOffer,
    Source,
    read_offer,
    shape_error,
    write_answer,
)
from simulator.server.rooms import Participant, Room
from simulator.tasks import TaskSet

__all__ = ["SfuPeer"]

logger = logging.getLogger(__name__)


FORWARDED_NAMES: Final = {"audio": "Opus", "video": "VP8"}
ANSWER_TIMEOUT: Final = 15.0
NATIVE_MAX_HEIGHT: Final = 360
"""The tallest simulcast layer a native subscriber is sent: virtual participants show no
picture bigger than that, and decoding a browser's 720p layer costs them ~4× the CPU of
its 360p one. (XMPP clients say theirs over the bridge channel.)"""
PSFB_FIR: Final = 4
SLOT_REVIEW: Final = 1.0
"""Seconds between reviews of who holds a bundled participant's slots, while some kind has
more streams than slots (a join, a leave or a share is reviewed at once)."""
SPEAKING: Final = 1.5
"""A participant whose microphone carried sound this recently is speaking (slot priority)."""
KEEP_IN_STEP: Final = 1024
"""A stream nobody receives is still decrypted once per this many packets, so that
SRTP's rollover counter stays right for when someone subscribes."""


def _negotiated_remb(pc: RTCPeerConnection) -> bool:
    """Whether the publish answer kept ``goog-remb`` for video (the publisher offered it)."""
    return any(
        feedback.type == "goog-remb"
        for transceiver in pc.getTransceivers()
        if transceiver.kind == "video"
        for codec in transceiver._codecs
        for feedback in codec.rtcpFeedback
    )


def _carries(source: Source, *, bundled: bool) -> protocol.SlotKind:
    """The slot kind a source takes: bundled, screens have slots of their own; split, a
    screen takes any video m-line."""
    if source == "mic":
        return "audio"
    return "screen" if bundled and source == "screen" else "video"


@dataclass(eq=False)
class _ReceiveSlot:
    """A bundled participant's receive m-line: its mid, the SFU's SSRC and payload type on it."""

    mid: str
    ssrc: int
    payload_type: int
    order: int
    """Its place among the receive m-lines (the offer's order)."""


_Line = RTCRtpTransceiver | _ReceiveSlot
"""Where a subscription is sent: a subscribe m-line (split) or a receive slot (bundled)."""


def _order(line: _Line) -> int:
    """A receive slot's place in the offer (split m-lines are never ordered)."""
    return line.order if isinstance(line, _ReceiveSlot) else 0


def _address(line: _Line) -> tuple[int, int] | None:
    """The SSRC and payload type an outlet sends with on ``line`` (None: not negotiated yet)."""
    if isinstance(line, _ReceiveSlot):
        return line.ssrc, line.payload_type
    codecs = line._codecs
    if not codecs or codecs[0].payloadType is None:
        return None
    return line.sender._ssrc, codecs[0].payloadType


@dataclass(eq=False)
class _Subscription:
    key: tuple[str, Source]
    line: _Line
    track: SilentTrack | None
    """Split: the idle track that gives the m-line its SSRC (a receive slot has its own)."""
    forwarder: Forwarder
    follows: Outlet | None = None
    """The last outlet of a reused slot: the new one carries on its numbering."""
    outlet: Outlet | None = None


@dataclass(eq=False)
class _SpareSlot:
    """A subscribe m-line (split) or receive slot (bundled) without a stream: the next
    stream of its kind takes it."""

    line: _Line
    last_outlet: Outlet | None
    carries: protocol.SlotKind


@dataclass(eq=False)
class _Accepted:
    """A publish offer that passed the rules: its forwarders."""

    forwarders: dict[str, Forwarder]
    by_ssrc: dict[int, Forwarder]
    by_rtx: dict[int, Forwarder]


class SfuPeer:
    """The SFU's connections with one participant."""

    def __init__(self, participant: Participant, room: Room, transports: TransportPool) -> None:
        self._participant = participant
        self._room = room
        self._transports = transports
        """Where a bundled publish takes its transport (the backend's pool, answerers')."""
        self._tasks = TaskSet(f"sfu:{participant.participant_id}")
        self._publish: RTCPeerConnection | None = None
        self._transport: IceDtlsTransport | None = None
        """Bundled: the one transport (no peer connection)."""
        self._descriptions: tuple[str, str] | None = None
        """Bundled: the offer and the answer."""
        self._subscribe: RTCPeerConnection | None = None
        self._publish_link: RtpLink | None = None
        self._subscribe_link: RtpLink | None = None
        self.forwarders: dict[str, Forwarder] = {}
        self._by_ssrc: dict[int, Forwarder] = {}
        self._by_rtx_ssrc: dict[int, Forwarder] = {}
        self._subscriptions: dict[tuple[str, Source], _Subscription] = {}
        self._spare: list[_SpareSlot] = []
        self._by_outlet_ssrc: dict[int, _Subscription] = {}
        self._streams: dict[str, protocol.StreamInfo] = {}
        self._dirty = asyncio.Event()
        self._answer: asyncio.Future[str] | None = None
        self._closed = False
        self._publish_watch: MediaWatch | None = None
        self.counts: collections.Counter[str] = collections.Counter()
        self._resent = 0
        """Packets resent to this subscriber on outlets that have since gone."""
        self._feedback: PublisherFeedback | None = None
        self.media_lost: str | None = None
        """Why this participant's media was judged dead (None while it lives)."""
        self.negotiations = 0
        self.receive: protocol.ReceiveSlots | None = None
        """Bundled: the receive slots the publish offer asked for (None: split)."""
        self._receive_slots = 0
        self._review: asyncio.TimerHandle | None = None
        """Bundled: the next review of who holds the slots, while some kind has more streams than slots."""
        self.slot_changes = 0

    def start(self) -> None:
        """Start negotiating the subscribe side as the room changes."""
        self._tasks.spawn(self._negotiate_when_dirty(), "negotiator")

    # --- publish --------------------------------------------------------------------------

    @property
    def bundled(self) -> bool:
        return self.receive is not None

    async def publish(self, sdp: str, receive: protocol.ReceiveSlots | None = None) -> str:
        """Answer the participant's publish offer; returns the answer SDP. With ``receive``,
        the offer also carries those receive slots (bundled).

        A refused offer leaves nothing behind (no transport, no forwarder), is logged with
        the participant and the reason, and may be sent again corrected.
        """
        if self._publish is not None or self._transport is not None or self._closed:
            raise ApiError(Codes.NEGOTIATION_FAILED, "already publishing; the publish offer is sent once")
        try:
            if receive is not None:
                return await self._publish_bundled(sdp, receive)
            return await self._publish_split(sdp)
        except ApiError as exc:
            logger.warning("%s: publish refused: %s", self._participant.participant_id, exc.message)
            raise

    def _take_forwarders(self, announced: list[tuple[int | None, int | None]]) -> _Accepted:
        """The publish m-lines' forwarders, from the SSRCs each announces (primary, RTX)."""
        now = asyncio.get_running_loop().time
        accepted = _Accepted({}, {}, {})
        for (ssrc, rtx), (kind, source) in zip(announced, PUBLISH_SLOTS, strict=True):
            if ssrc is None:
                raise ApiError(Codes.NEGOTIATION_FAILED, f"publish offer announces no SSRC for the {source}")
            forwarder = Forwarder(kind, ssrc, lambda: self._publish_link, now)
            accepted.forwarders[source] = forwarder
            accepted.by_ssrc[ssrc] = forwarder
            if rtx is not None:
                accepted.by_rtx[rtx] = forwarder
        return accepted

    def _adopt(self, accepted: _Accepted, *, remb: bool) -> PublisherFeedback:
        self.forwarders.update(accepted.forwarders)
        self._by_ssrc.update(accepted.by_ssrc)
        self._by_rtx_ssrc.update(accepted.by_rtx)
        return PublisherFeedback(
            {f.ssrc: f.kind for f in accepted.forwarders.values()}, asyncio.get_running_loop().time, remb=remb
        )

    def _start_media(self, link: RtpLink, feedback: PublisherFeedback, watched: Watched) -> None:
        """The publish side is up: feedback to the publisher, and a watch on its media."""
        self._publish_link = link
        self._feedback = feedback
        self._tasks.spawn(self._report_to_publisher(), "publisher-feedback")
        # The microphone always sends (silence when muted: docs/signalling.md), so a
        # publish connection without RTP is dead even if ICE still answers.
        self._publish_watch = self._watch(watched, "publish", rtp_expected=True)

    async def _publish_bundled(self, sdp: str, receive: protocol.ReceiveSlots) -> str:
        offer = read_offer(sdp, receive)
        publishing = offer.lines[: len(PUBLISH_KINDS)]
        accepted = self._take_forwarders([(line.ssrc, line.rtx_ssrc) for line in publishing])
        receiving = offer.lines[len(PUBLISH_KINDS) :]
        announced = {s for line in publishing for s in (line.ssrc, line.rtx_ssrc) if s is not None}
        ssrcs = fresh_ssrcs(len(receiving), announced)
        self.receive = receive
        self._receive_slots = len(receiving)
        self._spare = [
            _SpareSlot(_ReceiveSlot(line.mid, ssrc, line.codec.payloadType or 0, order), None, carries)
            for order, (line, ssrc, (_, carries)) in enumerate(
                zip(receiving, ssrcs, receive.kinds(), strict=True)
            )
        ]
        try:
            transport, local = await self._transports.take()  # the offer's answerer: controlled
        except ConnectionError:
            left = "the participant left while its offer was answered"
            raise ApiError(Codes.NEGOTIATION_FAILED, left) from None
        if self._closed:
            await transport.close()
            raise ApiError(Codes.NEGOTIATION_FAILED, "the participant left while its offer was answered")
        self._transport = transport
        answer = write_answer(
            offer,
            [AnsweredLine(line) for line in publishing]
            + [AnsweredLine(line, ssrc) for line, ssrc in zip(receiving, ssrcs, strict=True)],
            local,
        )
        self._descriptions = (sdp, answer)
        feedback = self._adopt(accepted, remb=offer.remb)
        self._tasks.spawn(self._connect_bundled(transport, offer, feedback), "connect")
        return answer

    async def _connect_bundled(
        self, transport: IceDtlsTransport, offer: PublishOffer, feedback: PublisherFeedback
    ) -> None:
        if not await transport.connect(offer.transport):
            if transport.failure is not None:
                self._media_lost(f"publish: {transport.failure}")
            return
        if self._closed:
            return

        def on_rtcp(clear: bytes) -> None:
            feedback.on_rtcp(clear)
            self._on_subscribe_rtcp(clear)  # the receive slots' PLIs and NACKs come here

        link = RtpLink(transport.dtls, on_rtp=self._on_publish_rtp, on_rtcp=on_rtcp)
        self._start_media(link, feedback, transport)
        self.resync()  # the slots fill once there is a link to send on

    async def _publish_split(self, sdp: str) -> str:
        pc = open_peer_connection()
        try:
            accepted = await self._accept_publish(pc, sdp)
            answer = await pc.createAnswer()
            await pc.setLocalDescription(answer)
        except ApiError:
            with contextlib.suppress(Exception):
                await close_peer_connection(pc)
            raise
        self._publish = pc
        feedback = self._adopt(accepted, remb=_negotiated_remb(pc))

        @pc.on("connectionstatechange")
        def _connected() -> None:
            if pc.connectionState == "connected" and self._publish_link is None and not self._closed:
                link = RtpLink(pc, on_rtp=self._on_publish_rtp, on_rtcp=feedback.on_rtcp)
                release_receivers(pc)
                self._start_media(link, feedback, pc)

        return str(pc.localDescription.sdp)

    async def _accept_publish(self, pc: RTCPeerConnection, sdp: str) -> _Accepted:
        """Check a split participant's offer against the publish rules (docs/signalling.md)
        and make its forwarders, touching nothing of this peer's: ApiError says what is wrong."""
        if "\na=simulcast:" in sdp or "\na=ssrc-group:SIM" in sdp:
            # Several layers of one camera: the SFU forwards one stream per source (for now).
            raise ApiError(
                Codes.NEGOTIATION_FAILED,
                "publish offer refused: simulcast is not supported (send one layer, without RIDs)",
            )
        # The slots exist before the offer is applied, so that their codecs are the ones the
        # SFU forwards (Opus; VP8, with RTX): an offer without them is refused, not accepted
        # into a codec no subscriber could decode.
        for kind, _ in PUBLISH_SLOTS:
            pc.addTransceiver(kind, direction="recvonly").setCodecPreferences(FORWARDED_CODECS[kind])
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        except OperationError as exc:
            kind = "video" if "video" in str(exc) else "audio"
            raise ApiError(
                Codes.NEGOTIATION_FAILED,
                f"publish offer refused: no {kind} codec the SFU forwards ({FORWARDED_NAMES[kind]})",
            ) from None
        except Exception as exc:
            raise ApiError(Codes.NEGOTIATION_FAILED, f"publish offer refused: {exc}") from None
        transceivers = pc.getTransceivers()
        if [t.kind for t in transceivers] != list(PUBLISH_KINDS) or any(t.mid is None for t in transceivers):
            raise ApiError(Codes.NEGOTIATION_FAILED, shape_error(None))
        ssrcs = remote_ssrcs(pc)
        return self._take_forwarders([ssrcs.get(t.mid or "", (None, None)) for t in transceivers])

    def _on_publish_rtp(self, packet: bytes, arrival: float) -> None:
        if self._publish_watch is not None:
            self._publish_watch.heard_rtp(arrival)
        _, _, seq, _, ssrc = header(packet)
        if self._feedback is not None:
            self._feedback.on_rtp(ssrc, seq, len(packet))
        forwarder = self._by_ssrc.get(ssrc)
        link = self._publish_link
        if link is None:
            return
        if forwarder is None:
            # A retransmission (an answer to a NACK forwarded to an aiortc publisher).
            if (forwarder := self._by_rtx_ssrc.get(ssrc)) is not None:
                clear = link.unprotect(packet)
                original = None if clear is None else unwrap_retransmission(clear, forwarder.ssrc)
                if original is not None:
                    forwarder.forward(original)
            return
        forwarder.note_arrival(packet, arrival)
        if not forwarder.outlets:
            forwarder.packets_in += 1
            if forwarder.packets_in % KEEP_IN_STEP:
                return
        clear = link.unprotect(packet)
        if clear is not None:
            forwarder.forward(clear)

    async def _report_to_publisher(self) -> None:
        """Receiver reports and REMB to the publisher (:mod:`simulator.server.feedback`)."""
        while True:
            await asyncio.sleep(REPORT_INTERVAL)
            if self._feedback is not None and self._publish_link is not None:
                self._publish_link.send_rtcp(self._feedback.report())

    def _on_subscribe_rtcp(self, clear: bytes) -> None:
        for packet in parse_rtcp(clear):
            if isinstance(packet, RtcpPsfbPacket) and packet.fmt in (PSFB_PLI, PSFB_FIR):
                self.counts["plis_sent"] += 1
                subscription = self._by_outlet_ssrc.get(packet.media_ssrc)
                if subscription is not None:
                    subscription.forwarder.request_keyframe()
            elif isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTPFB_NACK:
                self.counts["nacked"] += len(packet.lost)
                subscription = self._by_outlet_ssrc.get(packet.media_ssrc)
                if subscription is not None and subscription.outlet is not None:
                    subscription.forwarder.on_nack(subscription.outlet, packet.lost)

    def media_counts(self) -> dict[str, int]:
        """What the SFU did for and because of this participant, so far (docs/reliability.md):
        as a subscriber, the sequence numbers it NACKed, the packets resent to it and the PLIs it
        sent; as a publisher, the keyframes and retransmissions it was asked for."""
        counts = dict(self.counts)
        counts["resent"] = self._resent + sum(
            s.outlet.resent for s in self._subscriptions.values() if s.outlet is not None
        )
        counts["keyframes_asked"] = sum(f.keyframes_asked for f in self.forwarders.values())
        counts["nacks_asked"] = sum(f.nacks_asked for f in self.forwarders.values())
        counts["packets_in"] = sum(f.packets_in for f in self.forwarders.values())
        counts["packets_out"] = sum(
            s.outlet.forwarded for s in self._subscriptions.values() if s.outlet is not None
        )
        return counts

    # --- subscribe ------------------------------------------------------------------------

    def resync(self) -> None:
        """Ask for the subscribe side to be brought up to date with the room."""
        self._dirty.set()

    def on_subscribe_answer(self, sdp: str) -> None:
        if self._answer is None or self._answer.done():
            raise ApiError(Codes.NEGOTIATION_FAILED, "no subscribe offer is waiting for an answer")
        self._answer.set_result(sdp)

    def _wanted(self) -> dict[tuple[str, Source], Forwarder]:
        wanted: dict[tuple[str, Source], Forwarder] = {}
        for other in self._room.others(self._participant):
            if other.sfu is None:
                continue
            for source in ("mic", "camera", "screen"):
                forwarder = other.sfu.forwarders.get(source)
                if forwarder is None or (source == "screen" and not other.record.screen_sharing):
                    continue
                wanted[(other.participant_id, source)] = forwarder
        return wanted

    async def _negotiate_when_dirty(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await self._sync()
            except (ApiError, TimeoutError) as exc:
                logger.warning("%s: subscribe negotiation failed: %s", self._participant.participant_id, exc)
                self._participant.send(protocol.Error(code=Codes.NEGOTIATION_FAILED, message=str(exc)))
            except Exception as exc:
                # E.g. InvalidStateError from a connection closed under the negotiator: the
                # subscriber can no longer receive, which is lost media, not a dead negotiator.
                logger.exception("%s: subscribe negotiation broke", self._participant.participant_id)
                self._media_lost(f"subscribe negotiation failed ({type(exc).__name__}: {exc})")
                return

    # --- liveness -------------------------------------------------------------------------

    def _watch(self, watched: Watched, name: str, *, rtp_expected: bool = False) -> MediaWatch:
        watch = MediaWatch(
            watched, lambda reason: self._media_lost(f"{name}: {reason}"), rtp_expected=rtp_expected
        )
        self._tasks.spawn(watch.watch(), f"watch-{name}")
        return watch

    def _media_lost(self, reason: str) -> None:
        """The participant's media is dead: it is dismissed, and leaves the room everywhere."""
        if self._closed or self.media_lost is not None:
            return
        self.media_lost = reason
        logger.warning("%s: media lost: %s", self._participant.participant_id, reason)
        self._participant.dismiss(
            protocol.Error(code=Codes.MEDIA_LOST, message=f"media lost: {reason}", fatal=True)
        )

    def _speaking(self, participant_id: str, now: float) -> bool:
        publisher = self._room.participants.get(participant_id)
        mic = None if publisher is None or publisher.sfu is None else publisher.sfu.forwarders.get("mic")
        return mic is not None and mic.audible_at is not None and now - mic.audible_at < SPEAKING

    def _choose(self, wanted: dict[tuple[str, Source], Forwarder]) -> dict[tuple[str, Source], Forwarder]:
        """Bundled: the streams that get a slot. Within a kind with more streams than slots:
        those speaking, then those holding a slot already (no flapping), then join order."""
        assert self.receive is not None
        limits = {"audio": self.receive.audio, "video": self.receive.video, "screen": self.receive.screen}
        by_kind: dict[protocol.SlotKind, list[tuple[str, Source]]] = {"audio": [], "video": [], "screen": []}
        for key in wanted:  # in join order
            by_kind[_carries(key[1], bundled=True)].append(key)
        loop = asyncio.get_running_loop()
        now = loop.time()
        chosen: dict[tuple[str, Source], Forwarder] = {}
        crowded = False
        for kind, candidates in by_kind.items():
            keys = candidates
            if len(keys) > limits[kind]:
                crowded = crowded or limits[kind] > 0  # with no slot of a kind, nobody can gain one
                keys = sorted(
                    keys, key=lambda k: (not self._speaking(k[0], now), k not in self._subscriptions)
                )[: limits[kind]]
            chosen.update((key, wanted[key]) for key in keys)
        if crowded and (self._review is None or self._review.cancelled() or self._review.when() <= now):
            # Who speaks changes without any message: look again in a while, as long as it matters.
            self._review = loop.call_later(SLOT_REVIEW, self._dirty.set)
        return chosen

    def _sync_slots(self) -> None:
        """Bundled: fill the receive slots with the streams chosen, and tell the client."""
        if self._publish_link is None:
            return  # resynced once connected
        wanted = self._choose(self._wanted())
        changed = False
        for key in list(self._subscriptions):
            if key not in wanted:
                self._unsubscribe(key)
                changed = True
        for key, forwarder in wanted.items():
            if key in self._subscriptions:
                continue
            carries = _carries(key[1], bundled=True)
            # _choose kept to the counts, so a slot of the kind is spare.
            spare = next(slot for slot in self._spare if slot.carries == carries)
            self._spare.remove(spare)
            self._subscriptions[key] = _Subscription(key, spare.line, None, forwarder, spare.last_outlet)
            changed = True
        if not changed:
            return
        self._open_outlets()
        self.slot_changes += 1
        slots: dict[str, protocol.StreamInfo] = {}
        # In the offer's m-line order (a mid is the client's string, not always a number).
        in_order = sorted(self._subscriptions.values(), key=lambda s: _order(s.line))
        for subscription in in_order:
            participant_id, source = subscription.key
            publisher = self._room.participants.get(participant_id)
            if publisher is not None and (mid := subscription.line.mid) is not None:
                slots[mid] = protocol.StreamInfo(
                    participant_id=participant_id, uid=publisher.record.uid, source=source
                )
        self._participant.send(protocol.Slots(slots=slots))

    async def _sync(self) -> None:
        if self._publish is None and self._transport is None:
            return  # its publish says how it receives (bundled or split); resynced after it
        if self.bundled:
            self._sync_slots()
            return
        wanted = self._wanted()
        changed = False
        for key in list(self._subscriptions):
            if key not in wanted:
                self._unsubscribe(key)
                changed = True
        new = [key for key in wanted if key not in self._subscriptions]
        if new and self._subscribe is None:
            self._subscribe = pc = open_peer_connection()

            @pc.on("connectionstatechange")
            def _connected() -> None:
                if pc.connectionState == "connected" and self._subscribe_link is None and not self._closed:
                    self._subscribe_link = RtpLink(pc, on_rtcp=self._on_subscribe_rtcp)
                    self._watch(pc, "subscribe")

        for key in new:
            forwarder = wanted[key]
            track = SilentTrack(forwarder.kind)
            assert self._subscribe is not None
            # An m-line is never added while one of its kind is spare, so a subscriber's
            # description stays as long as the most streams it has had at once.
            spare = next((slot for slot in self._spare if slot.carries == forwarder.kind), None)
            if spare is None:
                transceiver = self._subscribe.addTransceiver(track, direction="sendonly")
                follows = None
            else:
                self._spare.remove(spare)
                assert isinstance(spare.line, RTCRtpTransceiver)
                transceiver, follows = spare.line, spare.last_outlet
                transceiver.sender.replaceTrack(track)
                transceiver.direction = "sendonly"
            self._subscriptions[key] = _Subscription(key, transceiver, track, forwarder, follows)
            changed = True
        if changed and self._subscribe is not None:
            await self._negotiate(self._subscribe)
            self._open_outlets()

    def _open_outlets(self) -> None:
        """Start forwarding to the slots the subscriber has just accepted."""
        for subscription in self._subscriptions.values():
            if subscription.outlet is not None:
                continue
            address = _address(subscription.line)
            if address is None:
                continue
            outlet = Outlet(
                subscription.forwarder.kind,
                *address,
                self._receive_link,
                asyncio.get_running_loop().time,  # the forwarders' clock too
                follows=subscription.follows,
                max_height=NATIVE_MAX_HEIGHT,
            )
            subscription.outlet = outlet
            self._by_outlet_ssrc[outlet.ssrc] = subscription
            subscription.forwarder.attach(outlet)

    def _receive_link(self) -> RtpLink | None:
        """Where the others' media goes out to this participant."""
        return self._publish_link if self.bundled else self._subscribe_link

    def _unsubscribe(self, key: tuple[str, Source]) -> None:
        subscription = self._subscriptions.pop(key)
        if subscription.outlet is not None:
            self._resent += subscription.outlet.resent
            subscription.forwarder.detach(subscription.outlet)
            self._by_outlet_ssrc.pop(subscription.outlet.ssrc, None)
        last = subscription.outlet or subscription.follows
        transceiver = subscription.line
        if not isinstance(transceiver, RTCRtpTransceiver):
            # A receive slot keeps its SSRC and direction: emptying it needs no negotiation.
            self._spare.append(_SpareSlot(transceiver, last, _carries(key[1], bundled=True)))
            self._spare.sort(key=lambda slot: _order(slot.line))  # lowest mid first
            return
        assert subscription.track is not None
        subscription.track.stop()
        transceiver.sender.replaceTrack(None)
        transceiver.direction = "inactive"
        mid = transceiver.mid
        if mid in self._streams:
            self._streams[mid].active = False
        if not self._closed:
            self._spare.append(_SpareSlot(transceiver, last, _carries(key[1], bundled=False)))

    async def _negotiate(self, pc: RTCPeerConnection) -> None:
        await pc.setLocalDescription(await pc.createOffer())
        for key, subscription in self._subscriptions.items():
            mid = subscription.line.mid
            publisher = self._room.participants.get(key[0])
            if mid is not None and publisher is not None:
                self._streams[mid] = protocol.StreamInfo(
                    participant_id=key[0], uid=publisher.record.uid, source=key[1]
                )
        loop = asyncio.get_running_loop()
        self._answer = loop.create_future()
        self._participant.send(
            protocol.SubscribeOffer(sdp=pc.localDescription.sdp, streams=dict(self._streams))
        )
        async with asyncio.timeout(ANSWER_TIMEOUT):
            answer = await self._answer
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        except Exception as exc:
            raise ApiError(Codes.NEGOTIATION_FAILED, f"subscribe answer refused: {exc}") from None
        self.negotiations += 1

    @property
    def subscribe_mlines(self) -> int:
        """The m-lines that receive (split: bounded by the most streams at once; bundled: the slots)."""
        if self.bundled:
            return self._receive_slots
        return 0 if self._subscribe is None else len(self._subscribe.getTransceivers())

    @property
    def description_bytes(self) -> int:
        """The size of the SDP this participant holds now, both descriptions of every connection."""
        if self._descriptions is not None:
            return sum(map(len, self._descriptions))
        return sum(
            len(description.sdp)
            for pc in (self._publish, self._subscribe)
            if pc is not None
            for description in (pc.localDescription, pc.remoteDescription)
            if description is not None
        )

    # --- lifecycle ------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop negotiating and forwarding, then close both connections (idempotent)."""
        self._closed = True
        if self._review is not None:
            self._review.cancel()
        await self._tasks.aclose()  # the negotiator first
        for forwarder in self.forwarders.values():
            forwarder.outlets.clear()
        for key in list(self._subscriptions):
            self._unsubscribe(key)
        for link in (self._publish_link, self._subscribe_link):
            if link is not None:
                link.close()
        if self._answer is not None and not self._answer.done():
            self._answer.cancel()
        for pc in (self._publish, self._subscribe):
            if pc is not None:
                with contextlib.suppress(Exception):
                    await close_peer_connection(pc)
        if self._transport is not None:
            await self._transport.close()
