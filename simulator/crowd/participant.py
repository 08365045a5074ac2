"""A virtual participant: a client of one of the backend's doors (and a Chat SDK client for
ringing) acting out its planned actions and recording what it measured.

:class:`VirtualParticipant` is what every door shares: the plan's actions, ringing, the
callbacks counted, the media evidence harvested. :class:`NativeParticipant` speaks callsim's
own signalling through the Python Calls SDK; the Jitsi door's participant is in
:mod:`simulator.crowd.jitsi`.

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
from simulator.media.analysers import MediaEvidence
from simulator.media.devices import FakeDevices
from simulator.media.lean import ReceiveStats
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

__all__ = ["NativeParticipant", "VirtualParticipant"]

logger = logging.getLogger(__name__)

JOIN_TIMEOUT: Final = 20.0
FIRST_MEDIA_TIMEOUT: Final = 15.0
HEARD_SAMPLE_EVERY: Final = 0.5
ACCEPTED_CALL_LENGTH: Final = 2.0


class VirtualParticipant:
    """One planned participant; a door's subclass connects it (``_join``/``_leave``) and
    carries out what only that door can do (``_act_in_session``)."""

    FAILURES: tuple[type[Exception], ...] = (
        CometChatCallsException,
        TimeoutError,
        aiohttp.ClientError,
        ConnectionError,
    )
    """What an action may fail with: counted (by code) and observed, never raised."""

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
        self._http = http
        self._ringing = ringing
        self._networks = networks or {}
        self.devices = FakeDevices()
        self.chat = ChatClient(name=self.uid, http=http) if ringing else None
        self.in_session = False
        self._tasks = TaskSet(f"participant:{self.uid}")
        self._plugged: list[str] = []
        self._answers: dict[str, str] = {}
        self._incoming: dict[str, Call] = {}
        self._outcomes: dict[str, asyncio.Future[str]] = {}
        self._last_list: list[str] = []

    @property
    def evidence(self) -> MediaEvidence:
        """What its current (or last) session received."""
        raise NotImplementedError

    @property
    def session_key(self) -> object:
        """Its current session (a new object each join), None out of one."""
        raise NotImplementedError

    async def receive_stats(self) -> ReceiveStats | None:
        """RTP its current session received (from the headers), None out of one."""
        raise NotImplementedError

    async def _join(self) -> None:
        raise NotImplementedError

    async def _leave(self) -> None:
        raise NotImplementedError

    async def _act_in_session(self, action: Action) -> None:
        """An action only a session can carry out (mute, pause, share, …), in one."""
        raise NotImplementedError

    # --- setup ------------------------------------------------------------------------------

    async def start(self) -> None:
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
        except self.FAILURES as exc:
            self._metrics.count("errors", uid=self.uid)
            self._metrics.count(f"errors@code={getattr(exc, 'code', None) or type(exc).__name__}")
            self._metrics.observe(
                "error", self._clock(), uid=self.uid, action=action.kind, code=repr(exc)[:200]
            )

    async def _act(self, action: Action) -> None:
        match action.kind:
            case "join":
                await self._join()
            case "leave":
                await self._leave()
            case "plug-device":
                device = FakeDevices.make("audioinput", f"USB Microphone {len(self._plugged) + 1}")
                self.devices.plug(device)
                self._plugged.append(device.device_id)
            case "unplug-device" if self._plugged:
                self.devices.unplug(self._plugged.pop())
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
            case _ if self.in_session:
                await self._act_in_session(action)

    def _joined(self, started: float) -> None:
        """Its media connected (``started`` on the loop's clock): count it, watch what arrives."""
        joined = asyncio.get_running_loop().time()
        self._metrics.record("join_ms", (joined - started) * 1000)
        self._metrics.record(f"join_ms@{self.planned.door}", (joined - started) * 1000)
        self._metrics.count("joins", uid=self.uid)
        self._metrics.count(f"joins@door={self.planned.door}")
        self._metrics.observe("joined", self._clock(), uid=self.uid, session=self.planned.session_id)
        self.in_session = True

    def _watch_media(self, started: float, *, others: bool, video: bool) -> None:
        """Time the first media from the others (if any are in), and sample who is heard."""
        if others:
            self._tasks.spawn(self._first_media(started, video=False), "first-audio")
            if video:
                self._tasks.spawn(self._first_media(started, video=True), "first-video")
        if self.planned.media_path != "passthrough":  # who is heard: tones decoded, or marks read
            self._tasks.spawn(self._sample_heard(self.session_key), "heard")

    async def _first_media(self, started: float, *, video: bool) -> None:
        evidence = self.evidence

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

    async def _sample_heard(self, session: object) -> None:
        while self.in_session and self.session_key is session:
            heard = sorted(self.evidence.heard())
            self._metrics.observe("heard", self._clock(), uid=self.uid, heard=heard)
            await asyncio.sleep(HEARD_SAMPLE_EVERY)  # sampling period of a measurement

    def record_latencies(self) -> None:
        """The end-to-end latencies measured since the last call, into the metrics (its network's
        and its senders' networks' too): the worker calls it as the run goes, so a watcher sees
        latency live, and a leave calls it for the rest."""
        network = self.planned.network_name
        for stream in self.evidence.streams:
            fresh = stream.latencies_ms[stream.latencies_recorded :]
            stream.latencies_recorded = len(stream.latencies_ms)
            source_network = self._networks.get(stream.uid)
            for latency in fresh:
                self._metrics.record("latency_ms", latency)
                if network:
                    self._metrics.record(f"latency_ms@{network}", latency)
                if source_network:
                    self._metrics.record(f"seen_latency_ms_from@{source_network}", latency)

    def _harvest(self) -> None:
        """It is leaving: fold its session's received media into the metrics (and into its
        network's, if it has one)."""
        self._metrics.count(f"leaves@door={self.planned.door}")
        self.record_latencies()
        network = self.planned.network_name
        for stream in self.evidence.streams:
            # What the others saw of a network's participants: counted here, where received.
            if source_network := self._networks.get(stream.uid):
                self._metrics.count(f"seen_frames_from@{source_network}", stream.frames)
                if stream.kind == "video":
                    self._metrics.count(f"seen_freezes_from@{source_network}", stream.freezes)
            self._metrics.count("frames_received", stream.frames, uid=self.uid)
            if stream.kind == "video":
                self._metrics.count("video_frames_marked", stream.marked_frames, uid=self.uid)
                self._metrics.count("freezes", stream.freezes, uid=self.uid)
                if network:
                    self._metrics.count(f"freezes@{network}", stream.freezes)

    async def _harvest_rtp(self) -> None:
        """RTP packets its session received and lost (into its network's counters), before it closes."""
        if network := self.planned.network_name:
            with contextlib.suppress(Exception):
                if (stats := await self.receive_stats()) is not None:  # from the headers when lean
                    self._metrics.count(f"packets_received@{network}", stats.packets)
                    self._metrics.count(f"packets_lost@{network}", stats.lost)

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
        if self.chat is not None:
            await self.chat.aclose()


class NativeParticipant(VirtualParticipant):
    """A participant through callsim's own signalling: the Python Calls SDK, on any media path."""

    def __init__(self, planned: PlannedParticipant, **kwargs: Any) -> None:
        super().__init__(planned, **kwargs)
        self.client = CallsClient(
            name=self.uid,
            devices=self.devices,
            media=MediaProfile(planned.tone_hz, planned.index + 1),
            http=self._http,
            media_path=planned.media_path,
            network=planned.network,
            transport=planned.transport,
        )
        self.view = CallView(self.uid)

    @property
    def evidence(self) -> MediaEvidence:
        return self.client.evidence

    @property
    def session_key(self) -> object:
        return self.client.session

    async def receive_stats(self) -> ReceiveStats | None:
        session = self.client.session
        return None if session is None else await session.receive_stats()

    async def start(self) -> None:
        await self.client.init(self._app)
        await super().start()

    async def _act_in_session(self, action: Action) -> None:
        client = self.client
        match action.kind:
            case "mute" | "unmute":
                client.mute_audio(action.kind == "mute")
                self._metrics.observe("mute", self._clock(), uid=self.uid, muted=action.kind == "mute")
            case "pause" | "resume":
                client.pause_video(action.kind == "pause")
                self._metrics.observe("pause", self._clock(), uid=self.uid, paused=action.kind == "pause")
            case "share-start":
                client.start_screen_share()
            case "share-stop":
                client.stop_screen_share()
            case "switch-to-video":
                client.switch_to_video_call()
            case "press-mute" if self.view.shows("mute_audio"):
                self._press_mute()
                self._tasks.spawn(self._press_mute_again(), "press-mute")

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
        self._joined(started)
        if session.connect_ms is not None:
            self._metrics.record("connect_ms", session.connect_ms)
        if session.connect_phases is not None:
            for field, milliseconds in dataclasses.asdict(session.connect_phases).items():
                self._metrics.record(f"connect_{field}", milliseconds)  # connect_ice_ms, … (CONNECT_PHASES)
        self._watch_media(started, others=bool(session.participants), video=not session.audio_only)

    async def _leave(self) -> None:
        if not self.in_session:
            return
        self.in_session = False
        self._harvest()
        self._harvest_shaping()
        await self._harvest_rtp()
        self.client.end_session()
        with contextlib.suppress(TimeoutError):
            await self.client.wait_closed(JOIN_TIMEOUT)

    async def _harvest_rtp(self) -> None:
        """Besides its network's counts, the full path's loss, from aiortc's own statistics."""
        await super()._harvest_rtp()
        session = self.client.session
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

    def _harvest_shaping(self) -> None:
        """What its impaired network sent and dropped, each way."""
        session = self.client.session
        network = self.planned.network_name
        if network and session is not None and session.shaping is not None:
            for direction in ("up", "down"):
                shaper = getattr(session.shaping, direction)
                self._metrics.count(f"net_{direction}_sent@{network}", shaper.sent)
                self._metrics.count(
                    f"net_{direction}_dropped@{network}", shaper.dropped + shaper.queue_dropped
                )

    async def aclose(self) -> None:
        await super().aclose()
        await self.client.aclose()
