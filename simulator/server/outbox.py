"""A socket's outgoing messages: ordered, bounded, and a reader too slow to keep up is cut off.

Each WebSocket the backend serves (signalling, chat) has one :class:`Outbox` and one writer
(:func:`deliver`). A client that stops reading fills its TCP buffers, the writer waits, and
messages queue: past :data:`OUTBOX_LIMIT` the client is dropped — its connection reset, as it
could not read a close frame either — and leaves its session like any other leaver. One slow
or hostile reader costs the server a bounded amount of memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Final, Generic, TypeVar

from aiohttp import web

__all__ = ["OUTBOX_LIMIT", "Outbox", "deliver"]

logger = logging.getLogger(__name__)

OUTBOX_LIMIT: Final = 1024
"""Messages waiting for one socket before its reader is judged too slow (a busy room sends
a few per second per member; a reader this far behind has stopped reading)."""

T = TypeVar("T")


class Outbox(Generic[T]):
    """Messages for one socket, in order, at most ``limit`` waiting."""

    def __init__(self, limit: int = OUTBOX_LIMIT) -> None:
        self.limit = limit
        self._queue: asyncio.Queue[T | None] = asyncio.Queue()
        self._closed = False
        self.overflowed = asyncio.Event()

    def send(self, message: T) -> None:
        """Queue ``message``; past the limit the socket is marked to be cut off instead."""
        if self._closed or self.overflowed.is_set():
            return
        if self._queue.qsize() >= self.limit:
            self.overflowed.set()
            return
        self._queue.put_nowait(message)

    def close(self) -> None:
        """No more messages: the writer ends after the ones queued (idempotent)."""
        if not self._closed:
            self._closed = True
            self._queue.put_nowait(None)

    def __len__(self) -> int:
        return self._queue.qsize()

    async def get(self) -> T | None:
        return await self._queue.get()


async def deliver(
    ws: web.WebSocketResponse, request: web.Request, outbox: Outbox[T], encode: Callable[[T], str]
) -> None:
    """Write ``outbox`` to ``ws`` until it closes; cut the socket off if it overflows."""
    writer = asyncio.ensure_future(_write(ws, outbox, encode))
    overflow = asyncio.ensure_future(outbox.overflowed.wait())
    try:
        await asyncio.wait((writer, overflow), return_when=asyncio.FIRST_COMPLETED)
    finally:
        overflow.cancel()
        if not writer.done():
            # A frame is written whole before its drain is awaited: cancelling is frame-safe.
            writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer
        with contextlib.suppress(asyncio.CancelledError):
            await overflow
    if outbox.overflowed.is_set():
        # A reader this far behind cannot take a close frame either (it would wait behind
        # everything queued): the connection is reset, and the handler's reader ends with it.
        logger.warning(
            "%s %s from %s: dropped, %d messages behind",
            request.method, request.path, request.remote, outbox.limit,
        )  # fmt: skip
        if request.transport is not None:
            request.transport.abort()


async def _write(ws: web.WebSocketResponse, outbox: Outbox[T], encode: Callable[[T], str]) -> None:
    while (message := await outbox.get()) is not None:
        if ws.closed:
            continue
        with contextlib.suppress(ConnectionError):
            await ws.send_str(encode(message))
    # A closed outbox ends the conversation: when the server closed it (a dismissed participant),
    # the handler's reader is still waiting, and this close ends it.
    with contextlib.suppress(ConnectionError):
        await ws.close()
