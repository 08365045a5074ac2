"""The focus: a Jicofo stand-in, an XEP-0114 component of Prosody (``focus.<domain>``).

It runs each conference the published SDK asks for and bridges it with the backend's room
of the same session, so one session is one room whichever door its members use:

* the SDK's ``conference`` IQ (``http://jitsi.org/protocol/focus``) is answered
  ``ready='true'`` after the focus has joined the MUC room as its owner (first in, as
  Jicofo does);
* every native participant of the session is shown in the MUC as an occupant
  (``<participantId>@focus.<domain>/native``) with the presence the SDK reads
  (:func:`simulator.jitsi.presence.occupant_presence`), updated on mute and removed on leave;
* every XMPP occupant becomes a member of the backend's room (no connection of its own):
  native participants get ``participant-joined``, ``participant-state`` and
  ``participant-left`` for it like for anyone else.

* every XMPP occupant gets its media session in Jingle (:mod:`simulator.jitsi.jingle`) from the focus's
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
from simulator.jitsi.jingle import NS_JINGLE, Content, Jingle, JingleError
from simulator.jitsi.presence import (
    NS_COMPONENT,
    NS_FOCUS,
    NS_MUC,
    SCREEN_SHARE_SUFFIX,
    Occupant,
    occupant_presence,
    read_occupant,
)
from simulator.server.jitsi.colibri import BridgeChannels
from simulator.server.jitsi.endpoint import OFFERED_CODECS, PLACEHOLDER_SOURCES, Endpoint, RemoteSource
from simulator.server.rooms import MediaMember, Participant, Room

if TYPE_CHECKING:
    from simulator.server.app import Backend

__all__ = ["Focus"]

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT: Final = 15.0
JINGLE_TIMEOUT: Final = 15
"""Seconds a client has to answer one of the focus's Jingle IQs."""
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
    companions: dict[str, _Companion] = field(default_factory=dict)
    """Screen-share occupants by nick: not members, their video is their owner's screen."""


@dataclass(eq=False)
class _Companion:
    """The published SDK's screen share: a second occupant (``<name>(Screen)``, no token)
    whose one video source is its owner's screen for everyone else."""

    carrier: Participant
    """Not a member of the room: it only carries the companion's endpoint."""
    owner_hint: str | None = None
    """The owner's nick from the companion's ``SCREEN_SHARING_STARTED`` command."""
    owner: str | None = None
    """The owner's nick once the screen is lent to it."""


