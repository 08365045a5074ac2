"""The bridge channel, from the client's side: the colibri WebSocket lib-jitsi-meet opens to
the bridge once its media session is offered (the Jingle transport's ``<web-socket url>``).

:class:`BridgeChannel` says what the participant wants to receive (``ReceiverVideoConstraints``,
at once), sends and receives ``EndpointMessage``\\ s, and keeps what the bridge tells it: its
``ServerHello``, the video sources it forwards (``ForwardedSources``), the tallest layer
anyone takes of its camera (``SenderSourceConstraints``), and the source maps of a bridge that
rewrites SSRCs (``AudioSourcesMap``/``VideoSourcesMap``), handed to ``on_sources_map``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import Callable
from typing import Any, Final, Literal

import aiohttp

from simulator.jitsi.colibri import (
    MappedSource,
    endpoint_message,
    read_sender_limit,
    read_sources_map,
    receiver_constraints,
)

__all__ = ["BridgeChannel"]

logger = logging.getLogger(__name__)

KEPT: Final = 256
"""Endpoint messages kept, newest last (a chatty room cannot grow a participant's memory)."""

SourcesMapped = Callable[[Literal["audio", "video"], list[MappedSource]], None]


class BridgeChannel:
    """One participant's bridge channel: ``await open()``, then it reads until ``close()``."""

    def __init__(
        self,
        url: str,
        *,
        http: aiohttp.ClientSession,
        tls: ssl.SSLContext | bool | None = None,
        receive_height: int | None = 360,
        on_sources_map: SourcesMapped | None = None,
        on_sender_limit: Callable[[int | None], None] | None = None,
    ) -> None:
        self.url = url
        self._http = http
        self._tls = tls
        self.receive_height = receive_height
        self._on_sources_map = on_sources_map
        self._on_sender_limit = on_sender_limit
        self.hello: str | None = None
        """The bridge's version, from its ``ServerHello``."""
        self.forwarded: list[str] = []
        """The video sources the bridge last said it forwards here, by name."""
        self.sender_limit: int | None = None
        """The tallest layer anyone takes of this participant's camera (None: not said)."""
        self.messages: list[tuple[str, Any]] = []
        """``(from, payload)`` of each ``EndpointMessage`` received, newest last."""
        self._changed = asyncio.Condition()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Connect and say what it wants to receive (:class:`aiohttp.ClientError` if it cannot)."""
        self._ws = await self._http.ws_connect(self.url, ssl=True if self._tls is None else self._tls)
        self._reader = asyncio.create_task(self._read(self._ws), name=f"bridge-channel:{self.url}")
        await self.send(receiver_constraints(self.receive_height))

    async def send(self, message: dict[str, Any]) -> None:
        if self._ws is None or self._ws.closed:
            raise ConnectionError("the bridge channel is not open")
        await self._ws.send_str(json.dumps(message))

    async def send_endpoint_message(self, payload: Any, to: str = "") -> None:
        """An ``EndpointMessage`` to one endpoint (``to``) or everyone (empty)."""
        await self.send(endpoint_message(payload, to))

    async def wait_for(self, condition: Callable[[], bool], timeout: float) -> None:
        """Until ``condition()`` holds over what the bridge said (TimeoutError after ``timeout``)."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(condition)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for frame in ws:
            if frame.type is not aiohttp.WSMsgType.TEXT:
                break
            try:
                message = json.loads(frame.data)
            except ValueError:
                logger.info("bridge channel: not JSON, ignored")
                continue
            if isinstance(message, dict):
                self._on_message(message)
            async with self._changed:
                self._changed.notify_all()

    def _on_message(self, message: dict[str, Any]) -> None:
        match message.get("colibriClass"):
            case "ServerHello":
                self.hello = str(message.get("version", ""))
            case "ForwardedSources":
                names = message.get("forwardedSources")
                self.forwarded = [str(n) for n in names] if isinstance(names, list) else []
            case "SenderSourceConstraints":
                self.sender_limit = read_sender_limit(message)
                if self._on_sender_limit is not None:
                    self._on_sender_limit(self.sender_limit)
            case "EndpointMessage":
                self.messages.append((str(message.get("from", "")), message.get("msgPayload")))
                del self.messages[:-KEPT]
            case "AudioSourcesMap" | "VideoSourcesMap" if self._on_sources_map is not None:
                self._on_sources_map(*read_sources_map(message))
            case _:
                pass  # dominant speaker, stats, …: nothing a virtual participant acts on

    async def close(self) -> None:
        """Close the channel and stop reading (idempotent)."""
        if self._ws is not None and not self._ws.closed:
            await self._ws.close()
        if self._reader is not None:
            await self._reader
            self._reader = None
