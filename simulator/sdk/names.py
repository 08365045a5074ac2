"""The one table between Python names and the contract's wire names (STYLE rule 3).

Python is snake_case; the contract (and the conformance wire driver) is camelCase.
Every method of ``CometChatCalls`` (§A.2) and every ``OngoingCallListener`` callback
(§C) is listed here once; a test checks the camelCase side against the contract.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final, Literal, get_args

__all__ = [
    "CALLBACKS",
    "CLEARING_CALLBACKS",
    "METHODS",
    "CallbackName",
    "to_camel",
    "to_snake",
]


def to_camel(snake: str) -> str:
    """``on_user_un_muted`` → ``onUserUnMuted``: the contract's own spelling rule."""
    head, *rest = snake.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def to_snake(camel: str) -> str:
    """``onUserUnMuted`` → ``on_user_un_muted`` (the inverse of :func:`to_camel`)."""
    return "".join("_" + c.lower() if c.isupper() else c for c in camel)


CallbackName = Literal[
    "on_user_joined",
    "on_user_left",
    "on_user_list_updated",
    "on_call_ended",
    "on_call_end_button_pressed",
    "on_session_timeout",
    "on_error",
    "on_media_device_list_updated",
    "on_user_muted",
    "on_user_un_muted",
    "on_screen_share_started",
    "on_screen_share_stopped",
    "on_call_switched_to_video",
    "on_recording_started",
    "on_recording_stopped",
]
"""The 15 callbacks ``OngoingCallListener`` keeps (§C)."""

CALLBACKS: Final = MappingProxyType({name: to_camel(name) for name in get_args(CallbackName)})

CLEARING_CALLBACKS: Final = frozenset({"on_call_ended", "on_session_timeout", "on_call_end_button_pressed"})
"""§D.9: after dispatching one of these, the ``add_call_event_listener`` handlers are cleared."""

_METHODS = (
    "init",
    "generate_token",
    "start_session",
    "join_presentation",
    "end_session",
    "pause_video",
    "un_pause_video",
    "resume_video",
    "mute_audio",
    "un_mute_audio",
    "set_mode",
    "start_screen_share",
    "stop_screen_share",
    "switch_camera",
    "start_recording",
    "stop_recording",
    "switch_to_video_call",
    "open_virtual_background",
    "close_virtual_background",
    "set_background_blur",
    "set_background_image",
    "get_audio_input_devices",
    "get_audio_output_devices",
    "get_video_input_devices",
    "set_audio_input_device",
    "set_audio_output_device",
    "set_video_input_device",
    "get_call_details",
    "add_call_event_listener",
    "remove_call_event_listener",
)

METHODS: Final = MappingProxyType({name: to_camel(name) for name in _METHODS})
"""Every ``CometChatCalls`` static method of §A.2, Python name → contract name."""
