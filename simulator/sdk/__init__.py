"""The reference Calls SDK (contract §A–§J): instance-based, snake_case.

``CallsClient`` is one participant; :mod:`simulator.sdk.facade` mirrors the doc's
static ``CometChatCalls`` for single-user use.
"""

from simulator.sdk.app_settings import CallAppSettings, CallAppSettingsBuilder
from simulator.sdk.call_view import CallView, Tile
from simulator.sdk.client import CallsClient, MediaProfile
from simulator.sdk.constants import CALL_MODE, MODE
from simulator.sdk.errors import (
    ApiError,
    CometChatCallsException,
    InvalidArgumentError,
    InvalidStateError,
)
from simulator.sdk.events import (
    CallSwitchedToVideoEvent,
    CallUser,
    ListedUser,
    MediaDeviceList,
    ParticipantInfo,
    UserMutedEvent,
    to_wire,
)
from simulator.sdk.idle import IdleState
from simulator.sdk.listeners import ListenerRegistry, OngoingCallListener
from simulator.sdk.reconnect import ReconnectPolicy
from simulator.sdk.settings import CallSettings, CallSettingsBuilder, MainVideoContainerSetting
from simulator.sdk.token_api import CallToken

__all__ = [
    "CALL_MODE",
    "MODE",
    "ApiError",
    "CallAppSettings",
    "CallAppSettingsBuilder",
    "CallSettings",
    "CallSettingsBuilder",
    "CallSwitchedToVideoEvent",
    "CallToken",
    "CallUser",
    "CallView",
    "CallsClient",
    "CometChatCallsException",
    "IdleState",
    "InvalidArgumentError",
    "InvalidStateError",
    "ListedUser",
    "ListenerRegistry",
    "MainVideoContainerSetting",
    "MediaDeviceList",
    "MediaProfile",
    "OngoingCallListener",
    "ParticipantInfo",
    "ReconnectPolicy",
    "Tile",
    "UserMutedEvent",
    "to_wire",
]
