"""Call sessions on the backend: who is in each room, in join order.

One room per session, whichever door its members came through: native participants
(the signalling WebSocket, :mod:`signalling`) hold a :class:`Connection`; members who came
through the XMPP door (the published SDK, :mod:`simulator.server.jitsi`) hold none, and
hear of the room through their own door. Every announcement goes to the native members'
connections and to the rooms' watchers (the focus), which tell the other door.

State changes here are made first and announced after (STYLE rule 5): when
``participant-left`` goes out, the leaver is already gone from the room.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from simulator import protocol
from simulator.server.outbox import Outbox

if TYPE_CHECKING:
    from simulator.server.forwarder import Forwarder

__all__ = ["Connection", "MediaMember", "Participant", "Room", "RoomWatcher", "Rooms"]


class MediaMember(Protocol):
    """A member's media on the SFU, whichever door: a native participant's peer connections
    (:class:`~simulator.server.sfu.SfuPeer`) or an XMPP participant's bridge transport
    (:class:`~simulator.server.jitsi.endpoint.Endpoint`)."""

    @property
    def forwarders(self) -> dict[str, Forwarder]:
        """What the member publishes, by source (``mic``, ``camera``, ``screen``)."""

    def resync(self) -> None:
        """The room changed: bring what the member receives up to date."""

    def media_counts(self) -> dict[str, int]:
        """What the SFU did for and because of the member (docs/reliability.md)."""

    async def close(self) -> None:
        """Stop forwarding both ways and close the transports (idempotent)."""


class Connection(Outbox[protocol.ServerMessage]):
    """The outgoing side of one native participant's socket (bounded: :mod:`outbox`)."""


@dataclass(eq=False)
class Participant:
    record: protocol.ParticipantRecord
    connection: Connection | None
    """The native signalling socket's outbox; None for a member of another door (XMPP)."""
    sfu: MediaMember | None = None

    def send(self, message: protocol.ServerMessage) -> None:
        """To this native participant's socket (a member of another door has none)."""
        if self.connection is not None:
            self.connection.send(message)

    def dismiss(self, error: protocol.Error) -> None:
        """Tell this native participant ``error`` and close its socket after it: its handler
        then leaves the room like any leaver."""
        if self.connection is not None:
            self.connection.send(error)
            self.connection.close()

    @property
    def participant_id(self) -> str:
        return self.record.participant_id


RoomWatcher = Callable[["Room", protocol.ServerMessage], None]
"""Told every announcement of every room, after the native members (the focus is one)."""


@dataclass(eq=False)
class Room:
    session_id: str
    participants: dict[str, Participant] = field(default_factory=dict)
    watchers: list[RoomWatcher] = field(default_factory=list)

    def __iter__(self) -> Iterator[Participant]:
        return iter(list(self.participants.values()))

    def others(self, participant: Participant) -> list[Participant]:
        return [p for p in self if p is not participant]

    def broadcast(self, message: protocol.ServerMessage, *, exclude: Participant | None = None) -> None:
        """Announce ``message`` to every native member but ``exclude``, then to the watchers."""
        for p in self:
            if p is not exclude:
                p.send(message)
        for watcher in list(self.watchers):
            watcher(self, message)


class Rooms:
    """Every live call session of this backend."""

    def __init__(self) -> None:
        self._rooms: dict[str, Room] = {}
        self._ids = itertools.count(1)
        self.watchers: list[RoomWatcher] = []
        """Shared by every room (the list itself), so a watcher added later sees them all."""

    def get(self, session_id: str) -> Room | None:
        return self._rooms.get(session_id)

    def get_or_create(self, session_id: str) -> Room:
        return self._rooms.setdefault(session_id, Room(session_id, watchers=self.watchers))

    def matching(self, name: str) -> Room | None:
        """The room whose session ID equals ``name`` but for case (XMPP room names are
        case-folded, so a session reached through both doors is matched this way)."""
        return next((r for r in self._rooms.values() if r.session_id.lower() == name.lower()), None)

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
        connection: Connection | None,
        participant_id: str | None = None,
        joined_at: int | None = None,
    ) -> tuple[Room, Participant]:
        room = self.get_or_create(session_id)
        record = protocol.ParticipantRecord(
            participant_id=participant_id or f"p{next(self._ids)}",
            uid=uid,
            name=name,
            avatar=avatar,
            joined_at=joined_at if joined_at is not None else int(time.time() * 1000),
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
