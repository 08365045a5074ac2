"""A virtual participant in a Jitsi-style conference, with the published SDK's callbacks.

:class:`JitsiParticipant` joins a session the way the published SDK does (the call token in
the WebSocket URL, the focus's ``conference`` IQ, its presence in the MUC) and fires the
``OngoingCallListener`` callbacks as the SDK derives them from MUC presence
(docs/jitsi.md, "The contract against the real SDK"):

* ``on_user_joined`` for each occupant already in the room, then for itself (the SDK's
  self-join, from its own presence echo: K9 as the SDK does it, not as the reference does);
* ``on_user_list_updated`` after every join and leave, the local user included;
* ``on_user_left`` when an occupant's ``unavailable`` comes, and ``on_call_ended`` once the
  others have all gone;
* nothing for another's own mute (its presence changes; the SDK fires no ``onUserMuted``).

The focus's own occupant and screen-share companions (the token gate's mark) are not
participants. Media is the lean path's, through the focus's Jingle session
(:class:`~simulator.sdk.jitsi.media.JingleMedia`): what it receives is in :attr:`evidence`.
"""

from __future__ import annotations

import secrets
import time
from typing import Final
from xml.etree import ElementTree as ET

from simulator.jitsi.presence import Occupant, read_occupant
from simulator.media.analysers import MediaEvidence
from simulator.media.lean import LeanSource
from simulator.media.tones import tone_for
from simulator.sdk.events import CallUser, ListedUser
from simulator.sdk.jitsi.media import JingleMedia
from simulator.sdk.jitsi.xmpp import CLIENT, JitsiClient, XmppRefusedError, local
from simulator.sdk.listeners import ListenerRegistry

__all__ = ["JitsiParticipant"]

FOCUS_NICK: Final = "focus"


class JitsiParticipant:
    """One participant through the XMPP door: ``async with JitsiParticipant(...) as p``.

    ``listeners`` is its registry (``p.listeners.add("id", OngoingCallListener(...))``);
    ``occupants`` the participants it sees, itself included, by nick (lib-jitsi-meet's
    endpoint ID).
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        session_id: str,
        uid: str,
        name: str,
        avatar: str = "",
        domain: str = "callsim.test",
        nick: str | None = None,
        tone_hz: int | None = None,
        publisher_tag: int = 0,
    ) -> None:
        self.uid, self.name, self.avatar = uid, name, avatar
        self.nick = nick or secrets.token_hex(4)  # lib-jitsi-meet's endpoint IDs: 8 hex digits
        self.room = f"{session_id.lower()}@conference.{domain}"
        self.client = JitsiClient(base_url, token, domain)
        self.listeners = ListenerRegistry()
        self.occupants: dict[str, Occupant] = {}
        self._others_seen = False
        self.joined_at = 0
        """When it joined (wall-clock ms): its ``joinnedAt`` for the others."""
        self.evidence = MediaEvidence()
        """What it received: a stream per source the bridge sends it (marks, tones)."""
        self.media = JingleMedia(
            self.nick,
            f"{self.room}/{FOCUS_NICK}",
            mic=LeanSource("audio", tone_hz=tone_hz if tone_hz is not None else tone_for(uid)),
            camera=LeanSource("video", publisher_tag=publisher_tag),
            evidence=self.evidence,
            uid_of=lambda nick: self.occupants[nick].uid if nick in self.occupants else nick,
            send_iq=lambda to, payload: self.client.iq("set", to, payload),
            answer=self._answer,
        )
        self.client.on_stanza.append(self._on_stanza)

    async def __aenter__(self) -> JitsiParticipant:
        await self.client.__aenter__()
        try:
            await self.client.conference(self.room)
            self.joined_at = int(time.time() * 1000)  # the SDK's joinnedAt: wall-clock milliseconds
            joined = await self.client.join(
                self.room, self.nick, self.uid, self.name, avatar=self.avatar, joined_at=self.joined_at
            )
            if joined.get("type") == "error":
                condition = next((local(c.tag) for e in joined if local(e.tag) == "error" for c in e), "?")
                raise XmppRefusedError(condition, "the room refused the join")
        except BaseException:
            await self.client.__aexit__()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        if not self.client.closed.is_set():
            await self.client.leave(self.room, self.nick)
        await self.client.__aexit__()  # nothing more arrives for the media to act on
        await self.media.close()

    async def set_audio_muted(self, muted: bool) -> None:
        """Mute or unmute the microphone: silence at once, and a presence change, as the SDK does."""
        self.media.mic.muted = muted
        await self.client.presence(
            self.room,
            self.nick,
            self.uid,
            self.name,
            muted=muted,
            avatar=self.avatar,
            joined_at=self.joined_at,
        )

    async def _answer(self, iq: ET.Element) -> None:
        await self.client.send(
            f'<iq xmlns="{CLIENT}" type="result" id="{iq.get("id")}" to="{iq.get("from")}"/>'
        )

    def _on_stanza(self, element: ET.Element) -> None:
        sender = element.get("from") or ""
        room, _, nick = sender.partition("/")
        if room != self.room or not nick:
            return
        if local(element.tag) == "iq" and element.get("type") == "set" and nick == FOCUS_NICK:
            self.media.on_jingle(element)
            return
        if local(element.tag) != "presence" or nick == FOCUS_NICK:
            return
        kind = element.get("type")
        if kind == "error":
            return
        if kind == "unavailable":
            gone = self.occupants.pop(nick, None)
            if gone is None or nick == self.nick:
                return
            self.listeners.dispatch("on_user_left", CallUser(gone.uid, gone.name, gone.avatar))
            self.listeners.dispatch("on_user_list_updated", self._listed())
            if self._others_seen and set(self.occupants) <= {self.nick}:
                self.listeners.dispatch("on_call_ended")
            return
        occupant = read_occupant(element, nick)
        if occupant.companion:
            return  # someone's screen share: their screen, not a participant
        known = nick in self.occupants
        self.occupants[nick] = occupant
        if known:
            return  # a mute or a source change: the SDK fires nothing for another's own
        if nick != self.nick:
            self._others_seen = True
        joined_at = None if occupant.joined_at is None else str(occupant.joined_at)
        user = CallUser(occupant.uid, occupant.name, occupant.avatar, joined_at, False)
        self.listeners.dispatch("on_user_joined", user)
        self.listeners.dispatch("on_user_list_updated", self._listed())

    def _listed(self) -> list[ListedUser]:
        return [ListedUser(o.nick, o.name, o.avatar, o.uid) for o in self.occupants.values()]
