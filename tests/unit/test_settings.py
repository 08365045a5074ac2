"""§B: builder defaults, getters, chaining, and start_session's validation order (B.3)."""

from __future__ import annotations

import math

import pytest

from simulator.sdk import CallSettingsBuilder, MainVideoContainerSetting
from simulator.sdk.errors import InvalidArgumentError
from simulator.sdk.settings import effective_idle_timeout, is_falsy, validate_call_settings

DEFAULTS = {
    "is_default_layout_enabled": True,
    "is_audio_only_call": False,
    "get_mode": "DEFAULT",
    "is_end_call_button_enabled": True,
    "is_mute_audio_button_enabled": True,
    "is_pause_video_button_enabled": True,
    "is_screen_share_button_enabled": True,
    "is_mode_button_enabled": True,
    "get_start_with_audio_muted": False,
    "get_start_with_video_muted": False,
    "is_audio_to_video_button_enabled": True,
    "get_idle_timeout_period": 180,
    "get_call_listener": None,
    "is_recording_button_enabled": False,
    "should_start_recording_on_call_start": False,
    "is_virtual_background_setting_enabled": True,
}


@pytest.mark.parametrize(("getter", "expected"), DEFAULTS.items())
def test_builder_defaults(getter: str, expected: object) -> None:
    assert getattr(CallSettingsBuilder().build(), getter)() == expected


SETTERS = [
    ("enable_default_layout", False, "is_default_layout_enabled"),
    ("set_is_audio_only_call", True, "is_audio_only_call"),
    ("set_mode", "SPOTLIGHT", "get_mode"),
    ("start_with_audio_muted", True, "get_start_with_audio_muted"),
    ("start_with_video_muted", True, "get_start_with_video_muted"),
    ("show_end_call_button", False, "is_end_call_button_enabled"),
    ("show_mute_audio_button", False, "is_mute_audio_button_enabled"),
    ("show_pause_video_button", False, "is_pause_video_button_enabled"),
    ("show_screen_share_button", False, "is_screen_share_button_enabled"),
    ("show_mode_button", False, "is_mode_button_enabled"),
    ("show_switch_to_video_call_button", False, "is_audio_to_video_button_enabled"),
    ("set_idle_timeout_period", 300, "get_idle_timeout_period"),
    ("show_recording_button", True, "is_recording_button_enabled"),
    ("start_recording_on_call_start", True, "should_start_recording_on_call_start"),
]


@pytest.mark.parametrize(("setter", "value", "getter"), SETTERS)
def test_setters_chain_and_getters_return_what_was_stored(setter: str, value: object, getter: str) -> None:
    builder = CallSettingsBuilder()
    assert getattr(builder, setter)(value) is builder
    assert getattr(builder.build(), getter)() == value


def test_build_returns_an_independent_copy() -> None:
    builder = CallSettingsBuilder().set_mode("SPOTLIGHT")
    first = builder.build()
    builder.set_mode("TILE")
    assert first.get_mode() == "SPOTLIGHT"
    assert builder.build().get_mode() == "TILE"


# B.3 order: the first failing flag wins, and the message names its builder method.
ORDER = [
    ("enable_default_layout", "enableDefaultLayout"),
    ("set_is_audio_only_call", "setIsAudioOnlyCall"),
    ("show_end_call_button", "showEndCallButton"),
    ("show_mute_audio_button", "showMuteAudioButton"),
    ("show_pause_video_button", "showPauseVideoButton"),
    ("show_screen_share_button", "showScreenShareButton"),
    ("show_mode_button", "showModeButton"),
    ("start_with_audio_muted", "startWithAudioMuted"),
    ("start_with_video_muted", "startWithVideoMuted"),
    ("show_recording_button", "showRecordingButton"),
    ("start_recording_on_call_start", "startRecordingOnCallStart"),
    ("show_switch_to_video_call_button", "showSwitchToVideoCallButton"),
    ("show_virtual_background_setting", "showVirtualBackgroundSetting"),
]


