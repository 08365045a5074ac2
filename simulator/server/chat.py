"""The chat socket: each logged-in user's connection for real-time call messages (§F.4).

A user may be connected more than once (several devices); a message for a user goes
to every one of its connections. The user whose request caused a change is not sent
it (:class:`CallService` leaves it out): it gets the ``Call`` in its answer instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

from aiohttp import WSMsgType, web

from simulator import protocol
from simulator.server.admission import Admission
from simulator.server.errors import Codes
from simulator.server.outbox import Outbox, deliver
from simulator.server.rest import WEBRTC_HOST, require_allowed_origin

if TYPE_CHECKING:
    from simulator.server.store import Store

__all__ = ["ChatHub"]

logger = logging.getLogger(__name__)

LOGIN_TIMEOUT: Final = 15.0


class _ChatConnection(Outbox[protocol.ChatServerMessage]):
    def __init__(self, uid: str) -> None:
        super().__init__()
        self.uid = uid


class ChatHub:
    """Who is connected, and delivery of call messages to users."""

    def __init__(self, store: Store, admission: Admission) -> None:
        self._store = store
        self._admission = admission
        self._connections: dict[str, list[_ChatConnection]] = {}
        self.sockets: set[web.WebSocketResponse] = set()

    def deliver(self, uids: Iterable[str], message: protocol.ChatServerMessage) -> int:
        """Queue ``message`` for every connection of ``uids``; how many connections got it."""
        count = 0
        for uid in dict.fromkeys(uids):
            for connection in self._connections.get(uid, ()):
                connection.send(message)
                count += 1
        return count

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """``GET /chat``: log in with an auth token, then receive call messages."""
        require_allowed_origin(request, request.app[WEBRTC_HOST])
        ws = web.WebSocketResponse(max_msg_size=64 * 1024, heartbeat=protocol.HEARTBEAT)
        await ws.prepare(request)
        self.sockets.add(ws)
        try:
            uid = await self._login(ws, request.remote)
            if uid is not None:
                await self._serve(ws, request, uid)
        finally:
            self.sockets.discard(ws)
            await ws.close()
        return ws

    async def _login(self, ws: web.WebSocketResponse, remote: str | None) -> str | None:
        try:
            async with asyncio.timeout(LOGIN_TIMEOUT):
                async for raw in ws:
                    if raw.type is not WSMsgType.TEXT:
                        return None
                    try:
                        message = protocol.decode_chat_client_message(raw.data)
                    except protocol.ProtocolError as exc:
                        await ws.send_str(
                            protocol.encode(protocol.Error(code=Codes.MESSAGE_INVALID, message=str(exc)))
                        )
                        continue
                    user = self._store.user_for_auth_token(message.auth_token)
                    if user is None:
                        self._admission.auth_failed(remote)
                        error = protocol.Error(
                            code=Codes.AUTH_TOKEN_NOT_FOUND,
                            message="The auth token is not found or invalid.",
                            fatal=True,
                        )
                        await ws.send_str(protocol.encode(error))
                        return None
                    await ws.send_str(protocol.encode(protocol.ChatLoggedIn(uid=user.uid)))
                    return user.uid
        except TimeoutError:
            return None
        return None

    async def _serve(self, ws: web.WebSocketResponse, request: web.Request, uid: str) -> None:
        connection = _ChatConnection(uid)
        self._connections.setdefault(uid, []).append(connection)
        try:
            async with asyncio.TaskGroup() as group:
                writer = group.create_task(deliver(ws, request, connection, protocol.encode))
                async for raw in ws:
                    # Nothing is expected after login; anything sent is answered, never acted on.
                    if raw.type is WSMsgType.TEXT:
                        connection.send(
                            protocol.Error(
                                code=Codes.MESSAGE_INVALID, message="the chat socket only delivers"
                            )
                        )
                connection.close()
                await writer
        finally:
            connections = self._connections.get(uid, [])
            with contextlib.suppress(ValueError):
                connections.remove(connection)
            if not connections:
                self._connections.pop(uid, None)

    async def close_all(self) -> None:
        for ws in list(self.sockets):
            await ws.close(code=1001, message=b"backend shutting down")
