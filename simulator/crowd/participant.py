"""A virtual participant: a Calls SDK client (and a Chat SDK client for ringing) acting
out its planned actions and recording what it measured.

Times are seconds since the run's start (``clock()``), the same origin in every worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable
from typing import Any, Final

import aiohttp

from simulator.chat import Call, ChatClient
from simulator.crowd.metrics import Metrics
from simulator.crowd.plan import CALL_OUTCOME_TIMEOUT, RING_TIMEOUT, Action, PlannedParticipant
from simulator.media.devices import FakeDevices
from simulator.sdk import (
    CallAppSettings,
    CallsClient,
    CallSettingsBuilder,
    CallView,
    CometChatCallsException,
    MediaProfile,
)
from simulator.sdk.names import CALLBACKS
from simulator.tasks import TaskSet

__all__ = ["VirtualParticipant"]

logger = logging.getLogger(__name__)

JOIN_TIMEOUT: Final = 20.0
FIRST_MEDIA_TIMEOUT: Final = 15.0
HEARD_SAMPLE_EVERY: Final = 0.5
ACCEPTED_CALL_LENGTH: Final = 2.0


class VirtualParticipant:
    """One planned participant."""

    def __init__(
        self,
        planned: PlannedParticipant,
        *,
        app: CallAppSettings,
        auth_token: str,
        metrics: Metrics,
        clock: Callable[[], float],
        http: aiohttp.ClientSession,
        ringing: bool,
        networks: dict[str, str] | None = None,
    ) -> None:
        self.planned = planned
        self.uid = planned.identity.uid
        self._app = app
        self._auth_token = auth_token
        self._metrics = metrics
        self._clock = clock
        self._ringing = ringing
        self._networks = networks or {}
        self.devices = FakeDevices()
        self.client = CallsClient(
            name=self.uid,
            devices=self.devices,
            media=MediaProfile(planned.tone_hz, planned.index + 1),
            http=http,
            media_path=planned.media_path,
            network=planned.network,
            transport=planned.transport,
        )
        self.chat = ChatClient(name=self.uid, http=http) if ringing else None
        self.view = CallView(self.uid)
        self.in_session = False
        self._tasks = TaskSet(f"participant:{self.uid}")
        self._plugged: list[str] = []
        self._answers: dict[str, str] = {}
        self._incoming: dict[str, Call] = {}
        self._outcomes: dict[str, asyncio.Future[str]] = {}
        self._last_list: list[str] = []

    # --- setup ------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.client.init(self._app)
        if self.chat is not None:
            await self.chat.init(self._app)
            await self.chat.login_with_auth_token(self._auth_token)
            self.chat.add_call_listener("crowd", self._chat_listener())

    def _listener(self) -> dict[str, Callable[..., None]]:
        metrics, uid = self._metrics, self.uid

        def left(user: Any) -> None:
            metrics.count("events", uid=uid)
            metrics.observe(
                "left", self._clock(), observer=uid, left=user.uid, session=self.planned.session_id
            )

        def listed(users: list[Any]) -> None:
            metrics.count("events", uid=uid)
            self._last_list = sorted(u.uid for u in users)

        def error(exc: Any) -> None:
            metrics.count("errors", uid=uid)
            metrics.observe("error", self._clock(), uid=uid, code=getattr(exc, "code", str(exc)))

        def other(*_: Any) -> None:
            metrics.count("events", uid=uid)

        # Every callback counts; three also record what the invariants need.
        handlers: dict[str, Callable[..., None]] = dict.fromkeys(CALLBACKS, other)
        handlers |= {"on_user_left": left, "on_user_list_updated": listed, "on_error": error}
        return handlers

    # --- acting -------------------------------------------------------------------------------

    async def act(self, action: Action) -> None:
        """Carry out one planned action; failures are counted, never raised."""
        try:
            await self._act(action)
        except (CometChatCallsException, TimeoutError, aiohttp.ClientError) as exc:
            self._metrics.count("errors", uid=self.uid)
            self._metrics.observe(
                "error", self._clock(), uid=self.uid, action=action.kind, code=repr(exc)[:200]
            )

    async def _act(self, action: Action) -> None:
        client = self.client
        match action.kind:
            case "join":
                await self._join()
            case "leave":
                await self._leave()
            case "mute" | "unmute" if self.in_session:
                client.mute_audio(action.kind == "mute")
                self._metrics.observe("mute", self._clock(), uid=self.uid, muted=action.kind == "mute")
            case "pause" | "resume" if self.in_session:
                client.pause_video(action.kind == "pause")
                self._metrics.observe("pause", self._clock(), uid=self.uid, paused=action.kind == "pause")
            case "share-start" if self.in_session:
                client.start_screen_share()
            case "share-stop" if self.in_session:
                client.stop_screen_share()
            case "switch-to-video" if self.in_session:
                client.switch_to_video_call()
            case "plug-device":
                device = FakeDevices.make("audioinput", f"USB Microphone {len(self._plugged) + 1}")
                self.devices.plug(device)
                self._plugged.append(device.device_id)
            case "unplug-device" if self._plugged:
                self.devices.unplug(self._plugged.pop())
            case "press-mute" if self.in_session and self.view.shows("mute_audio"):
                self._press_mute()
                self._tasks.spawn(self._press_mute_again(), "press-mute")
            case "snapshot" if self.in_session:
                self._metrics.observe(
                    "list",
                    self._clock(),
                    uid=self.uid,
                    session=self.planned.session_id,
                    members=self._last_list,
                )
            case "ring" if self.chat is not None:
                self._tasks.spawn(self._ring(action), f"ring-{action.target}")
            case "answer":
                self._answers[action.target] = action.detail
                if (call := self._incoming.pop(action.target, None)) is not None:
                    await self._answer(call, action.detail)

    def _press_mute(self) -> None:
        self.view.press("mute_audio")
        session = self.client.session
        muted = bool(session and session.mic.muted)
        self._metrics.observe("mute", self._clock(), uid=self.uid, muted=muted)

    async def _press_mute_again(self) -> None:
        await asyncio.sleep(1.0)  # a person's second press, a second later (behaviour, not sync)
        if self.in_session and self.view.shows("mute_audio"):
            self._press_mute()

    async def _join(self) -> None:
        if self.in_session:
            return
        token = await self.client.generate_token(self.planned.session_id, self._auth_token)
        builder = CallSettingsBuilder().set_call_listener(self._listener())
        builder.set_is_audio_only_call(self.planned.profile == "audio-only")
        started = asyncio.get_running_loop().time()
        await self.client.start_session(token.token, builder.build(), self.view)
        await self.client.wait_joined(JOIN_TIMEOUT)
        session = self.client.session
        assert session is not None
        async with asyncio.timeout(JOIN_TIMEOUT):
            await session.media_connected.wait()
        joined = asyncio.get_running_loop().time()
        self._metrics.record("join_ms", (joined - started) * 1000)
        if session.connect_ms is not None:
            self._metrics.record("connect_ms", session.connect_ms)
        if session.connect_phases is not None:
            for field, milliseconds in dataclasses.asdict(session.connect_phases).items():
                self._metrics.record(f"connect_{field}", milliseconds)  # connect_ice_ms, … (CONNECT_PHASES)
        self._metrics.count("joins", uid=self.uid)
        self._metrics.observe("joined", self._clock(), uid=self.uid, session=self.planned.session_id)
        self.in_session = True
        if session.participants:
            self._tasks.spawn(self._first_media(started, video=False), "first-audio")
            if not self.client.session or not self.client.session.audio_only:
                self._tasks.spawn(self._first_media(started, video=True), "first-video")
        if self.planned.media_path != "passthrough":  # who is heard: tones decoded, or marks read
            self._tasks.spawn(self._sample_heard(session), "heard")

    async def _first_media(self, started: float, *, video: bool) -> None:
        evidence = self.client.evidence

        def arrived() -> bool:
            if self.planned.media_path == "passthrough":  # neither decoded nor marks read
                return any(s.frames for s in evidence.streams if s.kind == ("video" if video else "audio"))
            if video:
                return any(s.marked_frames for s in evidence.streams if s.kind == "video")
            return bool(evidence.heard())

        try:
            await evidence.wait_for(arrived, FIRST_MEDIA_TIMEOUT)
        except TimeoutError:
            self._metrics.count("first_video_timeouts" if video else "first_audio_timeouts", uid=self.uid)
            return
        elapsed = (asyncio.get_running_loop().time() - started) * 1000
        self._metrics.record("first_video_ms" if video else "first_audio_ms", elapsed)

    async def _sample_heard(self, session: Any) -> None:
        while self.in_session and self.client.session is session:
            heard = sorted(self.client.evidence.heard())
            self._metrics.observe("heard", self._clock(), uid=self.uid, heard=heard)
            await asyncio.sleep(HEARD_SAMPLE_EVERY)  # sampling period of a measurement

    async def _leave(self) -> None:
        if not self.in_session:
            return
        self.in_session = False
        self._harvest()
        await self._harvest_rtp()
        self.client.end_session()
        with contextlib.suppress(TimeoutError):
            await self.client.wait_closed(JOIN_TIMEOUT)

    async def _harvest_rtp(self) -> None:
        """RTP packets received and lost on this session's subscribe connection, before it closes."""
        session = self.client.session
        if (network := self.planned.network_name) and session is not None:
            with contextlib.suppress(Exception):
                stats = await session.receive_stats()  # either path's (lean: from the headers)
                self._metrics.count(f"packets_received@{network}", stats.packets)
                self._metrics.count(f"packets_lost@{network}", stats.lost)
        pc = None if session is None else session.receiving_connection
        if pc is None:
            return
        with contextlib.suppress(Exception):
            for stat in (await pc.getStats()).values():
                if getattr(stat, "type", "") == "inbound-rtp":
                    received = int(getattr(stat, "packetsReceived", 0) or 0)
                    self._metrics.count("packets_received", received, uid=self.uid)
                    lost = max(0, int(getattr(stat, "packetsLost", 0) or 0))
                    self._metrics.count("packets_lost", lost, uid=self.uid)

    def _harvest(self) -> None:
        """Fold this session's received media into the metrics (and into its network's, if it has one)."""
        network = self.planned.network_name
        for stream in self.client.evidence.streams:
            # What the others saw of a network's participants: counted here, where received.
            if source_network := self._networks.get(stream.uid):
                self._metrics.count(f"seen_frames_from@{source_network}", stream.frames)
                if stream.kind == "video":
                    self._metrics.count(f"seen_freezes_from@{source_network}", stream.freezes)
                for latency in stream.latencies_ms:
                    self._metrics.record(f"seen_latency_ms_from@{source_network}", latency)
            for latency in stream.latencies_ms:
                self._metrics.record("latency_ms", latency)
                if network:
                    self._metrics.record(f"latency_ms@{network}", latency)
            self._metrics.count("frames_received", stream.frames, uid=self.uid)
            if stream.kind == "video":
                self._metrics.count("video_frames_marked", stream.marked_frames, uid=self.uid)
                self._metrics.count("freezes", stream.freezes, uid=self.uid)
                if network:
                    self._metrics.count(f"freezes@{network}", stream.freezes)
        session = self.client.session
        if network and session is not None and session.shaping is not None:
            for direction in ("up", "down"):
                shaper = getattr(session.shaping, direction)
                self._metrics.count(f"net_{direction}_sent@{network}", shaper.sent)
                self._metrics.count(
                    f"net_{direction}_dropped@{network}", shaper.dropped + shaper.queue_dropped
                )

    # --- ringing --------------------------------------------------------------------------------

    def _chat_listener(self) -> dict[str, Callable[[Call], None]]:
        def incoming(call: Call) -> None:
            initiator = call.get_call_initiator()
            caller = initiator.uid if initiator else ""
            answer = self._answers.pop(caller, None)
            if answer is None:
                self._incoming[caller] = call  # the answer action has not run yet
            else:
                self._tasks.spawn(self._answer(call, answer), "answer")

        def finished(call: Call) -> None:
            session_id = call.get_session_id() or ""
            if (future := self._outcomes.get(session_id)) is not None and not future.done():
                future.set_result(str(call.get_status()))

        def accepted(call: Call) -> None:
            session_id = call.get_session_id() or ""
            self._tasks.spawn(self._end_after_a_while(session_id), "end-call")

        return {
            "on_incoming_call_received": incoming,
            "on_outgoing_call_accepted": accepted,
            "on_outgoing_call_rejected": finished,
            "on_call_ended_message_received": lambda call: None,
            "on_incoming_call_cancelled": lambda call: None,
        }

    async def _answer(self, call: Call, answer: str) -> None:
        assert self.chat is not None
        session_id = call.get_session_id() or ""
        if answer == "accept":
            await self.chat.accept_call(session_id)
        elif answer == "reject":
            await self.chat.reject_call(session_id, "rejected")
        # ring-out: let it ring

    async def _end_after_a_while(self, session_id: str) -> None:
        assert self.chat is not None
        await asyncio.sleep(ACCEPTED_CALL_LENGTH)  # the call's planned length
        ended = await self.chat.end_call(session_id)
        future = self._outcomes.get(session_id)
        if future is not None and not future.done():
            future.set_result(str(ended.get_status()) if ended else "none")

    async def _ring(self, action: Action) -> None:
        assert self.chat is not None
        started = self._clock()
        outcome = "error"
        try:
            call = await self.chat.initiate_call(Call(action.target, "audio", "user"), RING_TIMEOUT)
            future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            self._outcomes[call.get_session_id() or ""] = future
            async with asyncio.timeout(CALL_OUTCOME_TIMEOUT):
                outcome = await future
        except (CometChatCallsException, TimeoutError) as exc:
            outcome = f"error:{getattr(exc, 'code', type(exc).__name__)}"
        self._metrics.observe(
            "ring", started, caller=self.uid, callee=action.target, planned=action.detail, outcome=outcome
        )

    # --- lifecycle ------------------------------------------------------------------------------

    async def aclose(self) -> None:
        if self.in_session:
            await self._leave()
        await self._tasks.aclose()
        await self.client.aclose()
        if self.chat is not None:
            await self.chat.aclose()
