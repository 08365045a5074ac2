"""``CallsClient``: one participant's Calls SDK, instance-based (contract §A).

Many clients live in one process (a virtual participant each). Method names are the
contract's in snake_case (:mod:`simulator.sdk.names`). In-call methods are silent
no-ops without an active session (K3).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import aiohttp

from simulator.clock import Clock, SystemClock, Timer
from simulator.http import HttpSession
from simulator.media.analysers import MediaEvidence
from simulator.media.devices import DeviceKind, FacingMode, FakeDevices, MediaDevice
from simulator.media.impairment import Schedule
from simulator.media.paths import MEDIA_PATHS, MediaPath
from simulator.media.tones import tone_for
from simulator.protocol import ReceiveSlots, Transport
from simulator.sdk.app_settings import CallAppSettings, validate_app_settings
from simulator.sdk.call_view import CallView
from simulator.sdk.constants import DEVICE_LIST_DEBOUNCE
from simulator.sdk.errors import (
    CometChatCallsException,
    InvalidArgumentError,
    InvalidStateError,
    Messages,
)
from simulator.sdk.events import MediaDeviceList
from simulator.sdk.listeners import ListenerRegistry
from simulator.sdk.reconnect import ReconnectPolicy
from simulator.sdk.session import CallSession
from simulator.sdk.settings import is_falsy, validate_call_settings
from simulator.sdk.token_api import CallToken, TokenApi
from simulator.tasks import TaskSet

__all__ = ["CallsClient", "MediaProfile"]

logger = logging.getLogger(__name__)

_client_numbers = itertools.count()


@dataclass(frozen=True, slots=True)
class MediaProfile:
    """What a participant's synthetic media carries: its tone and its video tag."""

    tone_hz: int
    publisher_tag: int


