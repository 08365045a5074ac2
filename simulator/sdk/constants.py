"""Constants of the contract: layout modes (§J) and the audience-free statics (§A.1)."""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

__all__ = ["CALL_MODE", "DEFAULT_IDLE_TIMEOUT", "IDLE_PROMPT_LEAD", "MIN_IDLE_TIMEOUT", "MODE"]

CALL_MODE: Final = MappingProxyType({"DEFAULT": "DEFAULT", "SPOTLIGHT": "SPOTLIGHT", "GRID": "TILE"})
"""``CometChatCalls.CALL_MODE``: note ``GRID`` is ``"TILE"`` (§J)."""

MODE: Final = CALL_MODE
"""§A.1: the very same object as ``CALL_MODE``."""

MODE_ALIASES: Final = MappingProxyType({"GRID": "TILE"})
"""K37: the Chat SDK's ``CALL_MODE.GRID`` is ``"GRID"``; the reference treats it as TILE."""

DEFAULT_IDLE_TIMEOUT: Final = 180.0
MIN_IDLE_TIMEOUT: Final = 120.0
IDLE_PROMPT_LEAD: Final = 60.0
"""§E.3: the prompt shows a fixed 60-second countdown before the session ends."""

DEVICE_LIST_DEBOUNCE: Final = 0.5
"""§I: ``onMediaDeviceListUpdated`` is debounced 500 ms."""
