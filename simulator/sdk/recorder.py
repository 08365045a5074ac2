"""``EventRecorder``: a listener that keeps every callback with its payload, in order.

Tests assert whole histories with it (STYLE rule 16) and wait on events with a
timeout instead of sleeping; the demo prints what it recorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from simulator.sdk.listeners import OngoingCallListener
from simulator.sdk.names import CALLBACKS

__all__ = ["EventRecorder"]


class EventRecorder:
    """Records ``(callback, args)`` for every callback it is given (by default the 15 of §C).

    :meth:`listener` is an ``OngoingCallListener``; :meth:`handlers` a mapping of the
    names to recording functions, which any registry accepts (the Chat SDK's too).
    """

    def __init__(self, name: str = "recorder", names: Iterable[str] = CALLBACKS) -> None:
        self.name = name
        self._names = tuple(names)
        self.events: list[tuple[str, tuple[Any, ...]]] = []
        self._changed: asyncio.Event | None = None

    def _record(self, callback: str) -> Callable[..., None]:
        def record(*args: Any) -> None:
            self.events.append((callback, args))
            if self._changed is not None:
                self._changed.set()

        return record

    def handlers(self) -> dict[str, Callable[..., None]]:
        """Callback name → a function recording that callback here."""
        return {name: self._record(name) for name in self._names}

    def listener(self) -> OngoingCallListener:
        """A fresh ``OngoingCallListener`` whose every callback records here."""
        return OngoingCallListener(**self.handlers())

    def names(self) -> list[str]:
        """The callbacks received, in order."""
        return [name for name, _ in self.events]

    def of(self, callback: str) -> list[tuple[Any, ...]]:
        """The argument tuples of every ``callback`` received."""
        return [args for name, args in self.events if name == callback]

    def clear(self) -> None:
        self.events.clear()

    async def wait_for(self, callback: str, count: int = 1, timeout: float = 10.0) -> tuple[Any, ...]:
        """Wait until ``callback`` has been received ``count`` times; its last arguments."""
        async with asyncio.timeout(timeout):
            while len(self.of(callback)) < count:
                self._changed = asyncio.Event()
                await self._changed.wait()
        return self.of(callback)[count - 1]
