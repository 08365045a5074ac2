"""Token buckets on an injected clock: one for a stream's NACKs, many keyed by client for
admission (rates per IP address, per user)."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Final

__all__ = ["Budget", "Budgets"]


class Budget:
    """``rate`` a second, at most ``burst`` at once (``rate`` unless told), on the clock ``now``."""

    def __init__(self, rate: float, now: Callable[[], float], *, burst: float | None = None) -> None:
        self._rate = rate
        self._burst = rate if burst is None else burst
        self._now = now
        self._tokens = self._burst
        self._at = now()

    def _refill(self) -> None:
        now = self._now()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now

    def take(self, wanted: int) -> int:
        """As many of ``wanted`` as the budget allows now (and spend them)."""
        self._refill()
        granted = min(wanted, int(self._tokens))
        self._tokens -= granted
        return granted

    def available(self) -> float:
        """What could be taken now."""
        self._refill()
        return self._tokens

    @property
    def full(self) -> bool:
        return self.available() >= self._burst

    def seconds_until(self, amount: float = 1.0) -> float:
        """How long until ``amount`` may be taken."""
        return max(0.0, (amount - self.available()) / self._rate)


PRUNE_ABOVE: Final = 10_000
"""Keys kept before full buckets (clients that went quiet) are forgotten."""


class Budgets:
    """One :class:`Budget` per key (an IP address, a user), made on first use; memory stays
    bounded because a full bucket is the same as a new one and is dropped when many are held."""

    def __init__(self, rate: float, now: Callable[[], float], *, burst: float | None = None) -> None:
        self._rate = rate
        self._burst = burst
        self._now = now
        self._by_key: dict[Hashable, Budget] = {}

    def of(self, key: Hashable) -> Budget:
        budget = self._by_key.get(key)
        if budget is None:
            if len(self._by_key) >= PRUNE_ABOVE:
                self._by_key = {k: b for k, b in self._by_key.items() if not b.full}
            budget = self._by_key[key] = Budget(self._rate, self._now, burst=self._burst)
        return budget

    def __len__(self) -> int:
        return len(self._by_key)
