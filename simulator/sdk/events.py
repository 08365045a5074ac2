"""Callback payloads (contract §C), as frozen dataclasses.

Each has ``to_wire()`` giving the JS-shaped object the contract documents, with the
contract's own spellings (including ``joinnedAt``, K11).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from simulator.media.devices import MediaDevice
from simulator.sdk.names import to_camel

__all__ = [
    "CallSwitchedToVideoEvent",
    "CallUser",
    "ListedUser",
    "MediaDevice",
    "MediaDeviceList",
    "ParticipantInfo",
    "UserMutedEvent",
    "to_wire",
]


def to_wire(value: Any) -> Any:
    """A payload as JSON-ready data with camelCase keys; None fields are left out."""
    if hasattr(value, "__dataclass_fields__"):
        out: dict[str, Any] = {}
        for f in fields(value):
            item = getattr(value, f.name)
            if item is None or f.metadata.get("wire") is False:
                continue
            out[to_camel(f.name)] = to_wire(item)
        return out
    if isinstance(value, list | tuple):
        return [to_wire(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class CallUser:
    """``onUserJoined`` / ``onUserLeft`` payload: guaranteed ``uid``, ``name``, ``avatar``.

    ``onUserJoined`` also carries ``joinnedAt`` (sic, K11: milliseconds as a string)
    and ``isPresenter``; ``onUserLeft`` carries exactly the three guaranteed keys.
    """

    uid: str
    name: str
    avatar: str
    joinned_at: str | None = None
    is_presenter: bool | None = None


@dataclass(frozen=True, slots=True)
class ListedUser:
    """One entry of the ``onUserListUpdated`` list: ``{id, name, avatar, uid}``."""

    id: str
    """The media server's participant id."""
    name: str
    avatar: str
    uid: str


@dataclass(frozen=True, slots=True)
class ParticipantInfo:
    """The ``U`` of ``onUserMuted`` / ``onCallSwitchedToVideo`` (§C)."""

    uid: str
    name: str
    avatar: str
    is_video_muted: bool
    is_audio_muted: bool
    joined_at: str


@dataclass(frozen=True, slots=True)
class UserMutedEvent:
    """``onUserMuted`` / ``onUserUnMuted`` payload: ``{muted, mutedBy}`` (K12)."""

    muted: ParticipantInfo
    muted_by: ParticipantInfo


@dataclass(frozen=True, slots=True)
class CallSwitchedToVideoEvent:
    """``onCallSwitchedToVideo`` payload: ``{sessionId, initiator, responder}`` (K14)."""

    session_id: str
    initiator: ParticipantInfo
    responder: ParticipantInfo


@dataclass(frozen=True, slots=True)
class MediaDeviceList:
    """``onMediaDeviceListUpdated`` payload (§I)."""

    video_input_devices: tuple[MediaDevice, ...] = field(default=())
    audio_input_devices: tuple[MediaDevice, ...] = field(default=())
    audio_output_devices: tuple[MediaDevice, ...] = field(default=())
