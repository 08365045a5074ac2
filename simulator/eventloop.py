"""How callsim's media processes run: on uvloop where it is installed, collector tuned.

uvloop receives a datagram in 5–7 µs where the default loop takes ~27 µs (docs/media.md),
and a media process receives hundreds of thousands a minute. aiortc and aioice run
on it unchanged. Tests keep pytest-asyncio's default loop.

The cyclic garbage collector's full passes stall the loop in proportion to the heap:
50–300 ms at 200 participants (measured with ``gc.callbacks`` in the SFU and in a
worker), during which no packet moves. The objects of the imports (~100 000) never
die, so they are frozen out of its view, and full passes are made ten times rarer
(they still run: a departed participant's cycles are still collected).
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Coroutine
from typing import Any, Final, TypeVar

__all__ = ["loop_name", "per_loop", "run"]

T = TypeVar("T")


FULL_COLLECTION_EVERY: Final = 100
"""Generation-1 collections between full ones (CPython's default is 10)."""


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, on uvloop when it is available, with the collector tuned."""
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)
    gc.collect()
    gc.freeze()
    try:
        import uvloop  # noqa: PLC0415 - optional: absent on platforms it does not support
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def loop_name() -> str:
    """The running loop's implementation, for reports ("uvloop" or "asyncio")."""
    return "uvloop" if type(asyncio.get_running_loop()).__module__.startswith("uvloop") else "asyncio"


def per_loop(factory: Callable[[], T]) -> Callable[[], T]:
    """A getter of one ``factory()`` per event loop: made at the first call in a running loop,
    forgotten once that loop has closed (a process may run several loops, one after another)."""
    made: dict[asyncio.AbstractEventLoop, T] = {}

    def get() -> T:
        loop = asyncio.get_running_loop()
        found = made.get(loop)
        if found is None:
            found = made[loop] = factory()
            for closed in [other for other in made if other.is_closed()]:
                del made[closed]
        return found

    return get
