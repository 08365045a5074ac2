"""The bridge channel: the colibri WebSocket a Jitsi-style client opens to the bridge.

The focus puts its URL in the Jingle transport (``<web-socket url>``):
``wss://<host>/colibri-ws/<session>/<endpoint>``. Over it, JSON messages keyed by
``colibriClass`` go both ways. The bridge sends:

* ``ServerHello`` when the channel opens (lib-jitsi-meet logs it);
* ``ForwardedSources``: the names of the video sources it forwards to this client
  (lib-jitsi-meet's track streaming status reads it);
* ``EndpointMessage`` from other clients, relayed (``to`` empty: everyone).

It also sends ``SenderSourceConstraints``: the tallest layer anyone takes of the client's
camera (:meth:`Endpoint.review_sender_limit`), so layers nobody receives are not encoded.

It reads ``ReceiverVideoConstraints`` (a default height and some per source: the layer each
simulcast camera sends it follows them) and ``EndpointMessage``; everything else a client says
(``EndpointStats``, ``LastNChangedEvent``, …) is accepted and ignored. A malformed message is
answered with nothing and the channel stays open: a client's bug harms no one else.

Not sent: ``DominantSpeakerEndpointChangeEvent`` (the SFU reads no audio levels; the SDK then
keeps its own choice of main tile) and ``AudioSourcesMap``/``VideoSourcesMap``: with SSRC
rewriting on, lib-jitsi-meet still takes remote sources from the focus's Jingle
``source-add``, which the bridge uses (docs/jitsi.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any, Final

from aiohttp import WSMsgType, web

from simulator import protocol
from simulator.jitsi.colibri import forwarded_sources, read_constraints, server_hello
from simulator.server.jitsi.endpoint import Endpoint

__all__ = ["BridgeChannels"]

logger = logging.getLogger(__name__)

MAX_MESSAGE: Final = 64 * 1024
QUEUED: Final = 256
"""Messages waiting for one client at most; a client that does not read loses the newest."""


class _Channel:
    """One open channel: what is to be sent waits in a bounded queue, sent by its handler."""

    def __init__(self, socket: web.WebSocketResponse, *, receives: bool) -> None:
        self.socket = socket
        self.receives = receives
        """False for a companion's channel: nothing is relayed to it."""
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUED)

    def send(self, message: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            logger.warning("bridge channel: a client that does not read; message dropped")

    async def write(self) -> None:
        while True:
            await self.socket.send_str(json.dumps(await self.queue.get()))


class BridgeChannels:
    """Every open bridge channel, by (session, endpoint)."""

    def __init__(self, find: Callable[[str, str], Endpoint | None]) -> None:
        self._find = find
        self._open: dict[tuple[str, str], _Channel] = {}

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/colibri-ws/{session}/{endpoint}", self.websocket)]

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        session, name = request.match_info["session"], request.match_info["endpoint"]
        endpoint = self._find(session, name)
        if endpoint is None:
            raise web.HTTPNotFound(reason=f"no bridge endpoint {name!r} in session {session!r}")
        socket = web.WebSocketResponse(max_msg_size=MAX_MESSAGE, heartbeat=protocol.HEARTBEAT)
        await socket.prepare(request)
        key = (session.lower(), name)
        channel = self._open[key] = _Channel(socket, receives=endpoint.receives)
        endpoint.channel = channel.send
        endpoint.sender_limit = None  # a new channel is told afresh
        channel.send(server_hello("callsim"))
        if endpoint.receives:
            self.forwarded_changed(endpoint)
        try:
            async with asyncio.TaskGroup() as group:
                writer = group.create_task(channel.write())
                async for message in socket:
                    if message.type is not WSMsgType.TEXT:
                        break
                    self._on_message(endpoint, session, name, message.data)
                writer.cancel()
        except* ConnectionError:
            pass
        finally:
            if self._open.get(key) is channel:
                del self._open[key]
                endpoint.channel = None
        return socket

    def _on_message(self, endpoint: Endpoint, session: str, name: str, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            logger.info("%s: bridge channel: not JSON, ignored", name)
            return
        if not isinstance(message, dict) or not endpoint.receives:
            return  # a companion's channel carries nothing either way
        match message.get("colibriClass"):
            case "ReceiverVideoConstraints":
                endpoint.constrain(read_constraints(message))
            case "EndpointMessage":
                relayed = {**message, "from": name}
                to = message.get("to") or ""
                for (other_session, other), channel in list(self._open.items()):
                    mine = other_session == session.lower() and other != name
                    if mine and to in ("", other) and channel.receives:
                        channel.send(relayed)
            case _:
                pass

    def forwarded_changed(self, endpoint: Endpoint) -> None:
        """Tell a client which video sources it now receives."""
        channel = self._open.get((endpoint.room.session_id.lower(), endpoint.name))
        if channel is not None:
            names = [r.describe("").name for r in endpoint.remote.values() if r.kind == "video"]
            channel.send(forwarded_sources(names))
