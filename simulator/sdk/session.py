"""One participant's call session: token check, signalling, media, events (contract §A, §C, §E).

The session owns its socket, its peer connection(s) (bundled: one, with receive slots;
split: publish and subscribe), its synthetic sources and the analysers of what it
receives. It applies every change to
its own state first and emits the contract's callbacks after (STYLE rule 5), and it
tears down in the order of STYLE rule 6: producers, transports, final events, view.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import logging
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import aiohttp
import jwt
from aiortc import RTCPeerConnection, RTCRtpTransceiver, RTCSessionDescription
from aiortc.sdp import SessionDescription

from simulator import protocol
from simulator.media.analysers import ReceivedStream
from simulator.media.description import MediaLine, fresh_ssrcs, remote_transport, write_description
from simulator.media.impairment import Shaping, impair, shaping
from simulator.media.lean import (
    OFFERED_CODECS,
    Binding,
    LeanPublisher,
    LeanReceiver,
    LeanSource,
    ReceiveStats,
    bindings,
)
from simulator.media.liveness import MediaWatch, Watched
from simulator.media.ortc import IceDtlsTransport, LocalTransport, RemoteTransport
from simulator.media.passthrough import stop_decoding
from simulator.media.paths import make_sources
from simulator.media.peer import (
    FORWARDED_CODECS,
    close_peer_connection,
    open_peer_connection,
)
from simulator.media.rtp import RtpLink, announced_ssrcs, release_receivers, remote_ssrcs
from simulator.media.sources import PreEncodedTrack
from simulator.sdk.call_view import CallView, Tile
from simulator.sdk.constants import CALL_MODE, MODE_ALIASES
from simulator.sdk.errors import ApiError, CometChatCallsException, InvalidArgumentError, Messages
from simulator.sdk.events import (
    CallSwitchedToVideoEvent,
    CallUser,
    ListedUser,
    ParticipantInfo,
    UserMutedEvent,
)
from simulator.sdk.idle import IdleState, IdleTimer
from simulator.sdk.names import CallbackName
from simulator.sdk.settings import CallSettings, effective_idle_timeout
from simulator.tasks import TaskSet

if TYPE_CHECKING:
    from simulator.sdk.client import CallsClient

__all__ = ["CallSession", "ConnectPhases", "ReceiveStats", "SessionState"]

logger = logging.getLogger(__name__)

LEAVE_ACK_TIMEOUT: Final = 5.0
CONNECT_TIMEOUT: Final = 15.0


@dataclass(frozen=True, slots=True)
class ConnectPhases:
    """Where a publish connection's createOffer → connected went, in ms; the three add up to
    :attr:`CallSession.connect_ms`. A slow join under load shows here which side was slow."""

    answer_ms: float
    """createOffer → the SFU's answer in: the signalling round trip and the SFU's negotiation."""
    ice_ms: float
    """Answer → ICE completed: the connectivity checks and the nomination."""
    dtls_ms: float
    """ICE completed → DTLS connected: the handshake and the SRTP keys."""


async def _gather(transport: IceDtlsTransport) -> LocalTransport | None:
    """``transport``'s candidates and credentials; None if it was closed meanwhile."""
    try:
        return await transport.gather()
    except ConnectionError:
        return None


class SessionState(enum.Enum):
    JOINING = "joining"
    JOINED = "joined"
    LEAVING = "leaving"
    CLOSED = "closed"


def _user(record: protocol.ParticipantRecord, *, joined: bool) -> CallUser:
    if joined:
        return CallUser(record.uid, record.name, record.avatar, str(record.joined_at), False)
    return CallUser(record.uid, record.name, record.avatar)


def _info(record: protocol.ParticipantRecord) -> ParticipantInfo:
    return ParticipantInfo(
        uid=record.uid,
        name=record.name,
        avatar=record.avatar,
        is_video_muted=record.video_muted,
        is_audio_muted=record.audio_muted,
        joined_at=str(record.joined_at),
    )


def _without_remb(sdp: str) -> str:
    """A virtual participant sends a fixed profile (a load generator's load must not drift with
    the SFU's estimates), so it does not offer to follow REMB (docs/media.md)."""
    return "".join(line for line in sdp.splitlines(keepends=True) if not line.rstrip().endswith(" goog-remb"))


class ConnectionLostError(ApiError):
    """The signalling socket ended without the session ending: the backend went away."""