@pytest.mark.parametrize("index", range(len(ORDER)))
def test_first_non_boolean_in_contract_order_is_reported(index: int) -> None:
    builder = CallSettingsBuilder()
    for setter, _ in ORDER[index:]:
        getattr(builder, setter)("yes")
    with pytest.raises(InvalidArgumentError) as caught:
        validate_call_settings(builder.build())
    assert caught.value.code == "INVALID_CALL_SETTINGS"
    assert caught.value.message == f"{ORDER[index][1]} method must be provided a boolean value."


def test_none_passes_the_boolean_checks() -> None:
    validate_call_settings(CallSettingsBuilder().show_end_call_button(None).build())  # type: ignore[arg-type]


def test_idle_check_sits_between_recording_button_and_recording_on_start() -> None:
    settings = CallSettingsBuilder().set_idle_timeout_period(10).start_recording_on_call_start("x").build()  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match=r"Minimum value for idleTimeoutPeriod is 120 seconds\."):
        validate_call_settings(settings)
    settings = CallSettingsBuilder().set_idle_timeout_period(10).show_recording_button("x").build()  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="showRecordingButton"):
        validate_call_settings(settings)


@pytest.mark.parametrize(
    ("value", "ok"), [(119, False), (119.99, False), (120, True), (120.0, True), (10_000, True)]
)
def test_idle_minimum_is_120(value: float, ok: bool) -> None:
    settings = CallSettingsBuilder().set_idle_timeout_period(value).build()
    if ok:
        assert validate_call_settings(settings) is settings
        assert effective_idle_timeout(settings) == value
    else:
        with pytest.raises(InvalidArgumentError) as caught:
            validate_call_settings(settings)
        assert (caught.value.code, caught.value.message) == (
            "INVALID_CALL_SETTINGS",
            "Minimum value for idleTimeoutPeriod is 120 seconds.",
        )


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_idle_is_refused_k16(value: float) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        validate_call_settings(CallSettingsBuilder().set_idle_timeout_period(value).build())
    assert caught.value.code == "INVALID_CALL_SETTINGS"


@pytest.mark.parametrize("value", ["300", None, True, [1]])
def test_non_number_idle_means_180(value: object) -> None:
    settings = validate_call_settings(CallSettingsBuilder().set_idle_timeout_period(value).build())  # type: ignore[arg-type]
    assert effective_idle_timeout(settings) == 180


@pytest.mark.parametrize("value", [None, {}, "settings", CallSettingsBuilder()])
def test_not_a_call_settings_instance(value: object) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        validate_call_settings(value)
    assert caught.value.message == "callSettings must be an instance of CallSettings class"


def test_main_video_container_defaults_are_per_instance_k41() -> None:
    first = MainVideoContainerSetting()
    first.set_name_label_params("top-left", False, "red")
    first.set_full_screen_button_params("top-right", False)
    first.set_network_label_params("", None)  # type: ignore[arg-type]
    fresh = MainVideoContainerSetting()
    assert fresh.video_fit == "contain"
    assert fresh.zoom_button == {"position": "bottom-right", "visible": True}
    assert fresh.name_label == {"position": "bottom-left", "visible": True, "color": "rgba(27, 27, 27, 0.4)"}
    assert fresh.network == {"position": "bottom-right", "visible": True}
    assert first.name_label == {"position": "top-left", "visible": False, "visibility": False, "color": "red"}
    assert first.network == {"position": "bottom-right", "visible": True}  # falsy position ignored


@pytest.mark.parametrize("value", ["", "  ", 0, "0", False, None, "null", "undefined", {}])
def test_falsy_helper(value: object) -> None:
    assert is_falsy(value)


@pytest.mark.parametrize("value", ["top-left", 1, "red", {"a": 1}, True])
def test_truthy_for_the_helper(value: object) -> None:
    assert not is_falsy(value)
