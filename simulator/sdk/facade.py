"""The doc's static ``CometChatCalls``, for single-user, doc-faithful use.

Every static method forwards to one process-wide :class:`CallsClient` (the static
class *is* a singleton in the contract, §A). Virtual participants use
``CallsClient`` instances instead.
"""

from __future__ import annotations

from typing import Any, ClassVar

from simulator.media.devices import MediaDevice
from simulator.sdk.app_settings import CallAppSettings, CallAppSettingsBuilder
from simulator.sdk.call_view import CallView
from simulator.sdk.client import CallsClient
from simulator.sdk.constants import CALL_MODE, MODE
from simulator.sdk.listeners import OngoingCallListener
from simulator.sdk.settings import CallSettings, CallSettingsBuilder, MainVideoContainerSetting
from simulator.sdk.token_api import CallToken

__all__ = ["CometChatCalls"]

# Module-level names for annotations: inside the class the same names are attributes.
_AppSettings = CallAppSettings


class CometChatCalls:
    """Static façade over one default :class:`CallsClient`."""

    CALL_MODE = CALL_MODE
    MODE = MODE
    CallAppSettingsBuilder = CallAppSettingsBuilder
    CallAppSettings = CallAppSettings
    CallSettingsBuilder = CallSettingsBuilder
    CallSettings = CallSettings
    MainVideoContainerSetting = MainVideoContainerSetting
    OngoingCallListener = OngoingCallListener

    _client: ClassVar[CallsClient | None] = None

    @classmethod
    def client(cls) -> CallsClient:
        """The client behind the façade (created on first use)."""
        if cls._client is None:
            cls._client = CallsClient(name="CometChatCalls")
        return cls._client

    @classmethod
    async def reset(cls) -> None:
        """Close the default client (tests; a new one is made on next use)."""
        if cls._client is not None:
            await cls._client.aclose()
            cls._client = None

    @classmethod
    async def init(cls, app_settings: _AppSettings) -> None:
        await cls.client().init(app_settings)

    @classmethod
    async def generate_token(cls, session_id: object, auth_token: object) -> CallToken:
        return await cls.client().generate_token(session_id, auth_token)

    @classmethod
    async def start_session(cls, call_token: object, call_settings: object, element: CallView) -> None:
        await cls.client().start_session(call_token, call_settings, element)

    @classmethod
    def end_session(cls) -> None:
        cls.client().end_session()

    @classmethod
    def mute_audio(cls, mute: bool = True) -> None:
        cls.client().mute_audio(mute)

    @classmethod
    def un_mute_audio(cls) -> None:
        cls.client().un_mute_audio()

    @classmethod
    def pause_video(cls, pause: bool = True) -> None:
        cls.client().pause_video(pause)

    @classmethod
    def resume_video(cls) -> None:
        cls.client().resume_video()

    @classmethod
    def un_pause_video(cls) -> None:
        cls.client().un_pause_video()

    @classmethod
    def start_screen_share(cls) -> None:
        cls.client().start_screen_share()

    @classmethod
    def stop_screen_share(cls) -> None:
        cls.client().stop_screen_share()

    @classmethod
    def set_mode(cls, mode: str) -> None:
        cls.client().set_mode(mode)

    @classmethod
    def switch_camera(cls) -> None:
        cls.client().switch_camera()

    @classmethod
    def switch_to_video_call(cls) -> None:
        cls.client().switch_to_video_call()

    @classmethod
    def get_audio_input_devices(cls) -> list[MediaDevice]:
        return cls.client().get_audio_input_devices()

    @classmethod
    def get_audio_output_devices(cls) -> list[MediaDevice]:
        return cls.client().get_audio_output_devices()

    @classmethod
    def get_video_input_devices(cls) -> list[MediaDevice]:
        return cls.client().get_video_input_devices()

    @classmethod
    def set_audio_input_device(cls, device_id: str) -> None:
        cls.client().set_audio_input_device(device_id)

    @classmethod
    def set_audio_output_device(cls, device_id: str) -> None:
        cls.client().set_audio_output_device(device_id)

    @classmethod
    def set_video_input_device(cls, device_id: str) -> None:
        cls.client().set_video_input_device(device_id)

    @classmethod
    def add_call_event_listener(cls, listener_id: str, listener: Any) -> None:
        cls.client().add_call_event_listener(listener_id, listener)

    @classmethod
    def remove_call_event_listener(cls, listener_id: str) -> None:
        cls.client().remove_call_event_listener(listener_id)
