"""``Call``, ``User`` and ``Group`` of the Chat SDK (contract §F.2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simulator import protocol

__all__ = ["Call", "Group", "User"]


@dataclass
class User:
    """A user; the logged-in one carries its auth token (for ``generate_token``)."""

    uid: str
    name: str = ""
    avatar: str = ""
    auth_token: str | None = None

    def get_uid(self) -> str:
        return self.uid

    def get_name(self) -> str:
        return self.name

    def get_avatar(self) -> str:
        return self.avatar

    def get_auth_token(self) -> str | None:
        return self.auth_token


@dataclass
class Group:
    guid: str
    name: str = ""

    def get_guid(self) -> str:
        return self.guid

    def get_name(self) -> str:
        return self.name


def _party(party: protocol.Party) -> User | Group:
    if party.kind == "group":
        return Group(party.id, party.name)
    return User(party.id, party.name, party.avatar)


class Call:
    """A call: ``Call(receiver_id, type, receiver_type)`` to initiate, or one the backend sent."""

    def __init__(self, receiver_id: str, type: str, receiver_type: str, category: str = "call") -> None:
        self.receiver_id = receiver_id
        self.type = type
        self.receiver_type = receiver_type
        self.category = category
        self.session_id: str | None = None
        self.status: str | None = None
        self.call_initiator: User | None = None
        self.call_receiver: User | Group | None = None
        self.sender: User | None = None
        self.initiated_at: float | None = None
        self.joined_at: float | None = None
        self.ended_at: float | None = None
        self.metadata: Any = None

    @classmethod
    def from_entity(cls, entity: protocol.CallEntity) -> Call:
        call = cls(entity.receiver_id, entity.type, entity.receiver_type)
        call.session_id = entity.session_id
        call.status = entity.status
        initiator, sender = _party(entity.initiator), _party(entity.sender)
        assert isinstance(initiator, User)
        assert isinstance(sender, User)
        call.call_initiator = initiator
        call.call_receiver = _party(entity.receiver)
        call.sender = sender
        call.initiated_at = entity.initiated_at
        call.joined_at = entity.joined_at
        call.ended_at = entity.ended_at
        return call

    def get_session_id(self) -> str | None:
        return self.session_id

    def set_session_id(self, session_id: str) -> None:
        self.session_id = session_id

    def get_status(self) -> str | None:
        return self.status

    def set_status(self, status: str) -> None:
        self.status = status

    def get_type(self) -> str:
        return self.type

    def get_receiver_type(self) -> str:
        return self.receiver_type

    def get_receiver_id(self) -> str:
        return self.receiver_id

    def get_call_initiator(self) -> User | None:
        return self.call_initiator

    def get_call_receiver(self) -> User | Group | None:
        return self.call_receiver

    def get_sender(self) -> User | None:
        return self.sender

    def get_initiated_at(self) -> float | None:
        return self.initiated_at

    def get_joined_at(self) -> float | None:
        return self.joined_at

    def get_category(self) -> str:
        return self.category

    def get_metadata(self) -> Any:
        return self.metadata

    def set_metadata(self, metadata: Any) -> None:
        self.metadata = metadata

    def __repr__(self) -> str:
        return f"Call(session_id={self.session_id!r}, status={self.status!r}, type={self.type!r})"
