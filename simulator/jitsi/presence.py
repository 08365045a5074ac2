"""MUC presence as Jitsi-style clients write and read it (the published SDK's lib-jitsi-meet).

Read: what a client says of itself when it joins or changes (nick, CometChat's
``user_object``, mute state in ``SourceInfo``). Written: the presence by which the focus
shows a native participant in the MUC, with what the SDK needs to list it and to report it
leaving (``stats-id``: without it the SDK drops ``onUserLeft``, docs/jitsi.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final
from xml.etree import ElementTree as ET

from simulator import protocol

__all__ = [
    "NS_COMPONENT",
    "NS_FOCUS",
    "NS_MUC",
    "SCREEN_SHARE_SUFFIX",
    "Occupant",
    "occupant_presence",
    "read_occupant",
]

NS_MUC: Final = "http://jabber.org/protocol/muc"
NS_NICK: Final = "http://jabber.org/protocol/nick"
NS_FOCUS: Final = "http://jitsi.org/protocol/focus"
SCREEN_SHARE_SUFFIX: Final = "(Screen)"
"""What the published SDK appends to a sharer's name for its screen-share occupant."""
NS_COMPANION: Final = "urn:callsim:companion"
"""The token gate's mark on the join of an occupant that came without a call token."""
NS_COMPONENT: Final = "jabber:component:accept"
"""The focus's stream namespace: children in it are written without an ``xmlns`` and reach
clients in theirs, as lib-jitsi-meet's own un-namespaced presence children do."""


@dataclass(frozen=True)
class Occupant:
    """A Jitsi-style client in a MUC room, as its presence describes it."""

    nick: str
    """The occupant's resource in the room: lib-jitsi-meet's endpoint ID."""
    uid: str
    name: str
    avatar: str
    joined_at: int | None
    audio_muted: bool
    video_muted: bool
    screen_sharing: bool
    companion: bool = False
    """A screen-share connection of another occupant: the published SDK shares a screen as a
    second occupant (named ``<name>(Screen)``) from a connection with no call token, which the
    token gate marks (``mod_callsim_token.lua``: the mark is the gate's, never a client's)."""
    companion_of: str | None = None
    """The nick of the occupant whose screen this companion shares (its
    ``SCREEN_SHARING_STARTED`` command, once sent)."""

    def state(self) -> protocol.MediaState:
        return protocol.MediaState(audio_muted=self.audio_muted, video_muted=self.video_muted)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(parent: ET.Element, name: str) -> ET.Element | None:
    # Un-namespaced children arrive in whatever namespace the carrying stream declares.
    return next((child for child in parent if _local(child.tag) == name), None)


def _flag(value: str | None) -> bool | None:
    return None if value is None else value.strip().lower() == "true"


def _first(*values: bool | None) -> bool:
    """The first value the presence states (newest form first), else unmuted."""
    return next((v for v in values if v is not None), False)


def _sources(presence: ET.Element) -> dict[str, dict[str, object]]:
    element = _child(presence, "SourceInfo")
    try:
        data = json.loads(element.text or "{}") if element is not None else {}
    except ValueError:
        return {}
    return {str(k): v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}


def read_occupant(presence: ET.Element, nick: str) -> Occupant:
    """The occupant a client's MUC presence describes (missing parts get neutral values)."""
    user = _child(presence, "user_object")
    nick_element = _child(presence, "nick")
    name = (user.get("name") if user is not None else None) or (
        nick_element.text if nick_element is not None else ""
    )
    uid = (user.get("uid") if user is not None else None) or (_text(presence, "uid") or nick)
    avatar = (user.get("avatar") if user is not None else None) or _text(presence, "avatar-url") or ""
    joined = user.get("joinnedAt") if user is not None else None  # sic: the SDK's own spelling
    sources = _sources(presence)
    mark = presence.find(f"{{{NS_COMPANION}}}companion")
    audio = [bool(v.get("muted")) for k, v in sources.items() if "-a" in k]
    video = [v for k, v in sources.items() if "-v" in k]
    camera = [bool(v.get("muted")) for v in video if v.get("videoType", "camera") == "camera"]
    initial = _child(presence, "initial_config")
    initial_audio = None if initial is None else _flag(initial.get("is_audio_muted"))
    initial_video = None if initial is None else _flag(initial.get("is_video_muted"))
    audio_muted = all(audio) if audio else _first(_flag(_text(presence, "audiomuted")), initial_audio)
    video_muted = all(camera) if camera else _first(_flag(_text(presence, "videomuted")), initial_video)
    return Occupant(
        nick=nick,
        uid=uid,
        name=name or uid,
        avatar=avatar,
        joined_at=int(joined) if joined and joined.isdigit() else None,
        audio_muted=audio_muted,
        video_muted=video_muted,
        screen_sharing=any(v.get("videoType") == "desktop" and not v.get("muted") for v in video),
        companion=mark is not None,
        # The gate names the owner it bound the companion to; the client's own word comes second.
        companion_of=(mark.get("owner") if mark is not None else None) or _shared_for(presence),
    )


def _shared_for(presence: ET.Element) -> str | None:
    """The owner named by a screen share's ``SCREEN_SHARING_STARTED`` command, if any."""
    text = _text(presence, "SCREEN_SHARING_STARTED")
    try:
        value = json.loads(text) if text else None
    except ValueError:
        return None
    owner = value.get("userId") if isinstance(value, dict) else None
    return owner if isinstance(owner, str) and owner else None


def _text(presence: ET.Element, name: str) -> str | None:
    element = _child(presence, name)
    return None if element is None or element.text is None else element.text


def occupant_presence(
    record: protocol.ParticipantRecord, *, joining: bool, namespace: str = NS_COMPONENT
) -> list[ET.Element]:
    """The children of the presence that shows participant ``record`` in a MUC room, as the
    published SDK writes its own: the focus's for a native participant, and a Jitsi-protocol
    virtual participant's for itself (``namespace``: the stream's, ``jabber:client`` there).

    ``joining`` adds the MUC join marker (the first presence into the room only).
    """
    nick = record.participant_id
    elements: list[ET.Element] = []
    if joining:
        elements.append(ET.Element(f"{{{NS_MUC}}}x"))
    for name, text in (
        ("stats-id", record.uid),
        ("audiomuted", str(record.audio_muted).lower()),
        ("videomuted", str(record.video_muted).lower()),
        ("uid", record.uid),
        ("avatar-url", record.avatar),
    ):
        element = ET.Element(f"{{{namespace}}}{name}")
        element.text = text
        elements.append(element)
    nick_element = ET.Element(f"{{{NS_NICK}}}nick")
    nick_element.text = record.name
    elements.append(nick_element)
    sources = ET.Element(f"{{{namespace}}}SourceInfo")
    described: dict[str, dict[str, object]] = {
        f"{nick}-a0": {"muted": record.audio_muted},
        f"{nick}-v0": {"muted": record.video_muted, "videoType": "camera"},
    }
    if record.screen_sharing:
        # A Jitsi-style client creates a remote track muted unless its source is listed here.
        described[f"{nick}-v1"] = {"muted": False, "videoType": "desktop"}
    sources.text = json.dumps(described)
    elements.append(sources)
    elements.append(
        ET.Element(
            f"{{{namespace}}}user_object",
            uid=record.uid,
            name=record.name,
            avatar=record.avatar,
            joinnedAt=str(record.joined_at),
        )
    )
    return elements
