"""The Chat SDK's ringing-flow calls (contract §F): ``ChatClient``, ``Call``, ``CallListener``."""

from simulator.chat.call import Call, Group, User
from simulator.chat.client import ChatClient
from simulator.chat.constants import CALL_MODE, CALL_STATUS, CALL_TYPE, DEFAULT_TIMEOUT, RECEIVER_TYPE
from simulator.chat.errors import CALL_ERROR, CometChatException
from simulator.chat.listeners import CallListener

__all__ = [
    "CALL_ERROR",
    "CALL_MODE",
    "CALL_STATUS",
    "CALL_TYPE",
    "DEFAULT_TIMEOUT",
    "RECEIVER_TYPE",
    "Call",
    "CallListener",
    "ChatClient",
    "CometChatException",
    "Group",
    "User",
]
