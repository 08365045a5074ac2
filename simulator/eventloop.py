"""The event loop callsim's processes run on: uvloop where it is installed.

uvloop receives a datagram in 5–7 µs where the default loop takes ~27 µs (MEDIA.md),
and a media process receives hundreds of thousands a minute. aiortc and aioice run
on it unchanged. Tests keep pytest-asyncio's default loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["loop_name", "run"]

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, on uvloop when it is available."""
    try:
        import uvloop  # noqa: PLC0415 - optional: absent on platforms it does not support
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def loop_name() -> str:
    """The running loop's implementation, for reports ("uvloop" or "asyncio")."""
    return "uvloop" if type(asyncio.get_running_loop()).__module__.startswith("uvloop") else "asyncio"
