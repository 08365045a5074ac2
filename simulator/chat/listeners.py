"""``CallListener``: the Chat SDK's five call callbacks (contract §F.4)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

__all__ = ["CALL_CALLBACKS", "CallListener", "CallListenerName"]

CallListenerName = Literal[
    "on_incoming_call_received",
    "on_outgoing_call_accepted",
    "on_outgoing_call_rejected",
    "on_incoming_call_cancelled",
    "on_call_ended_message_received",
]
CALL_CALLBACKS: tuple[CallListenerName, ...] = (
    "on_incoming_call_received",
    "on_outgoing_call_accepted",
    "on_outgoing_call_rejected",
    "on_incoming_call_cancelled",
    "on_call_ended_message_received",
)


@dataclass(frozen=True, slots=True)
class CallListener:
    """Each callback receives the ``Call`` the message carried."""

    on_incoming_call_received: Callable[..., object] | None = None
    """A call rings here (receiver)."""
    on_outgoing_call_accepted: Callable[..., object] | None = None
    """The receiver accepted (initiator)."""
    on_outgoing_call_rejected: Callable[..., object] | None = None
    """Rejected, busy, or unanswered (initiator)."""
    on_incoming_call_cancelled: Callable[..., object] | None = None
    """The initiator cancelled, or the call went unanswered (receiver)."""
    on_call_ended_message_received: Callable[..., object] | None = None
    """The other side ended the call."""
