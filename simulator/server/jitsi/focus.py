"""The focus: a Jicofo stand-in, an XEP-0114 component of Prosody (``focus.<domain>``).

It runs each conference the published SDK asks for and bridges it with the backend's room
of the same session, so one session is one room whichever door its members use:

* the SDK's ``conference`` IQ (``http://jitsi.org/protocol/focus``) is answered
  ``ready='true'`` after the focus has joined the MUC room as its owner (first in, as
  Jicofo does);
* every native participant of the session is shown in the MUC as an occupant
  (``<participantId>@focus.<domain>/native``) with the presence the SDK reads
  (:func:`presence.native_presence`), updated on mute and removed on leave;
* every XMPP occupant becomes a member of the backend's room (no connection of its own):
  native participants get ``participant-joined``, ``participant-state`` and
  ``participant-left`` for it like for anyone else.

* every XMPP occupant gets its media session in Jingle (:mod:`jingle`) from the focus's
  occupant JID: ``session-initiate`` with the bridge's transport
  (:class:`~simulator.server.jitsi.endpoint.Endpoint`), the codecs the SFU forwards and the
  sources of everyone else; its ``session-accept`` starts ICE/DTLS and its publishing;
  ``source-add``/``source-remove`` go both ways as people come, go or share screens;
  ``session-terminate`` when it leaves. The bridge channel URL rides in the transport.

slixmpp drives the component: it is asyncio-native, typed, and kept (1.17 in 2026);
aioxmpp has had no release since 2023.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final
from xml.etree import ElementTree as ET

import slixmpp
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from simulator import protocol
from simulator.server.jitsi.colibri import BridgeChannels
from simulator.server.jitsi.endpoint import OFFERED_CODECS, Endpoint, RemoteSource
from simulator.server.jitsi.jingle import NS_JINGLE, Content, Jingle, JingleError
from simulator.server.jitsi.presence import (
    NS_COMPONENT,
    NS_FOCUS,
    NS_MUC,
    Occupant,
    native_presence,
    read_occupant,
)
from simulator.server.rooms import Participant, Room

if TYPE_CHECKING:
    from simulator.server.app import Backend

__all__ = ["Focus"]

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT: Final = 15.0
FOCUS_NICK: Final = "focus"
NATIVE_RESOURCE: Final = "native"


@dataclass(eq=False)
class _Conference:
    """One MUC room the focus runs, and the backend room it mirrors."""

    muc: str
    """``<session>@conference.<domain>``."""
    session_id: str
    room: Room | None = None
    """The backend's room, once the session has a member (rooms are made by joining)."""
    occupants: dict[str, Participant] = field(default_factory=dict)
    """XMPP occupants by nick, as members of ``room``."""
    shown: set[str] = field(default_factory=set)
    """Native participants shown in the MUC, by participant ID."""
    sessions: dict[str, str] = field(default_factory=dict)
    """Jingle session ID by XMPP occupant nick."""


