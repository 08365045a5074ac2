"""The injected clock every contract timer runs on (STYLE rule 9).

The idle timeout (contract §E), the ringing timeout (§F.3) and the device-list
debounce (§I) never read the time themselves: they receive a :class:`Clock`.
Production code passes a :class:`SystemClock`; tests and the conformance suite pass
a :class:`VirtualClock` and move time with :meth:`VirtualClock.advance`, so nothing
sleeps through 180 seconds.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from typing import Protocol

__all__ = ["Clock", "SystemClock", "Timer", "VirtualClock"]


class Timer(Protocol):
    """A one-shot timer returned by :meth:`Clock.call_later`."""

    def cancel(self) -> None:
        """Stop the timer; cancelling twice or after it fired is harmless."""

    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""


class Clock(Protocol):
    """What contract timers need: the time, and one-shot callbacks."""

    def now(self) -> float:
        """Seconds on this clock's monotonic scale."""

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        """Run ``callback`` once, ``delay`` seconds from now (synchronously, on the loop)."""


class SystemClock:
    """The event loop's monotonic clock."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        return asyncio.get_running_loop().call_later(max(0.0, delay), callback)


class _VirtualTimer:
    __slots__ = ("_cancelled", "callback", "deadline")

    def __init__(self, deadline: float, callback: Callable[[], None]) -> None:
        self.deadline = deadline
        self.callback = callback
        self._cancelled = False

    def cancel(self) -> None:
        self._cancelled = True

    def cancelled(self) -> bool:
        return self._cancelled


class VirtualClock:
    """A clock that moves only when told to.

    Timers fire in deadline order (ties in scheduling order) during :meth:`advance`;
    a timer scheduled by a firing callback fires in the same call if its deadline is
    within the advanced span.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._heap: list[tuple[float, int, _VirtualTimer]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        timer = _VirtualTimer(self._now + max(0.0, delay), callback)
        heapq.heappush(self._heap, (timer.deadline, next(self._seq), timer))
        return timer

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, firing every timer that falls due."""
        if seconds < 0:
            raise ValueError(f"a clock cannot go back (advance({seconds}))")
        target = self._now + seconds
        while self._heap and self._heap[0][0] <= target:
            deadline, _, timer = heapq.heappop(self._heap)
            if timer.cancelled():
                continue
            self._now = deadline
            timer.callback()
        self._now = target

    def pending(self) -> int:
        """How many live timers are waiting (for tests and leak checks)."""
        return sum(1 for _, _, t in self._heap if not t.cancelled())
