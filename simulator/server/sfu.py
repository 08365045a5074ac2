"""The SFU side of one participant: a publish connection in, a subscribe connection out.

* **Publish** — the client offers its microphone, camera and screen slots (in that
  m-line order) once; the SFU answers. Each incoming stream stops being decoded
  (:func:`stop_decoding`) and feeds a :class:`FanOut`.
* **Subscribe** — the SFU offers the other participants' streams and renegotiates
  whenever the set changes (someone publishes, leaves, starts or stops sharing).
  The SFU is always the offerer here and the client always the offerer on publish,
  so offers never cross. Negotiations run one at a time in :meth:`SfuPeer.run`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Final, Literal

from aiortc import RTCPeerConnection, RTCRtpTransceiver, RTCSessionDescription

from simulator import protocol
from simulator.media.passthrough import FanOut, ForwardedTrack, stop_decoding
from simulator.media.peer import close_peer_connection, open_peer_connection
from simulator.server.errors import ApiError, Codes
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
ANSWER_TIMEOUT: Final = 15.0


@dataclass(eq=False)
class _Subscription:
    key: tuple[str, Source]
    transceiver: RTCRtpTransceiver
    track: ForwardedTrack


class SfuPeer:
    """The SFU's connections with one participant."""

    def __init__(self, participant: Participant, room: Room) -> None:
        self._participant = participant
        self._room = room
        self._tasks = TaskSet(f"sfu:{participant.participant_id}")
        self._publish: RTCPeerConnection | None = None
        self._subscribe: RTCPeerConnection | None = None
        self.fanouts: dict[Source, FanOut] = {}
        self._subscriptions: dict[tuple[str, Source], _Subscription] = {}
        self._streams: dict[str, protocol.StreamInfo] = {}
        self._dirty = asyncio.Event()
        self._answer: asyncio.Future[str] | None = None
        self._closed = False
        self.negotiations = 0

    def start(self) -> None:
        """Start negotiating the subscribe side as the room changes."""
        self._tasks.spawn(self._negotiate_when_dirty(), "negotiator")

    # --- publish --------------------------------------------------------------------------

    async def publish(self, sdp: str) -> str:
        """Answer the participant's publish offer; returns the answer SDP."""
        if self._publish is not None or self._closed:
            raise ApiError(Codes.NEGOTIATION_FAILED, "already publishing; the publish offer is sent once")
        pc = self._publish = open_peer_connection()
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        except Exception as exc:
            raise ApiError(Codes.NEGOTIATION_FAILED, f"publish offer refused: {exc}") from None
        transceivers = pc.getTransceivers()
        if [t.kind for t in transceivers] != [kind for kind, _ in PUBLISH_SLOTS]:
            raise ApiError(
                Codes.NEGOTIATION_FAILED,
                "publish offer must have m-lines audio (mic), video (camera), video (screen)",
            )
        for transceiver, (_, source) in zip(transceivers, PUBLISH_SLOTS, strict=True):
            transceiver.direction = "recvonly"
            stop_decoding(transceiver.receiver)
            fanout = FanOut(transceiver.receiver.track, transceiver.receiver)
            self.fanouts[source] = fanout
            self._tasks.spawn(fanout.run(), f"fanout-{source}")
        await pc.setLocalDescription(await pc.createAnswer())
        return str(pc.localDescription.sdp)

    # --- subscribe ------------------------------------------------------------------------

    def resync(self) -> None:
        """Ask for the subscribe side to be brought up to date with the room."""
        self._dirty.set()

    def on_subscribe_answer(self, sdp: str) -> None:
        if self._answer is None or self._answer.done():
            raise ApiError(Codes.NEGOTIATION_FAILED, "no subscribe offer is waiting for an answer")
        self._answer.set_result(sdp)

    def _wanted(self) -> dict[tuple[str, Source], FanOut]:
        wanted: dict[tuple[str, Source], FanOut] = {}
        for other in self._room.others(self._participant):
            if other.sfu is None:
                continue
            for source in ("mic", "camera", "screen"):
                fanout = other.sfu.fanouts.get(source)
                if fanout is None or (source == "screen" and not other.record.screen_sharing):
                    continue
                wanted[(other.participant_id, source)] = fanout
        return wanted

    async def _negotiate_when_dirty(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await self._sync()
            except (ApiError, TimeoutError) as exc:
                logger.warning("%s: subscribe negotiation failed: %s", self._participant.participant_id, exc)
                self._participant.connection.send(
                    protocol.Error(code=Codes.NEGOTIATION_FAILED, message=str(exc))
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
            self._subscribe = open_peer_connection()
        for key in new:
            fanout = wanted[key]
            track = fanout.subscribe()
            assert self._subscribe is not None
            transceiver = self._subscribe.addTransceiver(track, direction="sendonly")
            fanout.attach_sender(transceiver.sender)
            self._subscriptions[key] = _Subscription(key, transceiver, track)
            changed = True
        if changed and self._subscribe is not None:
            await self._negotiate(self._subscribe)

    def _unsubscribe(self, key: tuple[str, Source]) -> None:
        subscription = self._subscriptions.pop(key)
        subscription.track.stop()
        subscription.transceiver.sender.replaceTrack(None)
        subscription.transceiver.direction = "inactive"
        mid = subscription.transceiver.mid
        if mid in self._streams:
            self._streams[mid].active = False

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
        self._participant.connection.send(
            protocol.SubscribeOffer(sdp=pc.localDescription.sdp, streams=dict(self._streams))
        )
        async with asyncio.timeout(ANSWER_TIMEOUT):
            answer = await self._answer
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        except Exception as exc:
            raise ApiError(Codes.NEGOTIATION_FAILED, f"subscribe answer refused: {exc}") from None
        self.negotiations += 1

    # --- lifecycle ------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop negotiating and forwarding, then close both connections (idempotent)."""
        self._closed = True
        await self._tasks.aclose()  # producers first: the negotiator and the fan-outs
        for key in list(self._subscriptions):
            self._unsubscribe(key)
        if self._answer is not None and not self._answer.done():
            self._answer.cancel()
        for pc in (self._publish, self._subscribe):
            if pc is not None:
                with contextlib.suppress(Exception):
                    await close_peer_connection(pc)
