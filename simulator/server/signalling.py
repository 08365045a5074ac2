"""The signalling WebSocket: join with a call token, negotiate media, push every change.

A malformed or out-of-place message is answered with an ``error`` and the socket
stays open; nothing a client sends can disturb another participant's session.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Final

from aiohttp import WSMsgType, web

from simulator import protocol
from simulator.server.errors import ApiError, Codes
from simulator.server.outbox import deliver
from simulator.server.rest import WEBRTC_HOST, require_allowed_origin
from simulator.server.rooms import Connection, Participant, Room
from simulator.server.sfu import SfuPeer
from simulator.server.store import UserRecord

if TYPE_CHECKING:
    from simulator.server.app import Backend

__all__ = ["SignallingHandler"]

logger = logging.getLogger(__name__)

JOIN_TIMEOUT: Final = 15.0
SOCKET_LIMIT: Final = 4 * protocol.MAX_MESSAGE_BYTES
"""aiohttp closes the socket above this; between the two limits the client gets an error."""
TIMEOUT_COMMAND: Final = "call-ending-due-to-timeout"


class SignallingHandler:
    """Serves ``GET /ws`` for one backend."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self.messages: Counter[str] = Counter()
        """Client messages read, by outcome: ``accepted`` (valid) or ``refused`` (invalid)."""
        self.sockets: set[web.WebSocketResponse] = set()

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        require_allowed_origin(request, request.app[WEBRTC_HOST])
        ws = web.WebSocketResponse(max_msg_size=SOCKET_LIMIT, heartbeat=protocol.HEARTBEAT)
        await ws.prepare(request)
        self.sockets.add(ws)
        connection = Connection()
        try:
            async with asyncio.TaskGroup() as group:
                writer = group.create_task(deliver(ws, request, connection, protocol.encode))
                try:
                    await self._serve(ws, connection, request.remote)
                finally:
                    connection.close()
                    await writer
        finally:
            self.sockets.discard(ws)
            await ws.close()
        return ws

    async def _messages(
        self, ws: web.WebSocketResponse, connection: Connection
    ) -> AsyncIterator[protocol.ClientMessage]:
        """Yield each valid client message; answer the invalid ones with an error."""
        async for raw in ws:
            if raw.type is not WSMsgType.TEXT:
                if raw.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                    return
                self.messages["refused"] += 1
                connection.send(
                    protocol.Error(code=Codes.MESSAGE_INVALID, message="messages are JSON text frames")
                )
                continue
            try:
                message = protocol.decode_client_message(raw.data)
            except protocol.ProtocolError as exc:
                self.messages["refused"] += 1
                connection.send(protocol.Error(code=Codes.MESSAGE_INVALID, message=str(exc)))
                continue
            self.messages["accepted"] += 1
            yield message

    async def _serve(self, ws: web.WebSocketResponse, connection: Connection, remote: str | None) -> None:
        messages = self._messages(ws, connection)
        joined = await self._await_join(messages, connection, remote)
        if joined is None:
            return
        room, participant = joined
        try:
            async for message in messages:
                try:
                    if await self._handle(message, room, participant):
                        break
                except ApiError as exc:
                    connection.send(protocol.Error(code=exc.code, message=exc.message))
        finally:
            await self._leave(room, participant)
            self._backend.admission.close_socket(participant.record.uid)

    async def _await_join(
        self, messages: AsyncIterator[protocol.ClientMessage], connection: Connection, remote: str | None
    ) -> tuple[Room, Participant] | None:
        try:
            async with asyncio.timeout(JOIN_TIMEOUT):
                async for message in messages:
                    if not isinstance(message, protocol.Join):
                        connection.send(protocol.Error(code=Codes.NOT_JOINED, message="send join first"))
                        continue
                    try:
                        return self._join(message, connection)
                    except ApiError as exc:
                        self._backend.admission.judge(remote, exc)
                        connection.send(protocol.Error(code=exc.code, message=exc.message, fatal=True))
                        return None
        except TimeoutError:
            connection.send(protocol.Error(code=Codes.NOT_JOINED, message="no join within 15 s", fatal=True))
        return None

    def _join(self, message: protocol.Join, connection: Connection) -> tuple[Room, Participant]:
        backend = self._backend
        claims = backend.tokens.verify(message.token, expected_session=message.session_id)
        user = backend.store.get_user(claims.user.uid) or claims.user
        backend.admission.open_socket(user.uid)  # held until _serve's leave
        try:
            return self._enter(claims.session_id, user, message.state, connection)
        except BaseException:
            backend.admission.close_socket(user.uid)
            raise

    def _enter(
        self, session_id: str, user: UserRecord, state: protocol.MediaState, connection: Connection
    ) -> tuple[Room, Participant]:
        backend = self._backend
        room, participant = backend.rooms.join(
            session_id,
            uid=user.uid,
            name=user.name,
            avatar=user.avatar,
            state=state,
            connection=connection,
        )
        peer = participant.sfu = SfuPeer(participant, room, backend.transports)
        peer.start()
        backend.calls.participant_joined(room.session_id, user.uid)
        others = room.others(participant)
        connection.send(
            protocol.Joined(
                session_id=room.session_id,
                me=participant.record,
                participants=[p.record for p in others],
            )
        )
        room.broadcast(protocol.ParticipantJoined(participant=participant.record), exclude=participant)
        return room, participant

    async def _handle(self, message: protocol.ClientMessage, room: Room, participant: Participant) -> bool:
        """Act on one message; True when the participant has left."""
        sfu = participant.sfu
        assert isinstance(sfu, SfuPeer)  # a native participant's
        match message:
            case protocol.Publish(sdp=sdp, receive=receive):
                answer = await sfu.publish(sdp, receive)
                participant.send(protocol.PublishAnswer(sdp=answer))
                for p in room:
                    if p.sfu is not None:
                        p.sfu.resync()
            case protocol.SubscribeAnswer(sdp=sdp):
                sfu.on_subscribe_answer(sdp)
            case protocol.StateUpdate():
                self._update_state(message, room, participant)
            case protocol.SwitchToVideo():
                self._switch_to_video(room, participant)
            case protocol.Leave(reason=reason, idle_timeout_period=period):
                if reason == "timeout":
                    room.broadcast(
                        protocol.SessionCommand(
                            command=TIMEOUT_COMMAND, uid=participant.record.uid, idle_timeout_period=period
                        ),
                        exclude=participant,
                    )
                await self._leave(room, participant)
                participant.send(protocol.Left())
                return True
            case protocol.Join():
                raise ApiError(Codes.ALREADY_JOINED, "this socket has already joined a session")
        return False

    @staticmethod
    def _update_state(message: protocol.StateUpdate, room: Room, participant: Participant) -> None:
        record = participant.record
        sharing_before = record.screen_sharing
        if message.audio_muted is not None:
            record.audio_muted = message.audio_muted
        if message.video_muted is not None:
            record.video_muted = message.video_muted
        if message.screen_sharing is not None:
            record.screen_sharing = message.screen_sharing
        room.broadcast(protocol.ParticipantState(participant=record), exclude=participant)
        if record.screen_sharing != sharing_before:
            for p in room.others(participant):
                if p.sfu is not None:
                    p.sfu.resync()

    @staticmethod
    def _switch_to_video(room: Room, participant: Participant) -> None:
        # K14: the request is accepted by the first other participant; with nobody
        # to accept it, nothing happens (as an unanswered prompt in the bundle).
        others = room.others(participant)
        if not participant.record.audio_only or not others:
            return
        responder = others[0]
        for p in room:
            p.record.audio_only = False
        room.broadcast(
            protocol.SwitchedToVideo(
                session_id=room.session_id, initiator=participant.record, responder=responder.record
            )
        )

    async def _leave(self, room: Room, participant: Participant) -> None:
        await self._backend.depart(room, participant)

    async def close_all(self) -> None:
        """Close every socket (backend shutdown); each handler then runs its leave."""
        for ws in list(self.sockets):
            await ws.close(code=1001, message=b"backend shutting down")
