"""The client's reconnect policy: off unless asked for.

The contract has a lost backend end the session: ``onError`` (``UNKNOWN_API_ERROR``), then
closed (docs/contract.md §H; the published SDK's behaviour). A harness that restarts its
backend on purpose, or an application that prefers to ride out a blip, gives a
:class:`ReconnectPolicy` to :class:`~simulator.sdk.CallsClient`: when the signalling socket
is lost (not when the backend refuses or ends the session), the session drops its media,
waits, joins again with the same call token, and publishes again — up to ``attempts``
times in a row, waiting ``first_delay`` seconds and doubling up to ``max_delay``. The
application hears of the change as the contract's events: who is gone (``onUserLeft``)
and who is new (``onUserJoined``) when it is back; nothing for those still there. When
every attempt fails, the session ends as it would have at once: ``onError``, then closed.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ReconnectPolicy"]


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """How a session rejoins after losing its backend (see the module's docs)."""

    attempts: int = 6
    first_delay: float = 0.5
    max_delay: float = 8.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.first_delay < 0 or self.max_delay < self.first_delay:
            raise ValueError(
                f"a reconnect policy needs attempts >= 1 and 0 <= first_delay <= max_delay: {self}"
            )

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt number ``attempt`` (0-based)."""
        return float(min(self.max_delay, self.first_delay * 2.0**attempt))
