"""The Chat SDK's call constants (contract §F.1)."""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

__all__ = ["CALL_MODE", "CALL_STATUS", "CALL_TYPE", "DEFAULT_TIMEOUT", "RECEIVER_TYPE"]

CALL_STATUS: Final = MappingProxyType(
    {
        "INITIATED": "initiated",
        "ONGOING": "ongoing",
        "UNANSWERED": "unanswered",
        "REJECTED": "rejected",
        "BUSY": "busy",
        "CANCELLED": "cancelled",
        "ENDED": "ended",
    }
)
CALL_TYPE: Final = MappingProxyType({"AUDIO": "audio", "VIDEO": "video"})
RECEIVER_TYPE: Final = MappingProxyType({"USER": "user", "GROUP": "group"})
CALL_MODE: Final = MappingProxyType(
    {"DEFAULT": "DEFAULT", "SPOTLIGHT": "SPOTLIGHT", "SINGLE": "SINGLE", "TILE": "TILE", "GRID": "GRID"}
)
"""Note ``GRID`` is ``"GRID"`` here but ``"TILE"`` in the Calls SDK (§J, K37)."""

DEFAULT_TIMEOUT: Final = 45
"""Seconds an outgoing call rings before it is ``unanswered`` (§F.1)."""
