"""``CallSettingsBuilder``, ``CallSettings`` and ``MainVideoContainerSetting`` (contract §B).

Builder setters store whatever they are given and chain (§B.1); validation happens
in ``start_session`` (:func:`validate_call_settings`, §B.3), in the contract's order,
first failure wins.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any, Final

from simulator.sdk.constants import CALL_MODE, DEFAULT_IDLE_TIMEOUT, MIN_IDLE_TIMEOUT
from simulator.sdk.errors import InvalidArgumentError, Messages

__all__ = [
    "CallSettings",
    "CallSettingsBuilder",
    "MainVideoContainerSetting",
    "effective_idle_timeout",
    "is_falsy",
    "validate_call_settings",
]

POSITION_TOP_LEFT: Final = "top-left"
POSITION_TOP_RIGHT: Final = "top-right"
POSITION_BOTTOM_LEFT: Final = "bottom-left"
POSITION_BOTTOM_RIGHT: Final = "bottom-right"
ASPECT_RATIO_DEFAULT: Final = "default"
ASPECT_RATIO_CONTAIN: Final = "contain"
ASPECT_RATIO_COVER: Final = "cover"


def is_falsy(value: object) -> bool:
    """The SDK's "falsy" helper (§B.4): blank strings, 0, "0", False, None, "null", {} …"""
    if value is None or value is False:
        return True
    if isinstance(value, str):
        return value.strip() in ("", "0", "null", "undefined")
    if isinstance(value, int | float):
        return value == 0
    if isinstance(value, dict):
        return not value
    return False


class MainVideoContainerSetting:
    """Customises the main video container (§B.4). Each instance has its own defaults (K41).

    Setters return None (they are not chainable in the contract).
    """

    def __init__(self) -> None:
        self.video_fit: Any = ASPECT_RATIO_CONTAIN
        self.zoom_button: dict[str, Any] = {"position": POSITION_BOTTOM_RIGHT, "visible": True}
        self.name_label: dict[str, Any] = {
            "position": POSITION_BOTTOM_LEFT,
            "visible": True,
            "color": "rgba(27, 27, 27, 0.4)",
        }
        self.network: dict[str, Any] = {"position": POSITION_BOTTOM_RIGHT, "visible": True}

    def set_main_video_aspect_ratio(self, aspect_ratio: str) -> None:
        """Stored as given (no validation, §B.4)."""
        self.video_fit = aspect_ratio

    @staticmethod
    def _apply(target: dict[str, Any], position: object, visibility: object) -> None:
        if not is_falsy(position):
            target["position"] = position
        if visibility is not None:
            # §B.4: the visibility is stored under both keys.
            target["visible"] = visibility
            target["visibility"] = visibility

    def set_full_screen_button_params(self, position: str, visibility: bool) -> None:
        self._apply(self.zoom_button, position, visibility)

    def set_name_label_params(
        self, position: str, visibility: bool, background_color: str | None = None
    ) -> None:
        self._apply(self.name_label, position, visibility)
        if not is_falsy(background_color):
            self.name_label["color"] = background_color

    def set_network_label_params(self, position: str, visibility: bool) -> None:
        self._apply(self.network, position, visibility)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MainVideoContainerSetting) and vars(self) == vars(other)

    __hash__ = None  # type: ignore[assignment]


@dataclass
class CallSettings:
    """Built by :class:`CallSettingsBuilder`; read through the contract's getters (§B.1).

    Fields keep whatever the builder was given: validation is ``start_session``'s job.
    """

    default_layout: Any = True
    is_audio_only: Any = False
    mode: Any = CALL_MODE["DEFAULT"]
    show_end_call_button: Any = True
    show_mute_audio_button: Any = True
    show_pause_video_button: Any = True
    show_screen_share_button: Any = True
    show_switch_mode_button: Any = True
    start_audio_muted: Any = False
    start_video_muted: Any = False
    show_switch_to_video_call_button: Any = True
    main_video_container_setting: MainVideoContainerSetting = field(default_factory=MainVideoContainerSetting)
    idle_timeout_period: Any = DEFAULT_IDLE_TIMEOUT
    call_listener: Any = None
    show_recording_button: Any = False
    start_recording_on_call_start: Any = False
    localized_object: Any = field(default_factory=dict)
    show_virtual_background_setting: Any = True

    def is_default_layout_enabled(self) -> Any:
        return self.default_layout

    def is_audio_only_call(self) -> Any:
        return self.is_audio_only

    def get_mode(self) -> Any:
        return self.mode

    def is_end_call_button_enabled(self) -> Any:
        return self.show_end_call_button

    def is_mute_audio_button_enabled(self) -> Any:
        return self.show_mute_audio_button

    def is_pause_video_button_enabled(self) -> Any:
        return self.show_pause_video_button

    def is_screen_share_button_enabled(self) -> Any:
        return self.show_screen_share_button

    def is_mode_button_enabled(self) -> Any:
        return self.show_switch_mode_button

    def get_start_with_audio_muted(self) -> Any:
        return self.start_audio_muted

    def get_start_with_video_muted(self) -> Any:
        return self.start_video_muted

    def is_audio_to_video_button_enabled(self) -> Any:
        return self.show_switch_to_video_call_button

    def get_main_video_container_setting(self) -> MainVideoContainerSetting:
        return self.main_video_container_setting

    def get_idle_timeout_period(self) -> Any:
        return self.idle_timeout_period

    def get_call_listener(self) -> Any:
        return self.call_listener

    def is_recording_button_enabled(self) -> Any:
        return self.show_recording_button

    def should_start_recording_on_call_start(self) -> Any:
        return self.start_recording_on_call_start

    def get_localized_string_object(self) -> Any:
        return self.localized_object

    def is_virtual_background_setting_enabled(self) -> Any:
        return self.show_virtual_background_setting


