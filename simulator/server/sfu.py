"""The SFU side of one participant: a publish connection in, a subscribe connection out.

* **Publish** — the client offers its microphone, camera and screen slots (in that
  m-line order) once; the SFU answers. Once connected, the connection's RTP moves to
  an :class:`~simulator.media.rtp.RtpLink`, and each announced SSRC feeds a
  :class:`~simulator.server.forwarder.Forwarder`: the SFU forwards RTP, it never
  decodes (issue 6).
* **Subscribe** — the SFU offers the other participants' streams and renegotiates
  whenever the set changes (someone publishes, leaves, starts or stops sharing). Each
  stream is a send-only slot with an idle track (it gives the SSRC) and an
  :class:`~simulator.server.forwarder.Outlet` that re-addresses the publisher's
  packets to it. A slot whose stream has gone goes inactive and is the next of its
  kind to be filled, carrying on its numbering: the description grows only to the most
  streams a subscriber has had at once, however long the churn. The SFU is always the
  offerer here and the client always the offerer on publish, so offers never cross.
  Negotiations run one at a time in the negotiator.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from dataclasses import dataclass
from typing import Final, Literal

from aiortc import (
    RTCPeerConnection,
    RTCRtpCodecCapability,
    RTCRtpReceiver,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.exceptions import OperationError
from aiortc.rtp import RtcpPsfbPacket, RtcpRtpfbPacket

from simulator import protocol
from simulator.media.liveness import MediaWatch
from simulator.media.peer import close_peer_connection, open_peer_connection
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
from simulator.server.rooms import Participant, Room
from simulator.tasks import TaskSet

__all__ = ["SfuPeer"]

logger = logging.getLogger(__name__)

Source = Literal["mic", "camera", "screen"]
PUBLISH_SLOTS: Final[tuple[tuple[str, Source], ...]] = (
    ("audio", "mic"),
    ("video", "camera"),
    ("video", "screen"),
)


def _codecs(kind: str, wanted: set[str]) -> list[RTCRtpCodecCapability]:
    capabilities = RTCRtpReceiver.getCapabilities(kind)
    assert capabilities is not None, kind
    return [c for c in capabilities.codecs if c.mimeType.lower() in wanted]


FORWARDED_CODECS: Final = {
    "audio": _codecs("audio", {"audio/opus"}),
    "video": _codecs("video", {"video/vp8", "video/rtx"}),
}
"""What the SFU forwards: it recognises VP8 keyframes only, and maps payload types per
subscriber within one codec (a publisher in another codec would reach nobody)."""
FORWARDED_NAMES: Final = {"audio": "Opus", "video": "VP8"}
ANSWER_TIMEOUT: Final = 15.0
NATIVE_MAX_HEIGHT: Final = 360
"""The tallest simulcast layer a native subscriber is sent: virtual participants show no
picture bigger than that, and decoding a browser's 720p layer costs them ~4× the CPU of
its 360p one. (XMPP clients say theirs over the bridge channel.)"""
PSFB_FIR: Final = 4
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


@dataclass(eq=False)
class _Subscription:
    key: tuple[str, Source]
    transceiver: RTCRtpTransceiver
    track: SilentTrack
    forwarder: Forwarder
    follows: Outlet | None = None
    """The last outlet of a reused slot: the new one carries on its numbering."""
    outlet: Outlet | None = None


@dataclass(eq=False)
class _SpareSlot:
    """A subscribe m-line whose stream has gone: the next stream of its kind takes it."""

    transceiver: RTCRtpTransceiver
    last_outlet: Outlet | None


class SfuPeer:
    """The SFU's connections with one participant."""

    def __init__(self, participant: Participant, room: Room) -> None:
        self._participant = participant
        self._room = room
        self._tasks = TaskSet(f"sfu:{participant.participant_id}")
        self._publish: RTCPeerConnection | None = None
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

    def start(self) -> None:
        """Start negotiating the subscribe side as the room changes."""
        self._tasks.spawn(self._negotiate_when_dirty(), "negotiator")

    # --- publish --------------------------------------------------------------------------

    async def publish(self, sdp: str) -> str:
        """Answer the participant's publish offer; returns the answer SDP.

        A refused offer leaves nothing behind (no connection, no forwarder), is logged with
        the participant and the reason, and may be sent again corrected.
        """
        if self._publish is not None or self._closed:
            raise ApiError(Codes.NEGOTIATION_FAILED, "already publishing; the publish offer is sent once")
        pc = open_peer_connection()
        try:
            forwarders, by_ssrc, by_rtx = await self._accept_publish(pc, sdp)
            answer = await pc.createAnswer()
            await pc.setLocalDescription(answer)
        except ApiError as exc:
            logger.warning("%s: publish refused: %s", self._participant.participant_id, exc.message)
            with contextlib.suppress(Exception):
                await close_peer_connection(pc)
            raise
        self._publish = pc
        feedback = PublisherFeedback(
            {f.ssrc: f.kind for f in forwarders.values()},
            asyncio.get_running_loop().time,
            remb=_negotiated_remb(pc),
        )
        self.forwarders.update(forwarders)
        self._by_ssrc.update(by_ssrc)
        self._by_rtx_ssrc.update(by_rtx)

        @pc.on("connectionstatechange")
        def _connected() -> None:
            if pc.connectionState == "connected" and self._publish_link is None and not self._closed:
                self._publish_link = RtpLink(pc, on_rtp=self._on_publish_rtp, on_rtcp=feedback.on_rtcp)
                release_receivers(pc)
                self._feedback = feedback
                self._tasks.spawn(self._report_to_publisher(), "publisher-feedback")
                # The microphone always sends (silence when muted: docs/signalling.md), so a
                # publish connection without RTP is dead even if ICE still answers.
                self._publish_watch = self._watch(pc, "publish", rtp_expected=True)

        return str(pc.localDescription.sdp)

    async def _accept_publish(
        self, pc: RTCPeerConnection, sdp: str
    ) -> tuple[dict[str, Forwarder], dict[int, Forwarder], dict[int, Forwarder]]:
        """Check the offer against the publish rules (docs/signalling.md) and make its
        forwarders, touching nothing of this peer's: ApiError says what is wrong."""
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
        if [t.kind for t in transceivers] != [kind for kind, _ in PUBLISH_SLOTS] or any(
            t.mid is None for t in transceivers
        ):
            raise ApiError(
                Codes.NEGOTIATION_FAILED,
                "publish offer must have m-lines audio (mic), video (camera), video (screen)",
            )
        ssrcs = remote_ssrcs(pc)
        now = asyncio.get_running_loop().time
        forwarders: dict[str, Forwarder] = {}
        by_ssrc: dict[int, Forwarder] = {}
        by_rtx: dict[int, Forwarder] = {}
        for transceiver, (kind, source) in zip(transceivers, PUBLISH_SLOTS, strict=True):
            announced = ssrcs.get(transceiver.mid or "")
            if announced is None:
                raise ApiError(Codes.NEGOTIATION_FAILED, f"publish offer announces no SSRC for the {source}")
            ssrc, rtx = announced
            forwarder = Forwarder(kind, ssrc, lambda: self._publish_link, now)
            forwarders[source] = forwarder
            by_ssrc[ssrc] = forwarder
            if rtx is not None:
                by_rtx[rtx] = forwarder
        return forwarders, by_ssrc, by_rtx

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

    def _watch(self, pc: RTCPeerConnection, name: str, *, rtp_expected: bool = False) -> MediaWatch:
        watch = MediaWatch(
            pc, lambda reason: self._media_lost(f"{name}: {reason}"), rtp_expected=rtp_expected
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

    async def _sync(self) -> None:
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
            # description stays as long as the most streams it has had at once (issue 15 #3).
            spare = next((slot for slot in self._spare if slot.transceiver.kind == forwarder.kind), None)
            if spare is None:
                transceiver = self._subscribe.addTransceiver(track, direction="sendonly")
                follows = None
            else:
                self._spare.remove(spare)
                transceiver, follows = spare.transceiver, spare.last_outlet
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
            transceiver = subscription.transceiver
            codecs = transceiver._codecs
            if not codecs or codecs[0].payloadType is None:
                continue
            outlet = Outlet(
                subscription.forwarder.kind,
                transceiver.sender._ssrc,
                codecs[0].payloadType,
                lambda: self._subscribe_link,
                asyncio.get_running_loop().time,  # the forwarders' clock too
                follows=subscription.follows,
                max_height=NATIVE_MAX_HEIGHT,
            )
            subscription.outlet = outlet
            self._by_outlet_ssrc[outlet.ssrc] = subscription
            subscription.forwarder.attach(outlet)

    def _unsubscribe(self, key: tuple[str, Source]) -> None:
        subscription = self._subscriptions.pop(key)
        if subscription.outlet is not None:
            self._resent += subscription.outlet.resent
            subscription.forwarder.detach(subscription.outlet)
            self._by_outlet_ssrc.pop(subscription.outlet.ssrc, None)
        subscription.track.stop()
        subscription.transceiver.sender.replaceTrack(None)
        subscription.transceiver.direction = "inactive"
        mid = subscription.transceiver.mid
        if mid in self._streams:
            self._streams[mid].active = False
        if not self._closed:
            last = subscription.outlet or subscription.follows
            self._spare.append(_SpareSlot(subscription.transceiver, last))

    async def _negotiate(self, pc: RTCPeerConnection) -> None:
        await pc.setLocalDescription(await pc.createOffer())
        for key, subscription in self._subscriptions.items():
            mid = subscription.transceiver.mid
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
        """The m-lines of the subscribe description (bounded by the most streams at once)."""
        return 0 if self._subscribe is None else len(self._subscribe.getTransceivers())

    # --- lifecycle ------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop negotiating and forwarding, then close both connections (idempotent)."""
        self._closed = True
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
