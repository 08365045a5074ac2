"""Call sessions on the backend: who is in each room, in join order.

State changes here are made first and announced after (STYLE rule 5): when
``participant-left`` goes out, the leaver is already gone from the room.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from simulator import protocol

if TYPE_CHECKING:
    from simulator.server.sfu import SfuPeer

__all__ = ["Connection", "Participant", "Room", "Rooms"]


class Connection:
    """The outgoing side of one participant's socket: an ordered queue a writer drains."""

    def __init__(self) -> None:
        self.outbox: asyncio.Queue[protocol.ServerMessage | None] = asyncio.Queue()

    def send(self, message: protocol.ServerMessage) -> None:
        self.outbox.put_nowait(message)

    def close(self) -> None:
        self.outbox.put_nowait(None)


@dataclass(eq=False)
class Participant:
    record: protocol.ParticipantRecord
    connection: Connection
    sfu: SfuPeer | None = None

    @property
    def participant_id(self) -> str:
        return self.record.participant_id


@dataclass(eq=False)
class Room:
    session_id: str
    participants: dict[str, Participant] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Participant]:
        return iter(list(self.participants.values()))

    def others(self, participant: Participant) -> list[Participant]:
        return [p for p in self if p is not participant]

    def broadcast(self, message: protocol.ServerMessage, *, exclude: Participant | None = None) -> None:
        for p in self:
            if p is not exclude:
                p.connection.send(message)


class Rooms:
    """Every live call session of this backend."""

    def __init__(self) -> None:
        self._rooms: dict[str, Room] = {}
        self._ids = itertools.count(1)

    def get(self, session_id: str) -> Room | None:
        return self._rooms.get(session_id)

    def __iter__(self) -> Iterator[Room]:
        return iter(list(self._rooms.values()))

    def participant_count(self, session_id: str) -> int:
        room = self._rooms.get(session_id)
        return 0 if room is None else len(room.participants)

    def join(
        self,
        session_id: str,
        *,
        uid: str,
        name: str,
        avatar: str,
        state: protocol.MediaState,
        connection: Connection,
    ) -> tuple[Room, Participant]:
        room = self._rooms.setdefault(session_id, Room(session_id))
        record = protocol.ParticipantRecord(
            participant_id=f"p{next(self._ids)}",
            uid=uid,
            name=name,
            avatar=avatar,
            joined_at=int(time.time() * 1000),
            audio_muted=state.audio_muted,
            video_muted=state.video_muted,
            audio_only=state.audio_only,
        )
        participant = Participant(record, connection)
        room.participants[record.participant_id] = participant
        return room, participant

    def leave(self, room: Room, participant: Participant) -> bool:
        """Remove ``participant``; False if it was already gone."""
        if room.participants.pop(participant.participant_id, None) is None:
            return False
        if not room.participants:
            self._rooms.pop(room.session_id, None)
        return True