class CallsClient:
    """The Calls SDK of one participant.

    ``async with CallsClient() as client:`` closes the session, its tasks and the
    HTTP session at the end.
    """

    def __init__(
        self,
        *,
        name: str | None = None,
        clock: Clock | None = None,
        devices: FakeDevices | None = None,
        media: MediaProfile | None = None,
        http: aiohttp.ClientSession | None = None,
        media_path: MediaPath = "full",
        reconnect: ReconnectPolicy | None = None,
        network: Schedule | None = None,
        transport: Transport = "bundled",
        receive_slots: ReceiveSlots | None = None,
    ) -> None:
        number = next(_client_numbers)
        if media_path not in MEDIA_PATHS:
            raise ValueError(f"media_path must be one of {', '.join(MEDIA_PATHS)}, not {media_path!r}")
        self.media_path: MediaPath = media_path
        """How media is sent and received (:mod:`simulator.media.paths`); only ``full`` decodes."""
        if transport not in ("bundled", "split"):
            raise ValueError(f"transport must be 'bundled' or 'split', not {transport!r}")
        self.transport: Transport = transport
        """``bundled``: one connection, ``receive_slots`` of each kind (docs/signalling.md);
        ``split``: a publish and a subscribe connection, renegotiated as others come and go."""
        self.receive_slots = receive_slots or ReceiveSlots()
        self.reconnect = reconnect
        self.network = network
        """The participant's network, made worse on purpose (:mod:`simulator.media.impairment`)."""
        """Rejoining after losing the backend (:mod:`simulator.sdk.reconnect`): off unless given."""
        self.name = name or f"client-{number}"
        self.clock: Clock = clock or SystemClock()
        self.devices = devices or FakeDevices()
        self.media = media or MediaProfile(tone_for(number), number)
        self.registry = ListenerRegistry()
        self.evidence = MediaEvidence(self._speaker)
        self.session: CallSession | None = None
        self.app_settings: CallAppSettings | None = None
        self._http = HttpSession(http)
        self._tasks = TaskSet(self.name)
        self._device_list: tuple[MediaDevice, ...] = ()
        self._device_timer: Timer | None = None
        self._unsubscribe_devices = self.devices.subscribe(self._on_devices_changed)
        self._closed = False
        self._details_in_flight = False

    # --- plumbing ---------------------------------------------------------------------------

    @property
    def http(self) -> aiohttp.ClientSession:
        return self._http.session

    @property
    def host(self) -> str:
        self._require_init()
        assert self.app_settings is not None
        return self.app_settings.base_url()

    @property
    def ws_url(self) -> str:
        return self.host.replace("https://", "wss://").replace("http://", "ws://") + "ws"

    @property
    def token_api(self) -> TokenApi:
        return TokenApi(self.http, self.host)

    def _require_init(self) -> None:
        if self.app_settings is None:
            # K23: before init, both generate_token and start_session refuse.
            raise InvalidArgumentError(Messages.INVALID_CALL_APP_SETTINGS, Messages.APP_SETTINGS_INSTANCE)

    # --- setup (§A.2 #1–#3) -------------------------------------------------------------------

    async def init(self, app_settings: object) -> None:
        """Validate and keep the app settings (§A.2 #1); anything else is refused with its code."""
        self.app_settings = validate_app_settings(app_settings)

    async def generate_token(self, session_id: object, auth_token: object) -> CallToken:
        """A call token for ``session_id`` and the user of ``auth_token`` (§G)."""
        self._require_init()
        if not isinstance(auth_token, str):
            raise InvalidArgumentError(Messages.INVALID_ARGUMENT_EXCEPTION, Messages.AUTH_TOKEN_INVALID)
        if not isinstance(session_id, str):
            raise InvalidArgumentError(Messages.INVALID_ARGUMENT_EXCEPTION, Messages.SESSION_ID_INVALID)
        return await self.token_api.generate(session_id, auth_token)

    async def get_call_details(self, session_id: object, auth_token: object) -> list[dict[str, Any]]:
        """The stored logs of a ringing-flow call (§A.2 #27), in its check order."""
        self._require_init()
        if self._details_in_flight:
            raise CometChatCallsException(
                Messages.REQUEST_IN_PROGRESS,
                Messages.REQUEST_IN_PROGRESS_MESSAGE,
                name="REQUEST_IN_PROGRESS",
                details={},
            )
        if is_falsy(auth_token) or not isinstance(auth_token, str):
            raise InvalidArgumentError(Messages.NOT_ENOUGH_PARAMETERS, Messages.AUTH_TOKEN_REQUIRED)
        if is_falsy(session_id) or not isinstance(session_id, str):
            raise InvalidArgumentError(Messages.NOT_ENOUGH_PARAMETERS, Messages.SESSION_ID_REQUIRED)
        self._details_in_flight = True
        try:
            return await self.token_api.call_details(session_id, auth_token)
        finally:
            self._details_in_flight = False

    async def start_session(self, call_token: object, call_settings: object, element: CallView) -> None:
        """Validate the settings and start joining; returns before the join completes (K2).

        Token and join failures reach the settings listener's ``on_error``.
        """
        self._require_init()
        settings = validate_call_settings(call_settings)
        if self.session is not None and self.session.active:
            raise InvalidStateError(Messages.SESSION_ALREADY_ACTIVE, Messages.SESSION_ALREADY_ACTIVE_MESSAGE)
        # K1: a string; as a leniency, the object generate_token returned.
        token = call_token.token if isinstance(call_token, CallToken) else call_token
        if not isinstance(token, str):
            token = ""
        self.evidence = MediaEvidence(self._speaker)
        session = CallSession(self, token, settings, element)
        self.session = session
        self._device_list = self.devices.list()
        self._schedule_device_update()
        session.start(self._tasks)

    def end_session(self) -> None:
        """Leave the session; no local callback, handlers kept (§A.2 #5, K20). Idempotent."""
        if self.session is not None:
            self.session.leave("end")

    async def wait_joined(self, timeout: float = 15.0) -> None:
        """Wait until the backend accepted the join (a reference helper, not contract)."""
        session = self._require_session()
        async with asyncio.timeout(timeout):
            joined = asyncio.ensure_future(session.joined.wait())
            closed = asyncio.ensure_future(session.closed.wait())
            try:
                await asyncio.wait({joined, closed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                joined.cancel()
                closed.cancel()
        if not session.joined.is_set():
            raise InvalidStateError(
                "SESSION_NOT_JOINED", "the session closed before it joined (see on_error)"
            )

    async def wait_closed(self, timeout: float = 15.0) -> None:
        """Wait until the current session has torn down (a reference helper)."""
        session = self._require_session()
        async with asyncio.timeout(timeout):
            await session.closed.wait()

    def _require_session(self) -> CallSession:
        if self.session is None:
            raise InvalidStateError("NO_SESSION", "start_session() has not been called")
        return self.session

    def _active(self) -> CallSession | None:
        session = self.session
        return session if session is not None and session.active else None

    def _session_closed(self, session: CallSession) -> None:
        if self._device_timer is not None and session is self.session:
            self._device_timer.cancel()
            self._device_timer = None

    # --- in-call methods (§A.2 #6–#17) ----------------------------------------------------------

    def mute_audio(self, mute: bool = True) -> None:
        if session := self._active():
            session.mute_audio(bool(mute))

    def un_mute_audio(self) -> None:
        self.mute_audio(False)

    def pause_video(self, pause: bool = True) -> None:
        if session := self._active():
            session.pause_video(bool(pause))

    def resume_video(self) -> None:
        self.pause_video(False)

    def un_pause_video(self) -> None:
        self.pause_video(False)

    def start_screen_share(self) -> None:
        if session := self._active():
            session.start_screen_share()

    def stop_screen_share(self) -> None:
        if session := self._active():
            session.stop_screen_share()

    def set_mode(self, mode: str) -> None:
        if session := self._active():
            session.set_mode(mode)

    def switch_to_video_call(self) -> None:
        if session := self._active():
            session.switch_to_video_call()

    def switch_camera(self) -> None:
        """Toggle the camera's facing mode; a no-op without a camera facing the other way (K36)."""
        if self._active() is None:
            return
        current = self.devices.active("videoinput")
        facing: FacingMode = "environment" if current is None or current.facing_mode == "user" else "user"
        target = self.devices.camera_facing(facing)
        if target is not None and (current is None or target.device_id != current.device_id):
            self.devices.select(target.device_id)

    # --- devices (§I) ------------------------------------------------------------------------

    def _speaker(self) -> str | None:
        speaker = self.devices.active("audiooutput")
        return None if speaker is None else speaker.device_id

    def _devices_of(self, kind: DeviceKind) -> list[MediaDevice]:
        return [d for d in self._device_list if d.kind == kind]

    def get_audio_input_devices(self) -> list[MediaDevice]:
        return self._devices_of("audioinput")

    def get_audio_output_devices(self) -> list[MediaDevice]:
        return self._devices_of("audiooutput")

    def get_video_input_devices(self) -> list[MediaDevice]:
        return self._devices_of("videoinput")

    def _set_device(self, kind: DeviceKind, device_id: object) -> None:
        if not isinstance(device_id, str) or not device_id:
            return
        if device_id not in {d.device_id for d in self._devices_of(kind)}:
            session = self._active()
            if session is not None:
                # K39: an unknown id while in a call is reported, not raised.
                session._emit_error(
                    CometChatCallsException(
                        Messages.GENERIC_EXCEPTION,
                        f"no {kind} device with id {device_id!r}",
                        details=device_id,
                    )
                )
            return
        if self._active() is not None:
            self.devices.select(device_id)

    def set_audio_input_device(self, device_id: str) -> None:
        self._set_device("audioinput", device_id)

    def set_audio_output_device(self, device_id: str) -> None:
        self._set_device("audiooutput", device_id)

    def set_video_input_device(self, device_id: str) -> None:
        self._set_device("videoinput", device_id)

    def _on_devices_changed(self) -> None:
        if self._active() is None:
            return
        self._device_list = self.devices.list()  # getters see the change at once (§I)
        self._schedule_device_update()

    def _schedule_device_update(self) -> None:
        if self._device_timer is not None:
            self._device_timer.cancel()
        self._device_timer = self.clock.call_later(DEVICE_LIST_DEBOUNCE, self._emit_device_list)

    def _emit_device_list(self) -> None:
        self._device_timer = None
        session = self._active()
        if session is None:
            return
        payload = MediaDeviceList(
            video_input_devices=tuple(self._devices_of("videoinput")),
            audio_input_devices=tuple(self._devices_of("audioinput")),
            audio_output_devices=tuple(self._devices_of("audiooutput")),
        )
        session._emit("on_media_device_list_updated", payload)

    # --- listeners (§D) -------------------------------------------------------------------------

    def add_call_event_listener(self, listener_id: str, listener: Any) -> None:
        self.registry.add(listener_id, listener)

    def remove_call_event_listener(self, listener_id: str) -> None:
        self.registry.remove(listener_id)

    # --- lifecycle ------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Leave any session and release everything (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self.session is not None:
            self.session.leave("end")
            try:
                async with asyncio.timeout(10):
                    await self.session.closed.wait()
            except TimeoutError:
                logger.warning("%s: session did not close in time", self.name)
        if self._device_timer is not None:
            self._device_timer.cancel()
        self._unsubscribe_devices()
        await self._tasks.aclose()
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
