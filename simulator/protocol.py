"""Signalling messages between the reference client SDK and the reference backend.

One JSON object per WebSocket text frame, tagged by ``type``. Both sides decode with
:func:`decode_client_message` / :func:`decode_server_message`, which reject anything
malformed with a :class:`ProtocolError` naming the offending field, so a bad message
is answered with an error and never reaches the session logic.

The flow (two peer connections per participant, so offers never cross):

* client → ``join`` (call token) → server ``joined`` (the participants already there);
* client → ``publish`` (offer: mic, camera, screen slots) → server ``publish-answer``;
* **bundled** (``publish`` names its ``receive`` slots): the same offer carries a fixed set
  of receive m-lines on the one transport, and the server says who fills each with
  ``slots``, never renegotiating when others come and go;
* **split** (no ``receive``): server → ``subscribe-offer`` (the other participants'
  streams, on a second connection, renegotiated as they come and go) → client
  ``subscribe-answer``;
* client → ``state`` / ``switch-to-video`` / ``leave``; server pushes
  ``participant-joined``, ``participant-left``, ``participant-state``,
  ``switched-to-video``, ``session-command`` and ``error``.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeVar

import msgspec

__all__ = [
    "HEARTBEAT",
    "MAX_MESSAGE_BYTES",
    "CallEntity",
    "CallMessage",
    "ChatClientMessage",
    "ChatLoggedIn",
    "ChatLogin",
    "ChatServerMessage",
    "ClientMessage",
    "Error",
    "Join",
    "Joined",
    "Leave",
    "Left",
    "ParticipantJoined",
    "ParticipantLeft",
    "ParticipantRecord",
    "ParticipantState",
    "Party",
    "ProtocolError",
    "Publish",
    "PublishAnswer",
    "ReceiveSlots",
    "ServerMessage",
    "SessionCommand",
    "Slots",
    "StateUpdate",
    "StreamInfo",
    "SubscribeAnswer",
    "SubscribeOffer",
    "SwitchToVideo",
    "SwitchedToVideo",
    "Transport",
    "decode_call",
    "decode_chat_client_message",
    "decode_chat_server_message",
    "decode_client_message",
    "decode_server_message",
    "encode",
    "to_json_data",
]

MAX_MESSAGE_BYTES = 256 * 1024
"""Larger frames are refused before parsing (an SDP for a big room is ~20 KiB)."""
HEARTBEAT = 6.0
"""Seconds between WebSocket pings, both ways, on the signalling and chat sockets. A peer
that sends no pong within half of it is gone: a frozen participant is removed, and a stalled
backend is reported to the application, within 9 s."""

StreamSource = Literal["mic", "camera", "screen"]
Transport = Literal["bundled", "split"]
"""How a client connects its media: one connection with receive slots, or publish + subscribe."""
SlotKind = Literal["audio", "video", "screen"]
"""What a receive slot carries: microphones, cameras or screen shares."""
LeaveReason = Literal["end", "button", "timeout"]


class ProtocolError(ValueError):
    """A message that is not valid JSON or not one of this protocol's messages."""


class _Message(msgspec.Struct, tag_field="type", rename="camel", forbid_unknown_fields=False):
    pass


# --- shapes carried inside messages ---------------------------------------------------


class ParticipantRecord(msgspec.Struct, rename="camel"):
    """One participant as the backend knows it."""

    participant_id: str
    uid: str
    name: str
    avatar: str
    joined_at: int
    """Milliseconds since the epoch."""
    audio_muted: bool = False
    video_muted: bool = False
    audio_only: bool = False
    screen_sharing: bool = False


class StreamInfo(msgspec.Struct, rename="camel"):
    """Whose media a subscribe m-line (or a receive slot) carries."""

    participant_id: str
    uid: str
    source: StreamSource
    active: bool = True


MAX_SLOTS = 16
"""Receive slots of one kind a bundled client may ask for (an m-line each)."""


