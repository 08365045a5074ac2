"""The protocol of ``PROTOCOL.md``, served by the reference stack.

:class:`ReferenceImplementation` maps every protocol method to the reference SDKs
and an embedded backend. The in-process driver calls it directly and the wire shim
serves it over stdio, so both paths share one behaviour.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from conformance.driver import ContractError, DriverError, Emit
from simulator import __version__
from simulator.chat import Call, ChatClient
from simulator.chat.listeners import CALL_CALLBACKS
from simulator.clock import VirtualClock
from simulator.media import MediaPath
from simulator.media.devices import FakeDevices
from simulator.media.tones import TONES_HZ
from simulator.sdk import (
    CALL_MODE,
    CallAppSettings,
    CallAppSettingsBuilder,
    CallsClient,
    CallSettingsBuilder,
    CallView,
    CometChatCallsException,
    MainVideoContainerSetting,
    MediaProfile,
    to_wire,
)
from simulator.sdk.names import CALLBACKS, to_camel, to_snake
from simulator.server import Backend

__all__ = ["ReferenceImplementation"]

BUTTONS = {
    "endCall": "end_call",
    "muteAudio": "mute_audio",
    "pauseVideo": "pause_video",
    "screenShare": "screen_share",
    "mode": "mode",
    "switchToVideo": "switch_to_video",
}
MEDIA_TIMEOUT = 20.0


def wire(value: Any) -> Any:
    """A payload as JSON data: contract payloads camelCase, exceptions and calls as objects."""
    if isinstance(value, CometChatCallsException):
        return value.to_wire()
    if isinstance(value, Call):
        return call_to_wire(value)
    return to_wire(value)


def call_to_wire(call: Call | None) -> dict[str, Any] | None:
    if call is None:
        return None
    initiator = call.get_call_initiator()
    receiver = call.get_call_receiver()
    return {
        "sessionId": call.get_session_id(),
        "status": call.get_status(),
        "type": call.get_type(),
        "receiverType": call.get_receiver_type(),
        "receiverId": call.get_receiver_id(),
        "initiator": None if initiator is None else {"uid": initiator.uid, "name": initiator.name},
        "receiver": None if receiver is None else vars(receiver) | {"auth_token": None},
    }


class BackendClock:
    """The backend's wall clock: real time plus what ``Harness.advanceBackendClock`` added.

    Token expiry (§G) and call records read it; ``reset`` takes the offset back to zero, so
    no check sees the time another one moved.
    """

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


class _Participant:
    def __init__(self, name: str, calls: CallsClient, chat: ChatClient, devices: FakeDevices) -> None:
        self.name = name
        self.calls = calls
        self.chat = chat
        self.devices = devices
        self.view = CallView(name)


class ReferenceImplementation:
    """One embedded backend, participants by name, one virtual clock for every timer."""

    def __init__(self, emit: Emit, media_path: MediaPath = "full") -> None:
        self._emit = emit
        self._media_path: MediaPath = media_path
        self._backend: Backend | None = None
        self._clock = VirtualClock()
        self._participants: dict[str, _Participant] = {}
        self._backend_clock = BackendClock()
        self._groups: list[str] = []

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> dict[str, Any]:
        self._backend = Backend(wall_clock=self._backend_clock)
        await self._backend.start()
        return {
            "protocol": 1,
            "implementation": "callsim reference",
            "version": __version__,
            "capabilities": [
                "virtualClock",
                "callView",
                "mediaEvidence",
                "devices",
                "ringing",
                "groups",
                "backendClock",
            ],
        }

    async def reset(self) -> None:
        """Close every participant and start a fresh clock (between checks)."""
        for participant in list(self._participants.values()):
            await participant.calls.aclose()
            await participant.chat.aclose()
        self._participants.clear()
        self._clock = VirtualClock()
        self._backend_clock.offset = 0.0
        if self._backend is not None:
            for guid in self._groups:
                self._backend.store.delete_group(guid)
        self._groups.clear()

    async def close(self) -> None:
        await self.reset()
        if self._backend is not None:
            await self._backend.close()
            self._backend = None

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            raise DriverError("the implementation is not started")
        return self._backend

    def app_settings(self) -> CallAppSettings:
        return (
            CallAppSettingsBuilder()
            .set_app_id(self.backend.app_id)
            .set_region("us")
            .set_host(self.backend.url)
            .build()
        )

    # --- dispatch -----------------------------------------------------------------------------

    async def handle(self, method: str, params: dict[str, Any]) -> Any:
        """Run one protocol method; contract errors become :class:`ContractError`."""
        namespace, _, name = method.partition(".")
        handlers: dict[str, Callable[[str, dict[str, Any]], Awaitable[Any]]] = {
            "Harness": self._harness,
            "CometChatCalls": self._calls,
            "CometChat": self._chat,
        }
        handler = handlers.get(namespace)
        if handler is None or not name:
            raise LookupError(method)
        try:
            return await handler(name, params)
        except CometChatCallsException as exc:
            raise ContractError(exc.code, exc.message, exc.name, exc.details) from None

    def _participant(self, params: dict[str, Any]) -> _Participant:
        name = params.get("client")
        if not isinstance(name, str) or name not in self._participants:
            raise DriverError(f"unknown client {name!r}; call Harness.createClient first")
        return self._participants[name]

    # --- Harness.* ----------------------------------------------------------------------------

    async def _harness(self, name: str, params: dict[str, Any]) -> Any:
        match name:
            case "reset":
                await self.reset()
                return {}
            case "provisionUser":
                uid = params["uid"]
                token = self.backend.provision_user(uid, params.get("name", uid), params.get("avatar", ""))
                return {"authToken": token}
            case "createClient":
                return await self._create_client(params)
            case "advanceClock":
                self._clock.advance(float(params["seconds"]))
                await asyncio.sleep(0)  # let callbacks scheduled by the timers run
                return {}
            case "waitJoined":
                timeout = float(params.get("timeout", 15))
                try:
                    await self._participant(params).calls.wait_joined(timeout)
                except TimeoutError:
                    raise ContractError("JOIN_TIMEOUT", f"not joined within {timeout:g} s") from None
                return {}
            case "waitClosed":
                timeout = float(params.get("timeout", 15))
                try:
                    await self._participant(params).calls.wait_closed(timeout)
                except TimeoutError:
                    raise ContractError(
                        "CLOSE_TIMEOUT", f"still in the session after {timeout:g} s"
                    ) from None
                return {}
            case "press":
                return self._press(params)
            case "view":
                return self._view(params)
            case "media":
                return self._media_snapshot(self._participant(params))
            case "waitMedia":
                return await self._wait_media(params)
            case "plugDevice":
                participant = self._participant(params)
                device = FakeDevices.make(params["kind"], params["label"])
                participant.devices.plug(device)
                return {"deviceId": device.device_id}
            case "unplugDevice":
                self._participant(params).devices.unplug(params["deviceId"])
                return {}
            case "constants":
                return {"CALL_MODE": dict(CALL_MODE)}
            case "createGroup":
                guid, members = params["guid"], list(params.get("members", []))
                group = self.backend.store.create_group(guid, params.get("name", guid), members)
                self._groups.append(guid)
                return {"guid": group.guid, "name": group.name, "members": list(group.members)}
            case "advanceBackendClock":
                self._backend_clock.offset += float(params["seconds"])
                return {}
        raise LookupError(f"Harness.{name}")

    async def _create_client(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["client"]
        if name in self._participants:
            raise DriverError(f"client {name!r} exists")
        index = len(self._participants)
        devices = FakeDevices()
        calls = CallsClient(
            name=name,
            clock=self._clock,
            devices=devices,
            media=MediaProfile(TONES_HZ[index % 18], index + 1),
            media_path=self._media_path,
        )
        chat = ChatClient(name=name, clock=self._clock)
        self._participants[name] = _Participant(name, calls, chat, devices)
        settings = self.app_settings()
        if params.get("init", True):
            await calls.init(settings)
            await chat.init(settings)
        return {"appSettings": {"appId": settings.app_id, "region": settings.region, "host": settings.host}}

    def _press(self, params: dict[str, Any]) -> dict[str, Any]:
        view = self._participant(params).view
        button = params["button"]
        if button == "stay":
            view.press_stay()
        elif button == "leaveNow":
            view.press_leave_now()
        elif button in BUTTONS:
            view.press(BUTTONS[button])  # type: ignore[arg-type]
        else:
            raise DriverError(f"unknown button {button!r}")
        return {}

    def _view(self, params: dict[str, Any]) -> dict[str, Any]:
        view = self._participant(params).view
        return {
            "mounted": view.mounted,
            "mode": view.mode,
            "idle": view.idle_state.value,
            "secondsLeft": view.idle_seconds_left,
            "buttons": {camel: view.shows(snake) for camel, snake in BUTTONS.items()},  # type: ignore[arg-type]
            "tiles": [
                {"uid": t.uid, "audioMuted": t.audio_muted, "videoMuted": t.video_muted, "local": t.local}
                for t in view.tiles
            ],
        }

    @staticmethod
    def _media_snapshot(participant: _Participant) -> dict[str, Any]:
        evidence = participant.calls.evidence
        frames: dict[str, int] = {}
        audio: dict[str, int] = {}
        for stream in evidence.streams:
            if stream.kind == "video":
                key = f"{stream.uid}/{stream.source}"
                frames[key] = frames.get(key, 0) + stream.marked_frames
            else:
                audio[stream.uid] = audio.get(stream.uid, 0) + stream.frames
        return {"heard": evidence.heard(), "frames": frames, "audioFrames": audio}

    async def _wait_media(self, params: dict[str, Any]) -> dict[str, Any]:
        participant = self._participant(params)
        heard = set(params.get("heard", []))
        not_heard = set(params.get("notHeard", []))
        min_frames: dict[str, int] = params.get("minFrames", {})
        min_audio: dict[str, int] = params.get("minAudioFrames", {})

        def satisfied() -> bool:
            snapshot = self._media_snapshot(participant)
            now_heard = set(snapshot["heard"])
            return (
                heard <= now_heard
                and not (not_heard & now_heard)
                and all(snapshot["frames"].get(k, 0) >= n for k, n in min_frames.items())
                and all(snapshot["audioFrames"].get(k, 0) >= n for k, n in min_audio.items())
            )

        try:
            await participant.calls.evidence.wait_for(satisfied, float(params.get("timeout", MEDIA_TIMEOUT)))
        except TimeoutError:
            raise ContractError(
                "MEDIA_TIMEOUT", f"media never met {params}: {self._media_snapshot(participant)}"
            ) from None
        return self._media_snapshot(participant)

    # --- CometChatCalls.* ----------------------------------------------------------------------

    def _recording_listener(
        self, client: str, listener: str, options: dict[str, Any]
    ) -> dict[str, Callable[..., None]]:
        throws = set(options.get("throws", []))
        actions: dict[str, list[dict[str, Any]]] = options.get("onCallback", {})
        participant = self._participants[client]

        def make(snake: str) -> Callable[..., None]:
            camel = CALLBACKS[snake]

            def record(*args: Any) -> None:
                self._emit(client, listener, camel, wire(args[0]) if args else None)
                for action in actions.get(camel, []):
                    if "add" in action:
                        participant.calls.add_call_event_listener(
                            action["add"], self._recording_listener(client, action["add"], {})
                        )
                    if "remove" in action:
                        participant.calls.remove_call_event_listener(action["remove"])
                    if action.get("endSession"):
                        participant.calls.end_session()
                if camel in throws:
                    raise RuntimeError(f"listener {listener} throws in {camel} (as the check asked)")

            return record

        return {snake: make(snake) for snake in CALLBACKS}

    def _build_settings(self, client: str, spec: Any) -> Any:
        if not isinstance(spec, dict):
            return spec  # not a settings object: passed through for §B.3's instance check
        builder = CallSettingsBuilder()
        for method, value in spec.items():
            if method == "setCallListener":
                if value is not False:
                    options = value if isinstance(value, dict) else {}
                    builder.set_call_listener(self._recording_listener(client, "settings", options))
            elif method == "setMainVideoContainerSetting":
                builder.set_main_video_container_setting(self._container(value))
            else:
                getattr(builder, to_snake(method))(value)
        return builder.build()

    @staticmethod
    def _container(calls: list[list[Any]]) -> MainVideoContainerSetting:
        setting = MainVideoContainerSetting()
        for setter, *args in calls:
            getattr(setting, to_snake(setter))(*args)
        return setting

    async def _calls(self, name: str, params: dict[str, Any]) -> Any:
        if name == "CallSettingsBuilder":
            return self._describe_settings(params.get("calls", {}))
        if name == "MainVideoContainerSetting":
            setting = self._container(params.get("calls", []))
            return dict(vars(setting))
        participant = self._participant(params)
        client = participant.calls
        match name:
            case "init":
                spec = params.get("appSettings")
                settings = (
                    CallAppSettings(spec.get("appId"), spec.get("region"), spec.get("host", self.backend.url))
                    if isinstance(spec, dict)
                    else spec
                )
                await client.init(settings)
                return None
            case "generateToken":
                token = await client.generate_token(params.get("sessionId"), params.get("authToken"))
                return {"token": token.token, **token.extra}
            case "startSession":
                settings = self._build_settings(
                    participant.name, params.get("callSettings", {"setCallListener": True})
                )
                await client.start_session(params.get("callToken"), settings, participant.view)
                return None
            case "addCallEventListener":
                listener_id = params["listenerId"]
                client.add_call_event_listener(
                    listener_id, self._recording_listener(participant.name, str(listener_id), params)
                )
                return None
            case "removeCallEventListener":
                client.remove_call_event_listener(params["listenerId"])
                return None
            case "getAudioInputDevices" | "getAudioOutputDevices" | "getVideoInputDevices":
                return [to_wire(d) for d in getattr(client, to_snake(name))()]
        method = getattr(client, to_snake(name), None)
        if method is None or name.startswith("_"):
            raise LookupError(f"CometChatCalls.{name}")
        args = [v for k, v in params.items() if k != "client"]
        result = method(*args)
        if asyncio.iscoroutine(result):
            result = await result
        return wire(result)

    @staticmethod
    def _describe_settings(calls: dict[str, Any]) -> dict[str, Any]:
        builder = CallSettingsBuilder()
        chained = True
        for method, value in calls.items():
            chained = chained and getattr(builder, to_snake(method))(value) is builder
        settings = builder.build()
        getters = [
            "isDefaultLayoutEnabled", "isAudioOnlyCall", "getMode", "isEndCallButtonEnabled",
            "isMuteAudioButtonEnabled", "isPauseVideoButtonEnabled", "isScreenShareButtonEnabled",
            "isModeButtonEnabled", "getStartWithAudioMuted", "getStartWithVideoMuted",
            "isAudioToVideoButtonEnabled", "getIdleTimeoutPeriod", "isRecordingButtonEnabled",
            "shouldStartRecordingOnCallStart",
        ]  # fmt: skip
        values = {getter: getattr(settings, to_snake(getter))() for getter in getters}
        container = settings.get_main_video_container_setting()
        values["getMainVideoContainerSetting"] = dict(vars(container))
        values["getCallListener"] = settings.get_call_listener()
        return {"chained": chained, "getters": values}

    # --- CometChat.* (ringing) --------------------------------------------------------------------

    async def _chat(self, name: str, params: dict[str, Any]) -> Any:
        participant = self._participant(params)
        chat = participant.chat
        match name:
            case "login":
                user = await chat.login(params["uid"], self.backend.api_key)
                return {"uid": user.uid, "name": user.name, "authToken": user.get_auth_token()}
            case "initiateCall":
                call = Call(
                    params["receiverId"], params.get("callType", "video"), params.get("receiverType", "user")
                )
                return call_to_wire(await chat.initiate_call(call, params.get("timeout")))
            case "acceptCall":
                return call_to_wire(await chat.accept_call(params["sessionId"]))
            case "rejectCall":
                return call_to_wire(await chat.reject_call(params["sessionId"], params["status"]))
            case "endCall":
                return call_to_wire(await chat.end_call(params["sessionId"]))
            case "getActiveCall":
                return call_to_wire(chat.get_active_call())
            case "clearActiveCall":
                chat.clear_active_call()
                return None
            case "getCallParticipantCount":
                return await chat.get_call_participant_count(params.get("sessionId"), params.get("type"))
            case "addCallListener":
                listener_id = str(params["listenerId"])
                chat.add_call_listener(listener_id, self._chat_listener(participant.name, listener_id))
                return None
            case "removeCallListener":
                chat.remove_call_listener(str(params["listenerId"]))
                return None
        raise LookupError(f"CometChat.{name}")

    def _chat_listener(self, client: str, listener_id: str) -> dict[str, Callable[..., None]]:
        def make(callback: str) -> Callable[..., None]:
            return lambda call: self._emit(
                client, f"chat:{listener_id}", to_camel(callback), call_to_wire(call)
            )

        return {callback: make(callback) for callback in CALL_CALLBACKS}