class CallSettingsBuilder:
    """Chainable builder of :class:`CallSettings`; no setter validates (§B.1)."""

    def __init__(self) -> None:
        self._settings = CallSettings()

    def _set(self, name: str, value: Any) -> CallSettingsBuilder:
        setattr(self._settings, name, value)
        return self

    def enable_default_layout(self, value: bool) -> CallSettingsBuilder:
        return self._set("default_layout", value)

    def set_is_audio_only_call(self, value: bool) -> CallSettingsBuilder:
        return self._set("is_audio_only", value)

    def set_mode(self, mode: str) -> CallSettingsBuilder:
        return self._set("mode", mode)

    def start_with_audio_muted(self, value: bool) -> CallSettingsBuilder:
        return self._set("start_audio_muted", value)

    def start_with_video_muted(self, value: bool) -> CallSettingsBuilder:
        return self._set("start_video_muted", value)

    def show_end_call_button(self, value: bool) -> CallSettingsBuilder:
        return self._set("show_end_call_button", value)

    def show_mute_audio_button(self, value: bool) -> CallSettingsBuilder:
        return self._set("show_mute_audio_button", value)

    def show_pause_video_button(self, value: bool) -> CallSettingsBuilder:
        return self._set("show_pause_video_button", value)

    def show_screen_share_button(self, value: bool) -> CallSettingsBuilder:
        return self._set("show_screen_share_button", value)

    def show_mode_button(self, value: bool) -> CallSettingsBuilder:
        return self._set("show_switch_mode_button", value)

    def show_switch_to_video_call_button(self, value: bool) -> CallSettingsBuilder:
        return self._set("show_switch_to_video_call_button", value)

    def set_main_video_container_setting(self, setting: MainVideoContainerSetting) -> CallSettingsBuilder:
        return self._set("main_video_container_setting", setting)

    def set_idle_timeout_period(self, seconds: float) -> CallSettingsBuilder:
        return self._set("idle_timeout_period", seconds)

    def set_call_listener(self, listener: Any) -> CallSettingsBuilder:
        return self._set("call_listener", listener)

    def show_recording_button(self, value: bool) -> CallSettingsBuilder:
        return self._set("show_recording_button", value)

    def start_recording_on_call_start(self, value: bool) -> CallSettingsBuilder:
        return self._set("start_recording_on_call_start", value)

    def set_localized_string_object(self, strings: dict[str, str]) -> CallSettingsBuilder:
        return self._set("localized_object", strings)

    def show_virtual_background_setting(self, value: bool) -> CallSettingsBuilder:
        return self._set("show_virtual_background_setting", value)

    def build(self) -> CallSettings:
        """A new :class:`CallSettings`; later builder calls do not change it."""
        return copy.copy(self._settings)


# §B.3 step 2: (builder method named in the message, field) in the contract's order;
# the idle check sits between showRecordingButton and startRecordingOnCallStart.
_BOOLEAN_CHECKS_BEFORE_IDLE: Final = (
    ("enableDefaultLayout", "default_layout"),
    ("setIsAudioOnlyCall", "is_audio_only"),
    ("showEndCallButton", "show_end_call_button"),
    ("showMuteAudioButton", "show_mute_audio_button"),
    ("showPauseVideoButton", "show_pause_video_button"),
    ("showScreenShareButton", "show_screen_share_button"),
    ("showModeButton", "show_switch_mode_button"),
    ("startWithAudioMuted", "start_audio_muted"),
    ("startWithVideoMuted", "start_video_muted"),
    ("showRecordingButton", "show_recording_button"),
)
_BOOLEAN_CHECKS_AFTER_IDLE: Final = (
    ("startRecordingOnCallStart", "start_recording_on_call_start"),
    ("showSwitchToVideoCallButton", "show_switch_to_video_call_button"),
    ("showVirtualBackgroundSetting", "show_virtual_background_setting"),
)


def _is_number(value: object) -> bool:
    # JS typeof "number": bool is not a number there, though it is an int here.
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_booleans(settings: CallSettings, checks: tuple[tuple[str, str], ...]) -> None:
    for method, attribute in checks:
        value = getattr(settings, attribute)
        if value is not None and not isinstance(value, bool):
            raise InvalidArgumentError(Messages.INVALID_CALL_SETTINGS, Messages.not_boolean(method))


def validate_call_settings(settings: object) -> CallSettings:
    """Run §B.3 in order and return the settings, or raise ``INVALID_CALL_SETTINGS``."""
    if not isinstance(settings, CallSettings):
        raise InvalidArgumentError(Messages.INVALID_CALL_SETTINGS, Messages.SETTINGS_INSTANCE)
    _check_booleans(settings, _BOOLEAN_CHECKS_BEFORE_IDLE)
    idle = settings.idle_timeout_period
    if _is_number(idle):
        if not math.isfinite(idle):
            raise InvalidArgumentError(Messages.INVALID_CALL_SETTINGS, Messages.IDLE_NOT_FINITE)
        if idle < MIN_IDLE_TIMEOUT:
            raise InvalidArgumentError(Messages.INVALID_CALL_SETTINGS, Messages.IDLE_MINIMUM)
    _check_booleans(settings, _BOOLEAN_CHECKS_AFTER_IDLE)
    return settings


def effective_idle_timeout(settings: CallSettings) -> float:
    """The idle period the session runs on: a number as given, anything else 180 (§B.3, K16)."""
    idle = settings.idle_timeout_period
    return float(idle) if _is_number(idle) else DEFAULT_IDLE_TIMEOUT