class Focus:
    """The focus component; ``await start()`` connects it, ``await close()`` leaves every room."""

    def __init__(
        self,
        backend: Backend,
        domain: str,
        *,
        port: int,
        secret: str,
        channels: BridgeChannels,
        media: bool = True,
    ) -> None:
        self._backend = backend
        self._media = media
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
            for nick in list(conference.companions):
                carrier = self._drop_companion(conference, nick)
                if carrier is not None:
                    await carrier.close()
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

    def endpoint(self, session: str, nick: str) -> Endpoint | None:
        """The bridge endpoint of occupant ``nick`` (a member or a companion) in ``session``."""
        conference = next(
            (c for c in self._conferences.values() if c.session_id.lower() == session.lower()), None
        )
        if conference is None:
            return None
        companion = conference.companions.get(nick)
        carrier = companion.carrier if companion is not None else conference.occupants.get(nick)
        return carrier.sfu if carrier is not None and isinstance(carrier.sfu, Endpoint) else None

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
        companion = conference.companions.get(nick)
        if presence["type"] == "unavailable":
            if companion is not None and (carrier := self._drop_companion(conference, nick)) is not None:
                self._spawn(carrier.close())
            if member is not None and conference.room is not None:
                del conference.occupants[nick]
                self._unlend_screens_of(conference, nick)
                self._spawn(self._backend.depart(conference.room, member))
            self._close_if_empty(conference)
            return
        if presence["type"] == "error":
            return
        occupant = read_occupant(presence.xml, nick)
        if companion is not None:
            companion.owner_hint = occupant.companion_of or companion.owner_hint
            self._lend_screen(conference, companion)
        elif member is not None:
            self._update(conference, member, occupant)
        elif occupant.companion:
            self._admit_companion(conference, occupant)
        else:
            self._admit(conference, occupant)

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
        if self._media:
            self._spawn(self._initiate(conference, participant))

    # --- screen shares: the published SDK's companion occupants ------------------------------

    def _admit_companion(self, conference: _Conference, occupant: Occupant) -> None:
        """A screen-share occupant: it gets a media session to publish, and nothing else."""
        if conference.room is None:
            logger.warning("%s: a screen share in a room with no session, ignored", occupant.nick)
            return
        record = protocol.ParticipantRecord(
            participant_id=occupant.nick, uid=occupant.uid, name=occupant.name, avatar="",
            joined_at=occupant.joined_at or 0, audio_muted=True, video_muted=False, audio_only=False,
        )  # fmt: skip
        companion = _Companion(Participant(record, None), owner_hint=occupant.companion_of)
        conference.companions[occupant.nick] = companion
        if self._media:
            self._spawn(self._initiate(conference, companion.carrier, receives=False))

    def _owner_of(self, conference: _Conference, companion: _Companion) -> Participant | None:
        """The companion's owner: named by its command, else the one member whose name it bears."""
        if companion.owner_hint is not None:
            return conference.occupants.get(companion.owner_hint)
        name = companion.carrier.record.name.removesuffix(SCREEN_SHARE_SUFFIX)
        named = [p for p in conference.occupants.values() if p.record.name == name]
        return named[0] if len(named) == 1 else None

    def _lend_screen(self, conference: _Conference, companion: _Companion) -> None:
        """Once the companion publishes and its owner is known, its video is the owner's screen:
        natives see the owner share, Jitsi-style clients get the companion's own source."""
        screen = None if companion.carrier.sfu is None else companion.carrier.sfu.forwarders.get("screen")
        owner = self._owner_of(conference, companion)
        if screen is None or owner is None or not isinstance(owner.sfu, Endpoint) or conference.room is None:
            return
        if companion.owner == owner.participant_id:
            return
        nick = companion.carrier.participant_id
        companion.owner = owner.participant_id
        screen.announced_as = (nick, f"{nick}-v0")
        owner.sfu.forwarders["screen"] = screen
        self._screen_changed(conference, owner, sharing=True)

    def _unlend_screen(self, conference: _Conference, companion: _Companion) -> None:
        owner = None if companion.owner is None else conference.occupants.get(companion.owner)
        companion.owner = None
        if owner is None or owner.sfu is None:
            return
        if owner.sfu.forwarders.pop("screen", None) is not None:
            self._screen_changed(conference, owner, sharing=False)

    def _unlend_screens_of(self, conference: _Conference, owner: str) -> None:
        for companion in conference.companions.values():
            if companion.owner == owner:
                companion.owner = None

    def _screen_changed(self, conference: _Conference, owner: Participant, *, sharing: bool) -> None:
        owner.record.screen_sharing = sharing
        room = conference.room
        if room is None:
            return
        room.broadcast(protocol.ParticipantState(participant=owner.record), exclude=owner)
        for p in room:
            if p.sfu is not None:
                p.sfu.resync()

    def _drop_companion(self, conference: _Conference, nick: str) -> MediaMember | None:
        """Forget a companion and take its screen back; returns its endpoint, to be closed."""
        companion = conference.companions.pop(nick)
        conference.sessions.pop(nick, None)
        self._unlend_screen(conference, companion)
        return companion.carrier.sfu

    # --- Jingle: the media session of each XMPP occupant -------------------------------------

    async def _initiate(
        self, conference: _Conference, participant: Participant, *, receives: bool = True
    ) -> None:
        """Offer the occupant its media session: the bridge's transport, the codecs the SFU
        forwards, the bridge's placeholders and everyone else's sources (their later changes go
        as source-add/remove); a companion (``receives=False``) gets no one's."""
        nick = participant.participant_id
        assert conference.room is not None
        endpoint = Endpoint(
            participant,
            conference.room,
            lambda added, removed: self._sources_changed(conference, nick, added, removed),
            receives=receives,
        )
        participant.sfu = endpoint
        try:
            transport = await endpoint.allocate(self._bridge_channel_url(conference, nick))
        except ConnectionError:
            return  # it left before its session could be offered
        # Until the session has its ID, changes are not announced: the offer carries the
        # remote sources as they are when it is written, and source-add/remove what follows.
        endpoint.resync()
        sid = secrets.token_hex(8)
        offer = Jingle(
            "session-initiate", sid, initiator=f"{conference.muc}/{FOCUS_NICK}", bundle=["audio", "video"]
        )
        for kind in ("audio", "video"):
            content = Content(kind, "both", [*OFFERED_CODECS[kind]], transport=transport)
            remote = [r.describe(conference.muc) for r in endpoint.remote.values() if r.kind == kind]
            content.sources = [PLACEHOLDER_SOURCES[kind], *remote]
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
        companion = None if conference is None else conference.companions.get(nick)
        member = (
            companion.carrier
            if companion is not None
            else (None if conference is None else conference.occupants.get(nick))
        )
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
        transport = jingle.transport
        if jingle.action == "session-accept" and (transport is None or not transport.fingerprints):
            logger.warning("%s: session-accept refused: no transport with a DTLS fingerprint", nick)
            self._refuse(iq, "bad-request", "session-accept needs a transport with a DTLS fingerprint")
            return
        iq.reply().send()
        match jingle.action:
            case "session-accept":
                assert transport is not None
                endpoint.connect(transport)
                self._published(conference, member, endpoint.publish(jingle.contents))
            case "source-add":
                self._published(conference, member, endpoint.publish(jingle.contents))
            case "source-remove":
                removed = endpoint.unpublish(jingle.contents)
                if companion is not None and removed:
                    self._unlend_screen(conference, companion)
                self._published(conference, member, removed)
            case "transport-info":
                if transport is not None:
                    self._spawn(endpoint.add_candidates(transport.candidates))
            case "session-terminate":
                conference.sessions.pop(nick, None)
                self._spawn(endpoint.close())
            case _:
                logger.info("%s: Jingle %s ignored", nick, jingle.action)

    def _published(self, conference: _Conference, member: Participant, changed: list[str]) -> None:
        """A member's publish set changed: every other member's subscriptions follow (a
        companion's screen, once published, is lent to its owner)."""
        companion = conference.companions.get(member.participant_id)
        if companion is not None:
            if changed:
                self._lend_screen(conference, companion)
            return
        if not changed or conference.room is None:
            return
        for p in conference.room.others(member):
            if p.sfu is not None:
                p.sfu.resync()

    def _send_jingle(self, conference: _Conference, nick: str, jingle: Jingle) -> None:
        iq = self._xmpp.make_iq_set(ito=f"{conference.muc}/{nick}", ifrom=f"{self.focus_jid}/{FOCUS_NICK}")
        iq.xml.append(jingle.to_xml())
        answered = iq.send(timeout=JINGLE_TIMEOUT)
        answered.add_done_callback(lambda done: self._jingle_answered(nick, jingle.action, done))

    @staticmethod
    def _jingle_answered(nick: str, action: str, done: asyncio.Future[Any]) -> None:
        """Log a refused or unanswered Jingle IQ (an occupant that just left, for one)."""
        if done.cancelled():
            return
        if (failure := done.exception()) is not None:
            logger.info("%s: Jingle %s not accepted: %s", nick, action, type(failure).__name__)

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
        lent = member.sfu is not None and "screen" in member.sfu.forwarders
        state = (occupant.audio_muted, occupant.video_muted, occupant.screen_sharing or lent)
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
        # A companion outlives its owner only until the gate closes it: its endpoint goes now,
        # since its own unavailable would find no conference.
        for nick in list(conference.companions):
            if (carrier := self._drop_companion(conference, nick)) is not None:
                self._spawn(carrier.close())
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
            occupant_presence(record, joining=joining),
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
