"""The seam between the checks and an implementation under test (STYLE rule 13).

A :class:`Driver` speaks the protocol of ``PROTOCOL.md``: it starts the
implementation, performs a capability handshake, calls methods by their contract
name (``CometChatCalls.startSession``, ``CometChat.initiateCall``) or a harness name
(``Harness.advanceClock``), and collects every callback as an :class:`Event`.

Two errors keep outcomes honest: :class:`ContractError` is the implementation
refusing something the way the contract says (a check may expect it);
:class:`DriverError` is the driver or implementation misbehaving (crash, hang,
malformed reply) — always an error in the report, never a pass.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

__all__ = [
    "CAPABILITIES",
    "CAPABILITY_METHODS",
    "Capabilities",
    "ContractError",
    "Driver",
    "DriverError",
    "Emit",
    "Event",
    "EventLog",
    "capability_of",
]

CAPABILITIES: Final = {
    "virtualClock": "Harness.advanceClock moves every contract timer (idle, ringing, debounce)",
    "callView": "Harness.press / Harness.view: the default layout's buttons and state",
    "mediaEvidence": "Harness.media / Harness.waitMedia: who is heard, frames per source",
    "devices": "Harness.plugDevice / Harness.unplugDevice: hot-plugged fake devices",
    "ringing": "CometChat.*: the Chat SDK's ringing flow",
    "groups": "Harness.createGroup: groups and their members, for §F's group calls",
    "backendClock": "Harness.advanceBackendClock: the backend's clock (token expiry, §G)",
}
"""Optional capabilities an implementation may declare, and what each one allows."""

CAPABILITY_METHODS: Final[dict[str, tuple[str, ...]]] = {
    "virtualClock": ("Harness.advanceClock",),
    "callView": ("Harness.press", "Harness.view"),
    "mediaEvidence": ("Harness.media", "Harness.waitMedia"),
    "devices": ("Harness.plugDevice", "Harness.unplugDevice"),
    "ringing": ("CometChat.*",),
    "groups": ("Harness.createGroup",),
    "backendClock": ("Harness.advanceBackendClock",),
}
"""The protocol methods each capability unlocks (``Prefix.*``: every method of that prefix).

The one table of it: a check may call these only if it declares the capability
(``Sut.call`` enforces it); everything else is the core every implementation has.
"""


def capability_of(method: str) -> str | None:
    """The capability ``method`` belongs to, or None for a core method.

    ``CometChat.login`` → ``ringing``; ``Harness.press`` → ``callView``;
    ``CometChatCalls.startSession`` → None.
    """
    for capability, methods in CAPABILITY_METHODS.items():
        for pattern in methods:
            if method == pattern or (pattern.endswith(".*") and method.startswith(pattern[:-1])):
                return capability
    return None


Emit = Callable[[str, str, str, Any], None]
"""How an implementation reports a callback: (client, listener, callback, payload)."""


@dataclass(frozen=True)
class Capabilities:
    """What the handshake told: who the implementation is and what it can do."""

    implementation: str
    version: str
    capabilities: frozenset[str]
    protocol: int = 1


@dataclass(frozen=True)
class Event:
    """One callback an implementation delivered."""

    seq: int
    client: str
    listener: str
    """``"settings"`` (the settings listener), a listener id, or ``"chat:<id>"``."""
    callback: str
    """The contract's name, e.g. ``onUserJoined``."""
    payload: Any = None


class ContractError(Exception):
    """The implementation refused a call with a contract error (code, name, message, details)."""

    def __init__(self, code: str, message: str, name: str | None = None, details: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.name = name
        self.details = details


class DriverError(Exception):
    """The driver or the implementation misbehaved; reported as an error, never a pass."""


@dataclass
class EventLog:
    """Events in arrival order, awaitable."""

    events: list[Event] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, client: str, listener: str, callback: str, payload: Any) -> None:
        self.events.append(Event(len(self.events), client, listener, callback, payload))
        self._changed.set()

    def clear(self) -> None:
        self.events.clear()

    async def wait(self, predicate: Callable[[list[Event]], bool], timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while not predicate(self.events):
                self._changed = asyncio.Event()
                await self._changed.wait()


class Driver(Protocol):
    """What the plugin needs from any implementation under test."""

    log: EventLog

    @property
    def transcript(self) -> list[str]:
        """The messages exchanged, for failure reports (empty for in-process drivers)."""

    async def start(self) -> Capabilities:
        """Start the implementation and perform the handshake."""

    async def call(self, method: str, params: dict[str, Any]) -> Any:
        """Call a contract or harness method; raises ContractError or DriverError."""

    async def close(self) -> None:
        """Stop the implementation (idempotent)."""

    @property
    def alive(self) -> bool:
        """False once the implementation crashed or was closed."""