class ReceiveSlots(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    """How many streams a bundled client receives at once, of each kind (its last-N).

    The offer's m-lines after the three publish ones are, in this order, ``audio`` receive
    slots (microphones), ``video`` ones (cameras) and ``screen`` ones (screen shares, video).
    """

    audio: Annotated[int, msgspec.Meta(ge=0, le=MAX_SLOTS)] = 3
    video: Annotated[int, msgspec.Meta(ge=0, le=MAX_SLOTS)] = 3
    screen: Annotated[int, msgspec.Meta(ge=0, le=MAX_SLOTS)] = 1

    def kinds(self) -> list[tuple[Literal["audio", "video"], SlotKind]]:
        """The receive m-lines in offer order: (the m-line's kind, what it carries)."""
        audio: tuple[Literal["audio", "video"], SlotKind] = ("audio", "audio")
        video: tuple[Literal["audio", "video"], SlotKind] = ("video", "video")
        screen: tuple[Literal["audio", "video"], SlotKind] = ("video", "screen")
        return [audio] * self.audio + [video] * self.video + [screen] * self.screen


class MediaState(msgspec.Struct, rename="camel"):
    audio_muted: bool = False
    video_muted: bool = False
    audio_only: bool = False


# --- client → server ------------------------------------------------------------------


class Join(_Message, tag="join"):
    token: str
    session_id: str
    state: MediaState = msgspec.field(default_factory=MediaState)


class Publish(_Message, tag="publish"):
    sdp: str
    receive: ReceiveSlots | None = None
    """Bundled: the receive slots the offer carries after its publish m-lines. None: split
    (the server offers what to receive on a second connection)."""


class SubscribeAnswer(_Message, tag="subscribe-answer"):
    sdp: str


class StateUpdate(_Message, tag="state"):
    audio_muted: bool | None = None
    video_muted: bool | None = None
    screen_sharing: bool | None = None


class SwitchToVideo(_Message, tag="switch-to-video"):
    pass


class Leave(_Message, tag="leave"):
    reason: LeaveReason = "end"
    idle_timeout_period: float | None = None


ClientMessage = Join | Publish | SubscribeAnswer | StateUpdate | SwitchToVideo | Leave

# --- server → client ------------------------------------------------------------------


class Joined(_Message, tag="joined"):
    session_id: str
    me: ParticipantRecord
    participants: list[ParticipantRecord]
    """The others already present, in the order they joined."""


class PublishAnswer(_Message, tag="publish-answer"):
    sdp: str


class SubscribeOffer(_Message, tag="subscribe-offer"):
    sdp: str
    streams: dict[str, StreamInfo]
    """By m-line mid."""


class Slots(_Message, tag="slots"):
    """Who fills each receive slot of a bundled client, whole each time it changes."""

    slots: dict[str, StreamInfo]
    """By the slot's m-line mid; a slot not named carries nothing."""


class ParticipantJoined(_Message, tag="participant-joined"):
    participant: ParticipantRecord


class ParticipantLeft(_Message, tag="participant-left"):
    participant: ParticipantRecord


class ParticipantState(_Message, tag="participant-state"):
    participant: ParticipantRecord


class SwitchedToVideo(_Message, tag="switched-to-video"):
    session_id: str
    initiator: ParticipantRecord
    responder: ParticipantRecord


class SessionCommand(_Message, tag="session-command"):
    command: str
    uid: str
    idle_timeout_period: float | None = None


class Left(_Message, tag="left"):
    pass


class Error(_Message, tag="error"):
    code: str
    message: str
    fatal: bool = False


ServerMessage = (
    Joined
    | PublishAnswer
    | SubscribeOffer
    | Slots
    | ParticipantJoined
    | ParticipantLeft
    | ParticipantState
    | SwitchedToVideo
    | SessionCommand
    | Left
    | Error
)

# --- the chat socket: call messages for a logged-in user (§F.4) --------------------------


class Party(msgspec.Struct, rename="camel"):
    """A user (``id`` = uid) or a group (``id`` = guid) in a call."""

    id: str
    name: str
    avatar: str = ""
    kind: Literal["user", "group"] = "user"


class CallEntity(msgspec.Struct, rename="camel"):
    """A call as the backend reports it (contract §F.2)."""

    session_id: str
    status: str
    type: str
    receiver_type: str
    receiver_id: str
    initiator: Party
    receiver: Party
    sender: Party
    """Who made the change this message reports."""
    initiated_at: float
    joined_at: float | None = None
    ended_at: float | None = None
    updated_at: float | None = None


class ChatLogin(_Message, tag="login"):
    auth_token: str


class ChatLoggedIn(_Message, tag="logged-in"):
    uid: str


class CallMessage(_Message, tag="call"):
    call: CallEntity


ChatClientMessage = ChatLogin
ChatServerMessage = ChatLoggedIn | CallMessage | Error

_T = TypeVar("_T")

_client_decoder: msgspec.json.Decoder[ClientMessage] = msgspec.json.Decoder(ClientMessage)
_server_decoder: msgspec.json.Decoder[ServerMessage] = msgspec.json.Decoder(ServerMessage)
_chat_client_decoder: msgspec.json.Decoder[ChatClientMessage] = msgspec.json.Decoder(ChatClientMessage)
_chat_server_decoder: msgspec.json.Decoder[ChatServerMessage] = msgspec.json.Decoder(ChatServerMessage)
_encoder = msgspec.json.Encoder()


def _decode(decoder: msgspec.json.Decoder[_T], data: str | bytes) -> _T:
    if len(data) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {len(data)} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        return decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise ProtocolError(str(exc)) from None
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"not JSON: {exc}") from None
    except RecursionError:
        # Thousands of nested brackets in a few kilobytes: an error reply, never a crash.
        raise ProtocolError("nested too deeply") from None


def decode_client_message(data: str | bytes) -> ClientMessage:
    """Parse one client → server message, or raise :class:`ProtocolError`."""
    return _decode(_client_decoder, data)


def decode_server_message(data: str | bytes) -> ServerMessage:
    """Parse one server → client message, or raise :class:`ProtocolError`."""
    return _decode(_server_decoder, data)


def decode_chat_client_message(data: str | bytes) -> ChatClientMessage:
    """Parse one message a chat client sends, or raise :class:`ProtocolError`."""
    return _decode(_chat_client_decoder, data)


def decode_chat_server_message(data: str | bytes) -> ChatServerMessage:
    """Parse one message the chat socket sends, or raise :class:`ProtocolError`."""
    return _decode(_chat_server_decoder, data)


def decode_call(data: object) -> CallEntity:
    """A call from already-parsed JSON (a REST answer), or :class:`ProtocolError`."""
    try:
        return msgspec.convert(data, CallEntity)
    except msgspec.ValidationError as exc:
        raise ProtocolError(str(exc)) from None


def to_json_data(value: msgspec.Struct) -> object:
    """A struct as plain JSON data (camelCase keys), for REST answers."""
    return msgspec.to_builtins(value)


def encode(message: ClientMessage | ServerMessage | ChatServerMessage | ChatClientMessage) -> str:
    """Serialise a message to the JSON text sent on the socket."""
    return _encoder.encode(message).decode()
