"""§B: CallSettingsBuilder, its defaults, getters and start_session's validation."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.api import Sut
from conformance.check import MUST, REFERENCE, SHOULD, check
from conformance.driver import ContractError

SEED_DEFAULTS = {
    "isDefaultLayoutEnabled": True,
    "isAudioOnlyCall": False,
    "getMode": "DEFAULT",
    "getStartWithAudioMuted": False,
    "getStartWithVideoMuted": False,
    "isEndCallButtonEnabled": True,
    "isMuteAudioButtonEnabled": True,
    "isPauseVideoButtonEnabled": True,
    "isScreenShareButtonEnabled": True,
    "isModeButtonEnabled": True,
    "isAudioToVideoButtonEnabled": True,
    "getIdleTimeoutPeriod": 180,
}
SETTERS = {
    "enableDefaultLayout": ("isDefaultLayoutEnabled", False),
    "setIsAudioOnlyCall": ("isAudioOnlyCall", True),
    "setMode": ("getMode", "SPOTLIGHT"),
    "startWithAudioMuted": ("getStartWithAudioMuted", True),
    "startWithVideoMuted": ("getStartWithVideoMuted", True),
    "showEndCallButton": ("isEndCallButtonEnabled", False),
    "showMuteAudioButton": ("isMuteAudioButtonEnabled", False),
    "showPauseVideoButton": ("isPauseVideoButtonEnabled", False),
    "showScreenShareButton": ("isScreenShareButtonEnabled", False),
    "showModeButton": ("isModeButtonEnabled", False),
    "showSwitchToVideoCallButton": ("isAudioToVideoButtonEnabled", False),
    "setIdleTimeoutPeriod": ("getIdleTimeoutPeriod", 300),
}
ORDER = [
    "enableDefaultLayout", "setIsAudioOnlyCall", "showEndCallButton", "showMuteAudioButton",
    "showPauseVideoButton", "showScreenShareButton", "showModeButton", "startWithAudioMuted",
    "startWithVideoMuted", "showRecordingButton", "startRecordingOnCallStart",
    "showSwitchToVideoCallButton", "showVirtualBackgroundSetting",
]  # fmt: skip


def describe(sut: Sut, calls: dict[str, Any] | None = None) -> dict[str, Any]:
    return dict(sut.call("CometChatCalls.CallSettingsBuilder", calls=calls or {}))


def start_with(sut: Sut, settings: Any) -> ContractError | None:
    client = sut.client(sut.session_id("client"))
    try:
        client.calls("startSession", callToken=client.token("s1"), callSettings=settings)
    except ContractError as exc:
        return exc
    return None


@check("B", MUST, items=("B.1",))
@pytest.mark.parametrize("getter", SEED_DEFAULTS)
def test_seed_defaults(sut: Sut, getter: str) -> None:
    assert describe(sut)["getters"][getter] == SEED_DEFAULTS[getter]


@check("B", SHOULD, items=("B.1",))
def test_defaults_beyond_the_seed(sut: Sut) -> None:
    getters = describe(sut)["getters"]
    assert getters["isRecordingButtonEnabled"] is False
    assert getters["shouldStartRecordingOnCallStart"] is False


@check("B", MUST, items=("B.1",))
@pytest.mark.parametrize("setter", SETTERS)
def test_setters_chain_and_getters_read_back(sut: Sut, setter: str) -> None:
    getter, value = SETTERS[setter]
    result = describe(sut, {setter: value})
    assert result["chained"] is True
    assert result["getters"][getter] == value


@check("B", REFERENCE, items=("B.4",))
def test_main_video_container_defaults_k41(sut: Sut) -> None:
    """REFERENCE, K41: the published SDK's setters mutate one module-level defaults object, shared by all."""
    sut.call(
        "CometChatCalls.MainVideoContainerSetting", calls=[["setNameLabelParams", "top-left", False, "red"]]
    )
    fresh = sut.call("CometChatCalls.MainVideoContainerSetting", calls=[])
    assert fresh["video_fit" if "video_fit" in fresh else "videoFit"] == "contain"
    label = fresh["name_label" if "name_label" in fresh else "nameLabel"]
    assert label == {"position": "bottom-left", "visible": True, "color": "rgba(27, 27, 27, 0.4)"}


