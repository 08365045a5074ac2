"""The injected clock (STYLE rule 9)."""

from __future__ import annotations

import pytest

from simulator.clock import SystemClock, VirtualClock


def test_virtual_timers_fire_in_deadline_then_scheduling_order() -> None:
    clock = VirtualClock()
    log: list[tuple[str, float]] = []
    clock.call_later(2, lambda: log.append(("b", clock.now())))
    clock.call_later(1, lambda: log.append(("a", clock.now())))
    clock.call_later(2, lambda: log.append(("c", clock.now())))
    cancelled = clock.call_later(1.5, lambda: log.append(("x", clock.now())))
    cancelled.cancel()
    clock.advance(1.9)
    assert log == [("a", 1.0)]
    clock.advance(0.1)
    assert log == [("a", 1.0), ("b", 2.0), ("c", 2.0)]
    assert clock.now() == 2.0


def test_a_timer_set_by_a_callback_fires_within_the_same_advance() -> None:
    clock = VirtualClock()
    log: list[float] = []
    clock.call_later(1, lambda: clock.call_later(1, lambda: log.append(clock.now())))
    clock.advance(5)
    assert log == [2.0]
    assert clock.now() == 5.0


def test_the_clock_cannot_go_back() -> None:
    with pytest.raises(ValueError, match="cannot go back"):
        VirtualClock().advance(-1)


async def test_system_clock_uses_the_loop() -> None:
    import asyncio

    clock = SystemClock()
    fired = asyncio.Event()
    clock.call_later(0.01, fired.set)
    async with asyncio.timeout(5):
        await fired.wait()
    assert clock.now() == asyncio.get_running_loop().time() or clock.now() > 0