class Focus:
    """The focus component; ``await start()`` connects it, ``await close()`` leaves every room."""

    def __init__(
        self, backend: Backend, domain: str, *, port: int, secret: str, channels: BridgeChannels
    ) -> None:
        self._backend = backend
        self._channels = channels
        self.domain = domain
        self.jid = f"focus.{domain}"
        self._muc_domain = f"conference.{domain}"
        self._port = port
        self._conferences: dict[str, _Conference] = {}
        self._xmpp: Any = slixmpp.ComponentXMPP(self.jid, secret, "127.0.0.1", port)  # type: ignore[no-untyped-call]
        self._xmpp.register_handler(
            Callback(
                "focus conference",
                MatchXPath(f"{{{NS_COMPONENT}}}iq/{{{NS_FOCUS}}}conference"),
                self._on_conference,
            )
        )
        self._xmpp.register_handler(
            Callback(
                "focus jingle", MatchXPath(f"{{{NS_COMPONENT}}}iq/{{{NS_JINGLE}}}jingle"), self._on_jingle
            )
        )
        self._xmpp.add_event_handler("presence", self._on_presence)
        self._started = asyncio.Event()
        self._xmpp.add_event_handler("session_start", lambda _: self._started.set())
        backend.rooms.watchers.append(self._on_room_event)

    @property
    def focus_jid(self) -> str:
        return f"focus@{self.jid}"

    async def start(self) -> None:
        """Connect to Prosody's component port and wait for the handshake."""
        self._xmpp.connect()
        async with asyncio.timeout(CONNECT_TIMEOUT):
            await self._started.wait()

    async def close(self) -> None:
        """Leave every conference (its members leave the backend's rooms), then disconnect."""
        if self._on_room_event in self._backend.rooms.watchers:
            self._backend.rooms.watchers.remove(self._on_room_event)
        for conference in list(self._conferences.values()):
            for participant in list(conference.occupants.values()):
                if conference.room is not None:
                    await self._backend.depart(conference.room, participant)
        self._conferences.clear()
        if self._started.is_set():
            await self._xmpp.disconnect(wait=1.0)
        # slixmpp cancels its send loop only when the stream object is collected: no orphan task.
        sender = self._xmpp._run_out_filters
        if sender is not None and not sender.done():
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender

    # --- the SDK asks for a conference ----------------------------------------------------

    def _on_conference(self, iq: Any) -> None:
        request = iq.xml.find(f"{{{NS_FOCUS}}}conference")
        muc = (request.get("room") or "").lower()
        node, _, host = muc.partition("@")
        if not node or host != self._muc_domain:
            refusal = iq.reply()
            refusal["error"]["type"] = "modify"
            refusal["error"]["condition"] = "bad-request"
            refusal["error"]["text"] = f"no room {muc!r} here: rooms are <session>@{self._muc_domain}"
            refusal.send()
            return
        conference = self._conferences.get(muc)
        if conference is None:
            room = self._backend.rooms.matching(node)
            conference = _Conference(muc, room.session_id if room else node, room)
            self._conferences[muc] = conference
            # In first, so the MUC makes the focus the owner; then show who is already in.
            self._send_presence(
                f"{self.focus_jid}/{FOCUS_NICK}", f"{muc}/{FOCUS_NICK}", [ET.Element(f"{{{NS_MUC}}}x")]
            )
            for participant in room or ():
                if participant.connection is not None:
                    self._show(conference, participant.record)
        reply = iq.reply()
        answer = ET.Element(
            f"{{{NS_FOCUS}}}conference",
            room=muc,
            ready="true",
            focusjid=self.focus_jid,
        )
        ET.SubElement(answer, f"{{{NS_FOCUS}}}property", name="authentication", value="false")
        reply.set_payload(answer)
        reply.send()

    # --- the MUC tells the focus of its occupants -------------------------------------------

    def _on_presence(self, presence: Any) -> None:
        # Every bridged native occupant hears the room too: read only what the focus itself hears.
        if str(presence["to"]) != f"{self.focus_jid}/{FOCUS_NICK}":
            return
        sender = presence["from"]
        conference = self._conferences.get(str(sender.bare))
        nick = str(sender.resource)
        if conference is None or nick == FOCUS_NICK or nick in conference.shown:
            return
        member = conference.occupants.get(nick)
        if presence["type"] == "unavailable":
            if member is not None and conference.room is not None:
                del conference.occupants[nick]
                self._spawn(self._backend.depart(conference.room, member))
            self._close_if_empty(conference)
            return
        if presence["type"] == "error":
            return
        occupant = read_occupant(presence.xml, nick)
        if member is None:
            self._admit(conference, occupant)
        else:
            self._update(conference, member, occupant)

    def _admit(self, conference: _Conference, occupant: Occupant) -> None:
        room, participant = self._backend.rooms.join(
            conference.session_id, uid=occupant.uid, name=occupant.name, avatar=occupant.avatar,
            state=occupant.state(), connection=None, participant_id=occupant.nick,
            joined_at=occupant.joined_at,
        )  # fmt: skip
        self._backend.calls.participant_joined(room.session_id, occupant.uid)
        conference.room = room
        conference.occupants[occupant.nick] = participant
        participant.record.screen_sharing = occupant.screen_sharing
        room.broadcast(protocol.ParticipantJoined(participant=participant.record), exclude=participant)
        self._spawn(self._initiate(conference, participant))

    # --- Jingle: the media session of each XMPP occupant -------------------------------------

    async def _initiate(self, conference: _Conference, participant: Participant) -> None:
        """Offer the occupant its media session: the bridge's transport, the codecs the SFU
        forwards, everyone else's sources (their later changes go as source-add/remove)."""
        nick = participant.participant_id
        assert conference.room is not None
        endpoint = Endpoint(
            participant,
            conference.room,
            lambda added, removed: self._sources_changed(conference, nick, added, removed),
        )
        participant.sfu = endpoint
        transport = await endpoint.allocate(self._bridge_channel_url(conference, nick))
        # Until the session has its ID, changes are not announced: the offer carries the
        # remote sources as they are when it is written, and source-add/remove what follows.
        endpoint.resync()
        sid = secrets.token_hex(8)
        offer = Jingle(
            "session-initiate", sid, initiator=f"{conference.muc}/{FOCUS_NICK}", bundle=["audio", "video"]
        )
        for kind in ("audio", "video"):
            content = Content(kind, "both", [*OFFERED_CODECS[kind]], transport=transport)
            content.sources = [r.describe(conference.muc) for r in endpoint.remote.values() if r.kind == kind]
            offer.contents.append(content)
        conference.sessions[nick] = sid
        self._send_jingle(conference, nick, offer)

    def _sources_changed(
        self, conference: _Conference, nick: str, added: list[RemoteSource], removed: list[RemoteSource]
    ) -> None:
        sid = conference.sessions.get(nick)
        if sid is None:
            return
        member = conference.occupants.get(nick)
        if member is not None and isinstance(member.sfu, Endpoint):
            self._channels.forwarded_changed(member.sfu)
        for action, sources in (("source-remove", removed), ("source-add", added)):
            if not sources:
                continue
            change = Jingle(action, sid)
            for kind in ("audio", "video"):
                mine = [r.describe(conference.muc) for r in sources if r.kind == kind]
                if mine:
                    change.contents.append(Content(kind, sources=mine))
            self._send_jingle(conference, nick, change)

    def _on_jingle(self, iq: Any) -> None:
        """A client's Jingle: answered ``result`` at once (or an error saying what is wrong),
        then acted on."""
        sender = iq["from"]
        conference = self._conferences.get(str(sender.bare))
        nick = str(sender.resource)
        member = None if conference is None else conference.occupants.get(nick)
        try:
            jingle = Jingle.parse(iq.xml.find(f"{{{NS_JINGLE}}}jingle"))
        except JingleError as exc:
            self._refuse(iq, "bad-request", str(exc))
            return
        if conference is None or member is None or not isinstance(member.sfu, Endpoint):
            self._refuse(iq, "item-not-found", f"no media session for {sender}")
            return
        if jingle.sid != conference.sessions.get(nick):
            self._refuse(iq, "item-not-found", f"unknown Jingle session {jingle.sid!r}")
            return
        endpoint = member.sfu
        iq.reply().send()
        match jingle.action:
            case "session-accept":
                transport = jingle.transport
                if transport is None:
                    logger.warning("%s: session-accept without a transport", nick)
                    return
                endpoint.connect(transport)
                self._published(conference, member, endpoint.publish(jingle.contents))
            case "source-add":
                self._published(conference, member, endpoint.publish(jingle.contents))
            case "source-remove":
                self._published(conference, member, endpoint.unpublish(jingle.contents))
            case "transport-info":
                if (transport := jingle.transport) is not None:
                    self._spawn(endpoint.add_candidates(transport.candidates))
            case "session-terminate":
                conference.sessions.pop(nick, None)
                self._spawn(endpoint.close())
            case _:
                logger.info("%s: Jingle %s ignored", nick, jingle.action)

    def _published(self, conference: _Conference, member: Participant, changed: list[str]) -> None:
        """A member's publish set changed: every other member's subscriptions follow."""
        if not changed or conference.room is None:
            return
        for p in conference.room.others(member):
            if p.sfu is not None:
                p.sfu.resync()

    def _send_jingle(self, conference: _Conference, nick: str, jingle: Jingle) -> None:
        iq = self._xmpp.make_iq_set(ito=f"{conference.muc}/{nick}", ifrom=f"{self.focus_jid}/{FOCUS_NICK}")
        iq.xml.append(jingle.to_xml())
        iq.send(callback=lambda answer: self._jingle_answered(nick, jingle.action, answer))

    @staticmethod
    def _jingle_answered(nick: str, action: str, answer: Any) -> None:
        if answer["type"] == "error":
            logger.warning("%s: Jingle %s refused: %s", nick, action, answer["error"])

    @staticmethod
    def _refuse(iq: Any, condition: str, text: str) -> None:
        refusal = iq.reply()
        refusal["error"]["type"] = "cancel" if condition == "item-not-found" else "modify"
        refusal["error"]["condition"] = condition
        refusal["error"]["text"] = text
        refusal.send()

    def _bridge_channel_url(self, conference: _Conference, nick: str) -> str:
        return f"wss://{self.domain}/colibri-ws/{conference.session_id}/{nick}"

    @staticmethod
    def _update(conference: _Conference, member: Participant, occupant: Occupant) -> None:
        record = member.record
        state = (occupant.audio_muted, occupant.video_muted, occupant.screen_sharing)
        if (
            state == (record.audio_muted, record.video_muted, record.screen_sharing)
            or conference.room is None
        ):
            return
        record.audio_muted, record.video_muted, record.screen_sharing = state
        conference.room.broadcast(protocol.ParticipantState(participant=record), exclude=member)

    def _close_if_empty(self, conference: _Conference) -> None:
        """With no XMPP occupant left, the focus takes its native guests and itself out."""
        if conference.occupants:
            return
        for participant_id in list(conference.shown):
            self._hide(conference, participant_id)
        self._send_presence(
            f"{self.focus_jid}/{FOCUS_NICK}", f"{conference.muc}/{FOCUS_NICK}", [], "unavailable"
        )
        self._conferences.pop(conference.muc, None)

    # --- the backend's rooms tell the focus of native participants ----------------------------

    def _on_room_event(self, room: Room, message: protocol.ServerMessage) -> None:
        # By session, not by object: a room emptied and made again is the same session.
        name = room.session_id.lower()
        conference = next((c for c in self._conferences.values() if c.session_id.lower() == name), None)
        if conference is None:
            return
        conference.room = room
        match message:
            case (
                protocol.ParticipantJoined(participant=record) | protocol.ParticipantState(participant=record)
            ):
                if record.participant_id not in conference.occupants:
                    self._show(conference, record)
            case protocol.ParticipantLeft(participant=record):
                if record.participant_id in conference.shown:
                    self._hide(conference, record.participant_id)

    def _show(self, conference: _Conference, record: protocol.ParticipantRecord) -> None:
        joining = record.participant_id not in conference.shown
        conference.shown.add(record.participant_id)
        self._send_presence(
            self._native_jid(record.participant_id),
            f"{conference.muc}/{record.participant_id}",
            native_presence(record, joining=joining),
        )

    def _hide(self, conference: _Conference, participant_id: str) -> None:
        conference.shown.discard(participant_id)
        self._send_presence(
            self._native_jid(participant_id), f"{conference.muc}/{participant_id}", [], "unavailable"
        )

    def _native_jid(self, participant_id: str) -> str:
        return f"{participant_id}@{self.jid}/{NATIVE_RESOURCE}"

    def _send_presence(
        self, sender: str, to: str, children: list[ET.Element], kind: str | None = None
    ) -> None:
        presence = self._xmpp.make_presence(pfrom=sender, pto=to, ptype=kind)
        for child in children:
            presence.xml.append(child)
        presence.send()

    def _spawn(self, work: Any) -> None:
        self._backend.tasks.spawn(work, "focus")
