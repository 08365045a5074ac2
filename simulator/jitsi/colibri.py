"""The bridge channel's messages (colibri over WebSocket): JSON objects keyed by ``colibriClass``.

This module reads what a client asks of the bridge; the channel itself (who is connected,
what is relayed) is the bridge's (:mod:`simulator.server.jitsi.colibri`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Constraints", "read_constraints"]


@dataclass(frozen=True)
class Constraints:
    """A client's ``ReceiverVideoConstraints``: a default height and some per source name
    (None: no limit)."""

    default: int | None = None
    sources: dict[str, int | None] = field(default_factory=dict)

    def height(self, source_name: str) -> int | None:
        return self.sources.get(source_name, self.default)


def read_constraints(message: dict[str, Any]) -> Constraints:
    """A ``ReceiverVideoConstraints`` message's heights: the default and those per source
    (``-1``, or anything not a number, means no limit)."""

    def height(constraint: object) -> int | None:
        value = constraint.get("maxHeight") if isinstance(constraint, dict) else None
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None

    per_source = message.get("constraints")
    return Constraints(
        height(message.get("defaultConstraints")),
        {str(name): height(c) for name, c in per_source.items()} if isinstance(per_source, dict) else {},
    )