def container_field(setting: dict[str, Any], snake: str) -> Any:
    """A ``MainVideoContainerSetting`` field by the reference's name or the contract's."""
    first, *rest = snake.split("_")
    camel = first + "".join(part.title() for part in rest)
    return setting[snake if snake in setting else camel]


@check("B", SHOULD, items=("B.4",), closes=(1,))
def test_a_new_main_video_container_has_the_documented_defaults(sut: Sut) -> None:
    """§B.4: a new ``MainVideoContainerSetting`` (no setter called since the harness reset)
    is ``contain``, the full-screen button bottom-right and visible, the name label
    bottom-left, visible, rgba(27, 27, 27, 0.4), the network label bottom-right and visible."""
    fresh = sut.call("CometChatCalls.MainVideoContainerSetting", calls=[])
    assert container_field(fresh, "video_fit") == "contain"
    assert container_field(fresh, "zoom_button") == {"position": "bottom-right", "visible": True}
    assert container_field(fresh, "name_label") == {
        "position": "bottom-left",
        "visible": True,
        "color": "rgba(27, 27, 27, 0.4)",
    }
    assert container_field(fresh, "network") == {"position": "bottom-right", "visible": True}


@check("B", SHOULD, items=("B.4",))
@pytest.mark.parametrize("falsy", ["", "   ", 0, "0", False, None, "null", "undefined", {}])
def test_a_falsy_position_or_colour_is_ignored(sut: Sut, falsy: object) -> None:
    """§B.4: the setters keep the position (and the name label's colour) when given one of the
    SDK's "falsy" values: blank strings, 0, "0", false, null, "null", "undefined", {}."""
    setting = sut.call(
        "CometChatCalls.MainVideoContainerSetting",
        calls=[
            ["setFullScreenButtonParams", falsy, True],
            ["setNameLabelParams", falsy, True, falsy],
            ["setNetworkLabelParams", falsy, True],
        ],
    )
    assert container_field(setting, "zoom_button")["position"] == "bottom-right"
    label = container_field(setting, "name_label")
    assert (label["position"], label["color"]) == ("bottom-left", "rgba(27, 27, 27, 0.4)")
    assert container_field(setting, "network")["position"] == "bottom-right"


@check("B", MUST, items=("B.3",))
def test_not_a_settings_object_is_refused(sut: Sut) -> None:
    error = start_with(sut, "not settings")
    assert error is not None
    assert (error.code, error.message) == (
        "INVALID_CALL_SETTINGS",
        "callSettings must be an instance of CallSettings class",
    )


@check("B", SHOULD, items=("B.3",))
@pytest.mark.parametrize("index", range(len(ORDER)))
def test_first_non_boolean_wins_in_contract_order(sut: Sut, index: int) -> None:
    error = start_with(sut, dict.fromkeys(ORDER[index:], "yes"))
    assert error is not None
    assert (error.code, error.message) == (
        "INVALID_CALL_SETTINGS",
        f"{ORDER[index]} method must be provided a boolean value.",
    )


@check("B", SHOULD, items=("B.3",))
def test_idle_check_sits_between_the_recording_flags(sut: Sut) -> None:
    error = start_with(sut, {"setIdleTimeoutPeriod": 10, "startRecordingOnCallStart": "x"})
    assert error is not None
    assert error.message == "Minimum value for idleTimeoutPeriod is 120 seconds."
    error = start_with(sut, {"setIdleTimeoutPeriod": 10, "showRecordingButton": "x"})
    assert error is not None
    assert error.message == "showRecordingButton method must be provided a boolean value."


@check("B", MUST, items=("B.3",))
def test_idle_119_refused(sut: Sut) -> None:
    error = start_with(sut, {"setIdleTimeoutPeriod": 119})
    assert error is not None
    assert (error.code, error.message) == (
        "INVALID_CALL_SETTINGS",
        "Minimum value for idleTimeoutPeriod is 120 seconds.",
    )


@check("B", MUST, items=("B.3",))
def test_idle_120_accepted(sut: Sut) -> None:
    assert start_with(sut, {"setIdleTimeoutPeriod": 120, "setCallListener": True}) is None