class CallSession:
    """A call session started by :meth:`CallsClient.start_session`."""

    def __init__(self, client: CallsClient, token: str, settings: CallSettings, view: CallView) -> None:
        self._client = client
        self._token = token
        self.settings = settings
        self.view = view
        self.state = SessionState.JOINING
        self.session_id: str | None = None
        self.me: protocol.ParticipantRecord | None = None
        self.participants: dict[str, protocol.ParticipantRecord] = {}
        """The others, in join order."""
        self.audio_only = settings.is_audio_only is True
        self.switched_to_video = False
        self.screen_sharing = False
        self.mode = MODE_ALIASES.get(str(settings.mode), str(settings.mode))
        self.joined = asyncio.Event()
        self.closed = asyncio.Event()
        self.media_connected = asyncio.Event()
        self.connect_ms: float | None = None
        """Publish connection: createOffer → connected, in ms (the join measure)."""
        self.connect_phases: ConnectPhases | None = None
        """Where :attr:`connect_ms` went."""
        self._tasks = TaskSet(f"session:{client.name}")
        self._outbox: asyncio.Queue[protocol.ClientMessage | None] = asyncio.Queue()
        self._leave_reason: protocol.LeaveReason | None = None
        self._run_task: asyncio.Task[None] | None = None
        self._failure: ApiError | None = None
        self._reconnects = 0
        """Attempts in a row since the last successful join (the reconnect policy's count)."""
        self._reconnecting = False
        self._watches: list[asyncio.Task[None]] = []
        self.shaping: Shaping | None = None
        """The participant's network shapers (their counters are what the network did)."""
        """Set when the session fails from outside its conversation (dead media)."""
        self._running = False
        self._publish_pc: RTCPeerConnection | None = None
        self._subscribe_pc: RTCPeerConnection | None = None
        self._transport: IceDtlsTransport | None = None
        """Bundled and lean: the one transport, no peer connection (its offer: ``_offered``)."""
        self._offered: list[MediaLine] = []
        self._gathered: asyncio.Task[LocalTransport | None] | None = None
        """Bundled and lean: the transport's gathering, started with the join (``_transport``)."""
        self._offered_at = 0.0
        self._answered_at: float | None = None
        self._ice_completed_at: float | None = None
        """The publish peer connection's (an ORTC transport keeps its own)."""
        self._slot_ssrcs: dict[str, tuple[int, int | None]] = {}
        """Bundled and lean: the SSRC the SFU sends with on each receive slot (from its answer)."""
        self._consumed: dict[str, ReceivedStream] = {}
        self._lean_publisher: LeanPublisher | None = None
        self._lean_receiver: LeanReceiver | None = None
        self.mic, self.camera, self.screen = make_sources(
            client.media_path,
            tone_hz=client.media.tone_hz,
            publisher_tag=client.media.publisher_tag,
            devices=client.devices,
            mic_muted=settings.start_audio_muted is True,
            camera_enabled=self._camera_should_run(video_muted=settings.start_video_muted is True),
        )
        self.video_muted = settings.start_video_muted is True
        self.idle = IdleTimer(
            client.clock,
            effective_idle_timeout(settings),
            on_expired=self._on_idle_expired,
            on_leave_now=self._on_idle_leave_now,
            on_change=self._redraw,
        )

    # --- lifecycle -----------------------------------------------------------------------

    def start(self, tasks: TaskSet) -> None:
        self.view.mount(self, self.settings)
        self._run_task = tasks.spawn(self._run(), "session")

    @property
    def active(self) -> bool:
        """In-call methods act only while this is true (K3)."""
        return self.state in (SessionState.JOINING, SessionState.JOINED)

    def leave(self, reason: protocol.LeaveReason = "end") -> None:
        """Leave the session; returns at once, teardown follows (``endSession``, §A.2 #5)."""
        if not self.active:
            return
        self.state = SessionState.LEAVING
        self._leave_reason = reason
        if self.idle.state is not IdleState.EXPIRED:
            self.idle.stop()
        if self.joined.is_set():
            period = self.idle.period if reason == "timeout" else None
            self._outbox.put_nowait(protocol.Leave(reason=reason, idle_timeout_period=period))
        if (not self.joined.is_set() or self._reconnecting) and self._running and self._run_task is not None:
            # Not joined (yet, or again): nobody to tell; stop the join where it is. (A join
            # that has not started yet sees LEAVING and goes straight to teardown.)
            self._run_task.cancel()

    def _emit(self, callback: CallbackName, *args: object) -> None:
        self._client.registry.dispatch(callback, *args, settings_listener=self.settings.call_listener)

    def _emit_error(self, error: CometChatCallsException) -> None:
        # §C onError: token and join errors reach the settings listener only.
        listener = self.settings.call_listener
        if listener is None:
            logger.warning("%s: %s (no settings listener to receive onError)", self._client.name, error)
            return
        self._client.registry.dispatch_to(listener, "on_error", error)

    async def _run(self) -> None:
        self._running = True
        try:
            if not self.active:
                return
            await self._verify_token()
            self._gather_ahead()
            while True:
                try:
                    async with self._client.http.ws_connect(
                        self._client.ws_url,
                        timeout=aiohttp.ClientWSTimeout(ws_close=5.0),
                        max_msg_size=0,
                        heartbeat=protocol.HEARTBEAT,  # a stalled backend is noticed, not waited on
                    ) as ws:
                        await self._converse(ws)
                    return
                except (ConnectionLostError, aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
                    if not await self._may_reconnect(exc):
                        raise
        except CometChatCallsException as exc:
            self._emit_error(exc)
        except asyncio.CancelledError:
            # Cancelled by _on_media_lost alone (not also by the owner): told, and the task goes on.
            task = asyncio.current_task()
            if self._failure is None or task is None or task.uncancel() > 0:
                raise
            self._emit_error(self._failure)
        except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
            self._emit_error(ApiError(Messages.UNKNOWN_API_ERROR, f"{Messages.UNKNOWN_API_MESSAGE} ({exc})"))
        except Exception as exc:  # e.g. an SDP the media stack refuses: told, never a silent end
            logger.exception("%s: the session failed", self._client.name)
            self._emit_error(ApiError(Messages.GENERIC_EXCEPTION, f"{type(exc).__name__}: {exc}"))
        finally:
            await self._teardown()

    async def _may_reconnect(self, lost: Exception) -> bool:
        """After a lost connection: drop the media and wait, if the policy allows another attempt."""
        policy = self._client.reconnect
        if policy is None or self.state is not SessionState.JOINED or self._reconnects >= policy.attempts:
            return False
        delay = policy.delay(self._reconnects)
        self._reconnects += 1
        logger.info(
            "%s: connection lost (%s); rejoining in %.1f s (attempt %d of %d)",
            self._client.name, lost, delay, self._reconnects, policy.attempts,
        )  # fmt: skip
        await self._drop_media()
        self._reconnecting = True
        try:
            await asyncio.sleep(delay)
        finally:
            self._reconnecting = False
        return self.state is SessionState.JOINED

    async def _drop_media(self) -> None:
        """Everything of the lost conversation's media goes; the sources stay for the next."""
        for watch in self._watches:
            watch.cancel()
        self._watches.clear()
        for lean in (self._lean_publisher, self._lean_receiver):
            if lean is not None:
                lean.close()
        self._lean_publisher = self._lean_receiver = None
        await self._close_transports()
        self._publish_pc = self._subscribe_pc = self._transport = None
        for stream in self._consumed.values():
            stream.active = False
        self._consumed.clear()
        self.media_connected.clear()
        self._outbox = asyncio.Queue()  # the lost conversation's answers mean nothing to the next

    async def _close_transports(self) -> None:
        for pc in (self._publish_pc, self._subscribe_pc):
            if pc is not None:
                with contextlib.suppress(Exception):
                    await close_peer_connection(pc)
        if self._transport is not None:
            await self._transport.close()
        if self._gathered is not None and not self._gathered.done():
            # Its transport is closed: it ends by itself, which a cancel mid-gathering (the task
            # set's close) would not let it do, leaving a socket half opened and unowned.
            await asyncio.wait({self._gathered}, timeout=CONNECT_TIMEOUT)

    async def _verify_token(self) -> None:
        try:
            payload = jwt.decode(self._token, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            payload = None
        data = payload.get("data") if isinstance(payload, dict) else None
        session_id = data.get("sessionId") if isinstance(data, dict) else None
        if not session_id or not isinstance(session_id, str):
            raise InvalidArgumentError(Messages.INVALID_ARGUMENT_EXCEPTION, Messages.CALL_TOKEN_INVALID)
        self.session_id = session_id
        await self._client.token_api.verify(self._token)

    async def _converse(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        state = protocol.MediaState(
            audio_muted=self.mic.muted, video_muted=self.video_muted, audio_only=self.audio_only
        )
        assert self.session_id is not None
        await ws.send_str(
            protocol.encode(protocol.Join(token=self._token, session_id=self.session_id, state=state))
        )
        writer = self._tasks.spawn(self._write(ws), "writer")
        try:
            async for raw in ws:
                if raw.type is not aiohttp.WSMsgType.TEXT:
                    break
                try:
                    message = protocol.decode_server_message(raw.data)
                except protocol.ProtocolError as exc:
                    logger.warning("%s: bad message from the backend: %s", self._client.name, exc)
                    continue
                if await self._on_message(message):
                    return
        finally:
            writer.cancel()
        if self.state is not SessionState.LEAVING:
            # The backend went away (stopped, killed, a close frame, a binary frame) without
            # a `left`: the application is told, then the session closes (never silently).
            why = f"the connection to the call ended (close code {ws.close_code})"
            raise ConnectionLostError(Messages.UNKNOWN_API_ERROR, f"{Messages.UNKNOWN_API_MESSAGE} ({why})")

    async def _write(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        while (message := await self._outbox.get()) is not None:
            await ws.send_str(protocol.encode(message))

    def _send(self, message: protocol.ClientMessage) -> None:
        if self.joined.is_set() and self.active:
            self._outbox.put_nowait(message)

    async def _teardown(self) -> None:
        self.state = SessionState.CLOSED
        if self.idle.state is not IdleState.EXPIRED:
            self.idle.stop()
        # Producers first, then transports.
        for source in (self.mic, self.camera, self.screen):
            source.stop()
        for lean in (self._lean_publisher, self._lean_receiver):
            if lean is not None:
                lean.close()
        await self._close_transports()
        for stream in self._consumed.values():
            stream.active = False
        await self._tasks.aclose()
        if self.idle.state is not IdleState.EXPIRED:
            # §E.6 (v): after a timeout the view keeps the "meeting ended" screen until Leave now.
            self.view.unmount()
        self.closed.set()
        self._client._session_closed(self)

    # --- messages from the backend ---------------------------------------------------------

    async def _on_message(self, message: protocol.ServerMessage) -> bool:
        """Act on one message; True when the conversation is over."""
        match message:
            case protocol.Joined():
                await self._on_joined(message)
            case protocol.PublishAnswer(sdp=sdp) if self._transport is not None:
                self._answered_at = asyncio.get_running_loop().time()
                self._on_lean_answer(self._transport, sdp)
            case protocol.PublishAnswer(sdp=sdp):
                assert self._publish_pc is not None
                self._answered_at = asyncio.get_running_loop().time()
                pc = self._publish_pc
                await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
                if self._client.media_path == "passthrough":
                    # Bundled: the slots' tracks exist now, and their receivers start once
                    # connected: count, don't decode.
                    for transceiver in pc.getTransceivers()[3:]:
                        stop_decoding(transceiver.receiver)
                if self._lean_receiver is not None:  # bundled: the slots' SSRCs are in the answer
                    self._lean_receiver.refresh(remote_ssrcs(pc))
            case protocol.SubscribeOffer():
                await self._on_subscribe_offer(message)
            case protocol.Slots(slots=slots):
                self._receive(slots)
            case protocol.ParticipantJoined(participant=record):
                self._on_participant_joined(record)
            case protocol.ParticipantLeft(participant=record):
                self._on_participant_left(record)
            case protocol.ParticipantState(participant=record):
                if record.participant_id in self.participants:
                    self.participants[record.participant_id] = record
                    self._redraw()
            case protocol.SwitchedToVideo():
                self._on_switched_to_video(message)
            case protocol.SessionCommand():
                logger.debug(
                    "%s: session command %s from %s", self._client.name, message.command, message.uid
                )
            case protocol.Error(code=code, message=text, fatal=fatal):
                error = ApiError(code, text)
                if fatal or not self.joined.is_set():
                    raise error
                self._emit_error(error)
            case protocol.Left():
                return True
        return False

    async def _on_joined(self, message: protocol.Joined) -> None:
        rejoined = self.me is not None
        self.me = message.me
        self.state = SessionState.JOINED if self.state is SessionState.JOINING else self.state
        self.joined.set()
        self._reconnects = 0
        if rejoined:
            self._on_rejoined(message.participants)
        else:
            # K10: the joiner hears of everyone already there, one at a time.
            for record in message.participants:
                self._on_participant_joined(record)
        if not self.participants:
            self.idle.set_alone(True)
        self._redraw()
        await self._publish()
        if rejoined and self.screen_sharing:
            self._send(protocol.StateUpdate(screen_sharing=True))

    def _on_rejoined(self, records: list[protocol.ParticipantRecord]) -> None:
        """Back after a reconnect: only the difference is news (people are known by uid, as
        everyone's participant IDs are new when the backend restarted)."""
        present = {r.uid for r in records}
        known = {r.uid for r in self.participants.values()}
        for record in list(self.participants.values()):
            if record.uid not in present:
                self._on_participant_left(record)
        self.participants = {pid: r for pid, r in self.participants.items() if r.uid in present}
        for record in records:
            if record.uid in known:
                stale = [pid for pid, r in self.participants.items() if r.uid == record.uid]
                for pid in stale:
                    del self.participants[pid]
                self.participants[record.participant_id] = record
            else:
                self._on_participant_joined(record)

    async def _publish(self) -> None:
        sources = [self.mic, self.camera, self.screen]
        receive = self._client.receive_slots if self._client.transport == "bundled" else None
        lean = [source for source in sources if isinstance(source, LeanSource)]
        if receive is not None and lean:  # the lean path's sources are all lean
            await self._publish_lean(lean, receive)
            return
        pc = self._publish_pc = open_peer_connection()
        loop = asyncio.get_running_loop()
        self._offered_at, self._answered_at, self._ice_completed_at = loop.time(), None, None

        @pc.on("iceconnectionstatechange")
        def _ice_state() -> None:
            if pc.iceConnectionState == "completed":
                self._ice_completed_at = loop.time()

        @pc.on("connectionstatechange")
        def _state() -> None:
            if pc.connectionState != "connected" or self.media_connected.is_set():
                return
            if lean and self.active:  # split: the subscribe connection receives
                self._lean_publisher = LeanPublisher(pc, bindings(pc, lean))
            self._connected(self._ice_completed_at)
            self._watch(pc, "publish")

        for source in sources:
            transceiver = pc.addTransceiver(source.track, direction="sendonly")
            transceiver.setCodecPreferences(FORWARDED_CODECS[source.track.kind])
            if isinstance(source, PreEncodedTrack):
                source.attach_sender(transceiver.sender)
        for kind, _ in receive.kinds() if receive is not None else ():
            pc.addTransceiver(kind, direction="recvonly").setCodecPreferences(FORWARDED_CODECS[kind])
        await pc.setLocalDescription(await pc.createOffer())
        self._shape(pc)
        self._outbox.put_nowait(protocol.Publish(sdp=_without_remb(pc.localDescription.sdp), receive=receive))

    async def _publish_lean(self, sources: list[LeanSource], receive: protocol.ReceiveSlots) -> None:
        """Bundled and lean: no peer connection at all. The offer is written from the sources
        and slots (:mod:`simulator.media.description`) on an ORTC transport, controlling as
        the offerer and so the DTLS server (the SFU answers ``a=setup:active``)."""
        self._offered_at, self._answered_at = asyncio.get_running_loop().time(), None
        self._lean_receiver = LeanReceiver(self._client.evidence)
        ahead, self._gathered = self._gathered, None
        if ahead is not None and self._transport is not None:
            transport, local = self._transport, await ahead
        else:
            transport = self._transport = IceDtlsTransport(controlling=True)
            local = await _gather(transport)
        if local is None:
            return  # the session ended meanwhile
        ssrcs = fresh_ssrcs(len(sources), set())
        receiving = receive.kinds()
        self._offered = [
            MediaLine(s.kind, str(n), "sendonly", [OFFERED_CODECS[s.kind]], ssrc)
            for n, (s, ssrc) in enumerate(zip(sources, ssrcs, strict=True))
        ] + [
            MediaLine(kind, str(len(sources) + n), "recvonly", [OFFERED_CODECS[kind]])
            for n, (kind, _) in enumerate(receiving)
        ]
        self._shape(transport)
        sdp = write_description(self._offered, local, setup="actpass")
        self._outbox.put_nowait(protocol.Publish(sdp=sdp, receive=receive))

    def _gather_ahead(self) -> None:
        """Bundled and lean: gather the transport while the join goes on, as a browser's ICE
        candidate pool does, so the offer waits for no gathering (a few turns of a busy event
        loop). A reconnect's offer gathers its own."""
        if self._client.transport != "bundled" or not isinstance(self.mic, LeanSource):
            return
        transport = self._transport = IceDtlsTransport(controlling=True)  # closed with the session
        self._gathered = self._tasks.spawn(_gather(transport), "gather")

    def _on_lean_answer(self, transport: IceDtlsTransport, sdp: str) -> None:
        """The SFU's answer to a lean bundled offer: the payload types it kept, its SSRC on
        each receive slot, its transport; connecting goes on in the background."""
        try:
            parsed = SessionDescription.parse(sdp)
        except Exception as exc:  # aiortc's parser asserts and raises on bad lines alike
            self._on_media_lost(f"publish answer unreadable ({type(exc).__name__})")
            return
        remote = remote_transport(parsed)
        if remote is None:
            self._on_media_lost("publish answer without ICE credentials or DTLS fingerprint")
            return
        answered = {str(m.rtp.muxId): m for m in parsed.media}
        sources = [s for s in (self.mic, self.camera, self.screen) if isinstance(s, LeanSource)]
        bound: list[Binding] = []
        for source, line in zip(sources, self._offered, strict=False):
            media = answered.get(line.mid)
            if media is not None and media.rtp.codecs and line.ssrc is not None:
                bound.append((source, line.ssrc, media.rtp.codecs[0].payloadType or 0))
        self._slot_ssrcs = {
            mid: announced
            for mid, media in answered.items()
            if media.direction == "sendonly" and (announced := announced_ssrcs(media)) is not None
        }
        self._tasks.spawn(self._connect_lean(transport, remote, bound), "connect")

    async def _connect_lean(
        self, transport: IceDtlsTransport, remote: RemoteTransport, bound: list[Binding]
    ) -> None:
        if not await transport.connect(remote):
            if transport.failure is not None:
                self._on_media_lost(f"publish: {transport.failure}")
            return
        receiver = self._lean_receiver
        if not self.active or receiver is None or self.media_connected.is_set():
            return
        publisher = self._lean_publisher = LeanPublisher(transport.dtls, bound, receiver.on_rtp)
        receiver.use(publisher.link)  # one link carries both ways (a socket takes one handler)
        receiver.refresh(self._slot_ssrcs)
        self._connected(transport.ice_completed_at)
        self._watch(transport, "publish")

    def _connected(self, ice_completed_at: float | None) -> None:
        """The publish side is up: how long it took, and where the time went."""
        now = asyncio.get_running_loop().time()
        self.connect_ms = (now - self._offered_at) * 1000
        answered = self._answered_at
        if answered is not None and ice_completed_at is not None:
            self.connect_phases = ConnectPhases(
                answer_ms=(answered - self._offered_at) * 1000,
                ice_ms=(ice_completed_at - answered) * 1000,
                dtls_ms=(now - ice_completed_at) * 1000,
            )
        self.media_connected.set()

    def _shape(self, pc: Watched) -> None:
        """Both connections share the participant's network (one access link), if it has one."""
        schedule = self._client.network
        if schedule is None:
            return
        if self.shaping is None:
            self.shaping = shaping(schedule, zlib.crc32(self._client.name.encode()))
        impair(pc, self.shaping)

    def _watch(self, pc: Watched, name: str) -> None:
        if self.active:
            watch = MediaWatch(pc, lambda reason: self._on_media_lost(f"{name}: {reason}"))
            self._watches.append(self._tasks.spawn(watch.watch(), f"watch-{name}"))

    def _on_media_lost(self, reason: str) -> None:
        """Dead media ends the session like a lost backend: ``onError``, then closed."""
        if not self.active or self._failure is not None:
            return
        logger.warning("%s: media lost: %s", self._client.name, reason)
        self._failure = ApiError(
            Messages.UNKNOWN_API_ERROR, f"{Messages.UNKNOWN_API_MESSAGE} (media lost: {reason})"
        )
        if self._run_task is not None:
            self._run_task.cancel()

    async def _on_subscribe_offer(self, message: protocol.SubscribeOffer) -> None:
        path = self._client.media_path
        if self._subscribe_pc is None:
            self._subscribe_pc = open_peer_connection()
            if path == "lean":
                receiver = self._lean_receiver = LeanReceiver(self._client.evidence)
                subscribe_pc = self._subscribe_pc

                @subscribe_pc.on("connectionstatechange")
                def _connected() -> None:
                    if subscribe_pc.connectionState == "connected" and self.active:
                        receiver.use(RtpLink(subscribe_pc, on_rtp=receiver.on_rtp))
                        receiver.refresh(remote_ssrcs(subscribe_pc))
                        release_receivers(subscribe_pc)

            watched = self._subscribe_pc

            @watched.on("connectionstatechange")
            def _watch() -> None:
                if watched.connectionState == "connected":
                    self._watch(watched, "subscribe")

        pc = self._subscribe_pc
        await pc.setRemoteDescription(RTCSessionDescription(sdp=message.sdp, type="offer"))
        if path == "passthrough":
            # Before the receivers start (aiortc starts them once connected): count, don't decode.
            for transceiver in pc.getTransceivers():
                if transceiver.mid not in self._consumed:
                    stop_decoding(transceiver.receiver)
        self._receive(message.streams)
        await pc.setLocalDescription(await pc.createAnswer())
        self._shape(pc)
        self._outbox.put_nowait(protocol.SubscribeAnswer(sdp=pc.localDescription.sdp))

    @property
    def receiving_connection(self) -> RTCPeerConnection | None:
        """The peer connection the others' media arrives on: the only one (bundled), or the
        subscribe one (split; None until the SFU first offers)."""
        return self._publish_pc if self._client.transport == "bundled" else self._subscribe_pc

    def _receive(self, streams: dict[str, protocol.StreamInfo]) -> None:
        """Key what arrives by m-line and by who fills it (a subscribe offer's ``streams``, or
        ``slots``): when a mid's participant or source changes, it is a new stream; a mid
        not named, or named inactive, carries nothing now."""
        pc = self.receiving_connection
        lines: list[tuple[str | None, str, RTCRtpTransceiver | None]] = (
            [(t.mid, t.kind, t) for t in pc.getTransceivers()]
            if pc is not None
            else [(line.mid, line.kind, None) for line in self._offered]
        )
        for mid, kind, transceiver in lines:
            stream = None if mid is None else self._consumed.get(mid)
            info = None if mid is None else streams.get(mid)
            if mid is None or info is None:
                if stream is not None:
                    stream.active = False
                continue
            if stream is None or (stream.participant_id, stream.source) != (info.participant_id, info.source):
                # A new slot, or a reused one (the SFU refills spare m-lines) now carrying another stream.
                if stream is not None:
                    stream.active = False
                elif self._lean_receiver is None and transceiver is not None:
                    track = transceiver.receiver.track
                    current = functools.partial(self._consumed.__getitem__, mid)
                    self._tasks.spawn(self._client.evidence.consume(track, current), f"recv-{mid}")
                stream = ReceivedStream(info.participant_id, info.uid, info.source, kind)
                self._consumed[mid] = stream
                self._client.evidence.add(stream)
                if self._lean_receiver is not None:
                    self._lean_receiver.expect(mid, stream)
            stream.active = info.active
        if self._lean_receiver is not None and pc is not None:
            self._lean_receiver.refresh(remote_ssrcs(pc))
            if self._lean_receiver.link is not None:
                release_receivers(pc)
        elif self._lean_receiver is not None:
            self._lean_receiver.refresh(self._slot_ssrcs)

    async def receive_stats(self) -> ReceiveStats:
        """What arrived on the subscribe connection, from RTP (lean: headers; else aiortc's stats)."""
        if self._lean_receiver is not None:
            return self._lean_receiver.totals()
        packets = lost = octets = 0
        jitters = []
        if (receiving := self.receiving_connection) is not None:
            for stat in (await receiving.getStats()).values():
                kind = getattr(stat, "type", "")
                if kind == "transport":  # aiortc 1.16 counts octets per transport only
                    octets += int(getattr(stat, "bytesReceived", 0) or 0)
                elif kind == "inbound-rtp":
                    packets += int(getattr(stat, "packetsReceived", 0) or 0)
                    lost += max(0, int(getattr(stat, "packetsLost", 0) or 0))
                    rate = 48_000 if getattr(stat, "kind", "") == "audio" else 90_000
                    jitters.append(float(getattr(stat, "jitter", 0) or 0) / rate * 1000)
        return ReceiveStats(packets, lost, octets, sum(jitters) / len(jitters) if jitters else 0.0)

    def _listed(self) -> list[ListedUser]:
        records = ([self.me] if self.me else []) + list(self.participants.values())
        return [ListedUser(r.participant_id, r.name, r.avatar, r.uid) for r in records]

    def _on_participant_joined(self, record: protocol.ParticipantRecord) -> None:
        self.participants[record.participant_id] = record
        self._redraw()
        self._emit("on_user_joined", _user(record, joined=True))
        self._emit("on_user_list_updated", self._listed())
        self.idle.set_alone(False)

    def _on_participant_left(self, record: protocol.ParticipantRecord) -> None:
        if self.participants.pop(record.participant_id, None) is None:
            return
        for stream in self._consumed.values():
            if stream.participant_id == record.participant_id:
                stream.active = False
        self._redraw()
        self._emit("on_user_left", _user(record, joined=False))
        self._emit("on_user_list_updated", self._listed())
        if not self.participants:
            self._emit("on_call_ended")  # K4: the one left alone, never the leaver
            self.idle.set_alone(True)

    def _on_switched_to_video(self, message: protocol.SwitchedToVideo) -> None:
        if not self.audio_only or self.switched_to_video:
            return
        self.switched_to_video = True
        self._apply_camera()
        event = CallSwitchedToVideoEvent(
            message.session_id, _info(message.initiator), _info(message.responder)
        )
        self._emit("on_call_switched_to_video", event)

    # --- local media state ------------------------------------------------------------------

    def _camera_should_run(self, *, video_muted: bool) -> bool:
        audio_only = self.settings.is_audio_only is True and not self.switched_to_video
        return not audio_only and not video_muted

    def _apply_camera(self) -> None:
        self.camera.set_enabled(self._camera_should_run(video_muted=self.video_muted))
        self._redraw()

    def mute_audio(self, muted: bool) -> None:
        self.mic.muted = muted
        if self.me is not None:
            self.me.audio_muted = muted
        self._send(protocol.StateUpdate(audio_muted=muted))
        self._redraw()

    def pause_video(self, paused: bool) -> None:
        self.video_muted = paused
        if self.me is not None:
            self.me.video_muted = paused
        self._apply_camera()
        self._send(protocol.StateUpdate(video_muted=paused))

    def start_screen_share(self) -> None:
        if self.screen_sharing:
            return
        self.screen_sharing = True
        self.screen.set_enabled(True)
        self._send(protocol.StateUpdate(screen_sharing=True))
        self._redraw()
        self._emit("on_screen_share_started")

    def stop_screen_share(self) -> None:
        if not self.screen_sharing:
            return
        self.screen_sharing = False
        self.screen.set_enabled(False)
        self._send(protocol.StateUpdate(screen_sharing=False))
        self._redraw()
        self._emit("on_screen_share_stopped")

    def set_mode(self, mode: object) -> None:
        # K37/K38: stored as given (GRID read as TILE); no callback; settings untouched.
        self.mode = MODE_ALIASES.get(str(mode), str(mode))
        self.view.mode = self.mode

    def switch_to_video_call(self) -> None:
        if self.audio_only and not self.switched_to_video:
            self._send(protocol.SwitchToVideo())

    # --- the call view's buttons (CallViewHost) ----------------------------------------------

    def press_end_call(self) -> None:
        # K21: the button emits, then leaves by itself; the app's end_session() is a no-op after.
        self._emit("on_call_end_button_pressed")
        self.leave("button")

    def press_mute_audio(self) -> None:
        muted = not self.mic.muted
        self.mute_audio(muted)
        if self.me is not None:
            info = _info(self.me)
            self._emit("on_user_muted" if muted else "on_user_un_muted", UserMutedEvent(info, info))

    def press_pause_video(self) -> None:
        self.pause_video(not self.video_muted)

    def press_screen_share(self) -> None:
        if self.screen_sharing:
            self.stop_screen_share()
        else:
            self.start_screen_share()

    def press_mode(self) -> None:
        spotlight = CALL_MODE["SPOTLIGHT"]
        self.set_mode(CALL_MODE["DEFAULT"] if self.mode == spotlight else spotlight)

    def press_switch_to_video(self) -> None:
        self.switch_to_video_call()

    def press_stay(self) -> None:
        self.idle.stay()

    def press_leave_now(self) -> None:
        self.idle.leave_now()

    # --- idle timeout effects (§E) ------------------------------------------------------------

    def _on_idle_expired(self) -> None:
        # §E.6: command + leave go out together; locally onSessionTimeout, then the handlers go.
        self.leave("timeout")
        self._emit("on_session_timeout")

    def _on_idle_leave_now(self, after_expiry: bool) -> None:
        self._emit("on_call_end_button_pressed")
        if after_expiry:
            self.view.unmount()  # §E.7: the ended screen closes
        else:
            self.leave("button")  # §E.5

    def _redraw(self) -> None:
        view = self.view
        if self.me is not None:
            records = [self.me, *self.participants.values()]
            view.tiles = tuple(
                Tile(
                    r.participant_id,
                    r.uid,
                    r.name,
                    r.audio_muted,
                    r.video_muted,
                    r.screen_sharing,
                    r is self.me,
                )
                for r in records
            )
        view.idle_state = self.idle.state if hasattr(self, "idle") else IdleState.OFF
        view.idle_seconds_left = self.idle.seconds_left if hasattr(self, "idle") else None
