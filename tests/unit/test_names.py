"""STYLE rule 3: the Python ↔ contract name table matches the contract's lists."""

from __future__ import annotations

from simulator.sdk import CallsClient, ListenerRegistry
from simulator.sdk.facade import CometChatCalls
from simulator.sdk.names import CALLBACKS, METHODS, to_camel, to_snake

# docs/contract.md §C, in its order
CONTRACT_CALLBACKS = [
    "onUserJoined", "onUserLeft", "onUserListUpdated", "onCallEnded", "onCallEndButtonPressed",
    "onSessionTimeout", "onError", "onMediaDeviceListUpdated", "onUserMuted", "onUserUnMuted",
    "onScreenShareStarted", "onScreenShareStopped", "onCallSwitchedToVideo", "onRecordingStarted",
    "onRecordingStopped",
]  # fmt: skip

# docs/contract.md §A.2, every method of the static class
CONTRACT_METHODS = [
    "init", "generateToken", "startSession", "joinPresentation", "endSession", "pauseVideo",
    "unPauseVideo", "resumeVideo", "muteAudio", "unMuteAudio", "setMode", "startScreenShare",
    "stopScreenShare", "switchCamera", "startRecording", "stopRecording", "switchToVideoCall",
    "openVirtualBackground", "closeVirtualBackground", "setBackgroundBlur", "setBackgroundImage",
    "getAudioInputDevices", "getAudioOutputDevices", "getVideoInputDevices", "setAudioInputDevice",
    "setAudioOutputDevice", "setVideoInputDevice", "getCallDetails", "addCallEventListener",
    "removeCallEventListener",
]  # fmt: skip

# The seed page's methods: the reference implements every one on the client and the façade.
SEED_METHODS = [
    "generateToken", "startSession", "endSession", "switchCamera", "muteAudio", "pauseVideo",
    "startScreenShare", "stopScreenShare", "setMode", "getAudioInputDevices", "getAudioOutputDevices",
    "getVideoInputDevices", "setAudioInputDevice", "setAudioOutputDevice", "setVideoInputDevice",
    "switchToVideoCall", "addCallEventListener", "removeCallEventListener",
]  # fmt: skip


def test_callbacks_match_the_contract() -> None:
    assert list(CALLBACKS.values()) == CONTRACT_CALLBACKS


def test_methods_match_the_contract() -> None:
    assert sorted(METHODS.values()) == sorted(CONTRACT_METHODS)


def test_the_spelling_rule_round_trips() -> None:
    for snake, camel in {**CALLBACKS, **METHODS}.items():
        assert to_camel(snake) == camel
        assert to_snake(camel) == snake


def test_every_seed_method_exists_on_client_and_facade() -> None:
    for camel in SEED_METHODS:
        snake = to_snake(camel)
        assert callable(getattr(CallsClient, snake)), snake
        assert callable(getattr(CometChatCalls, snake)), snake


def test_registry_dispatch_accepts_every_callback() -> None:
    registry = ListenerRegistry()
    for name in CALLBACKS:
        registry.dispatch(name)  # type: ignore[arg-type]
