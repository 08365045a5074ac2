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

import asyncio
import dataclasses
import secrets
import ssl
import time
from dataclasses import dataclass
from typing import Final, Literal
from xml.etree import ElementTree as ET

import aiohttp
from yarl import URL

from simulator import protocol
from simulator.jitsi.presence import Occupant, read_occupant
from simulator.media.analysers import MediaEvidence
from simulator.media.devices import FakeDevices
from simulator.media.lean import ReceiveStats
from simulator.media.paths import make_sources
from simulator.media.tones import tone_for
from simulator.sdk.events import CallUser, ListedUser
from simulator.sdk.jitsi.bridge import BridgeChannel
from simulator.sdk.jitsi.media import JingleMedia
from simulator.sdk.jitsi.xmpp import CLIENT, JitsiClient, XmppRefusedError, child, local, text
from simulator.sdk.listeners import ListenerRegistry

__all__ = ["JitsiParticipant"]

FOCUS_NICK: Final = "focus"
JoinStep = Literal["login", "conference", "room", "media"]
MEDIA_TIMEOUT: Final = 20.0
"""Seconds from the MUC join to connected media: the focus's offer, ICE and DTLS."""


@dataclass(frozen=True, slots=True)
class JoinPhases:
    """Where a join through the XMPP door went, in ms, step by step; they add up to the join."""

    login_ms: float
    """WebSocket, SASL ANONYMOUS (the token checked), bind."""
    conference_ms: float
    """The ``conference`` IQ to the focus, until it answers ``ready``."""
    muc_ms: float
    """The MUC presence, until the room echoes it."""
    jingle_ms: float
    """The room joined → our ``session-accept`` sent (the focus's offer, answered)."""
    ice_ms: float
    """``session-accept`` → ICE completed."""
    dtls_ms: float
    """ICE completed → DTLS connected (the SRTP keys)."""

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The phases, in order, without their unit (``login``, ``conference``, …)."""
        return tuple(f.name.removesuffix("_ms") for f in dataclasses.fields(cls))


class JitsiParticipant:
    """One participant through the XMPP door: ``async with JitsiParticipant(...) as p``.

    ``listeners`` is its registry (``p.listeners.add("id", OngoingCallListener(...))``);
    ``occupants`` the participants it sees, itself included, by nick (lib-jitsi-meet's
    endpoint ID).
    """

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        session_id: str,
        uid: str,
        name: str,
        avatar: str = "",
        domain: str = "callsim.test",
        nick: str | None = None,
        tone_hz: int | None = None,
        publisher_tag: int = 0,
        audio_only: bool = False,
        http: aiohttp.ClientSession | None = None,
        tls: ssl.SSLContext | bool | None = None,
        bridge_base: str | None = None,
        receive_height: int | None = 360,
        simulcast: bool = False,
        path: Literal["lean", "full"] = "lean",
    ) -> None:
        self.uid, self.name, self.avatar = uid, name, avatar
        self.nick = nick or secrets.token_hex(4)  # lib-jitsi-meet's endpoint IDs: 8 hex digits
        self.me = protocol.ParticipantRecord(self.nick, uid, name, avatar, 0, audio_only=audio_only)
        """What it says of itself in its presence (its mute states change it)."""
        self.room = f"{session_id.lower()}@conference.{domain}"
        self.client = JitsiClient(base_url, token, domain, http=http, tls=tls)
        self.phases: JoinPhases | None = None
        """Where its join went, once its media connected."""
        self.step: JoinStep = "login"
        """Where the join is (or stopped): ``login``, ``conference``, ``room``, then ``media``."""
        self._started = 0.0
        self._steps = (0.0, 0.0, 0.0)
        """Loop times: logged in, the conference ready, in the room."""
        self.listeners = ListenerRegistry()
        self.occupants: dict[str, Occupant] = {}
        self._others_seen = False
        self.joined_at = 0
        """When it joined (wall-clock ms): its ``joinnedAt`` for the others."""
        self.evidence = MediaEvidence()
        """What it received: a stream per source the bridge sends it (marks, tones)."""
        self.devices = FakeDevices()
        mic, camera, _ = make_sources(
            path,
            tone_hz=tone_hz if tone_hz is not None else tone_for(uid),
            publisher_tag=publisher_tag,
            devices=self.devices,
            mic_muted=False,
            camera_enabled=not audio_only,
        )
        self.media = JingleMedia(
            self.nick,
            f"{self.room}/{FOCUS_NICK}",
            mic=mic,
            camera=camera,
            evidence=self.evidence,
            uid_of=lambda nick: self.occupants[nick].uid if nick in self.occupants else nick,
            send_iq=lambda to, payload: self.client.iq("set", to, payload),
            answer=self._answer,
            channel=self._bridge_channel,
            simulcast=simulcast,
            path=path,
        )
        self._bridge_base = bridge_base
        self._receive_height = receive_height
        self.client.on_stanza.append(self._on_stanza)

    async def __aenter__(self) -> JitsiParticipant:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await self.client.__aenter__()
        try:
            logged_in = loop.time()
            self.step = "conference"
            await self.client.conference(self.room)
            ready = loop.time()
            self.step = "room"
            self.joined_at = int(time.time() * 1000)  # the SDK's joinnedAt: wall-clock milliseconds
            self.me.joined_at = self.joined_at
            joined = await self.client.join(self.room, self.me)
            if joined.get("type") == "error":
                error = child(joined, "error")
                condition = next((local(c.tag) for c in error or () if local(c.tag) != "text"), "?")
                why = (text(error, "text") if error is not None else None) or "the room refused the join"
                raise XmppRefusedError(condition, why)
            in_room = loop.time()
            self.step = "media"
        except BaseException:
            await self.client.__aexit__()
            raise
        self._started, self._steps = started, (logged_in, ready, in_room)
        return self

    async def wait_media(self, timeout: float = MEDIA_TIMEOUT) -> JoinPhases:
        """Wait until its media is connected (ICE and DTLS with the bridge); where the join went.

        :class:`ConnectionError` if it failed (why), :class:`TimeoutError` if it took too long."""
        async with asyncio.timeout(timeout):
            await self.media.done.wait()
        if self.media.failure is not None:
            raise ConnectionError(self.media.failure)
        times = self.media.times
        logged_in, ready, in_room = self._steps
        ice = times.get("ice", times["connected"])
        self.phases = JoinPhases(
            *(
                round((end - start) * 1000, 2)
                for start, end in (
                    (self._started, logged_in),
                    (logged_in, ready),
                    (ready, in_room),
                    (in_room, times["accepted"]),
                    (times["accepted"], ice),
                    (ice, times["connected"]),
                )
            )
        )
        return self.phases

    async def receive_stats(self) -> ReceiveStats:
        """What arrived from the bridge (lean: from the RTP headers)."""
        return await self.media.receive_stats()

    async def __aexit__(self, *exc: object) -> None:
        if not self.client.closed.is_set():
            await self.client.leave(self.room, self.nick)
        await self.client.__aexit__()  # nothing more arrives for the media to act on
        await self.media.close()

    async def set_audio_muted(self, muted: bool) -> None:
        """Mute or unmute the microphone: silence at once, and a presence change, as the SDK does."""
        self.media.mic.muted = muted
        self.me.audio_muted = muted
        await self.client.presence(self.room, self.me)

    async def set_video_muted(self, muted: bool) -> None:
        """Pause or resume the camera: no more frames, and a presence change, as the SDK does."""
        self.media.set_camera(not muted and not self.me.audio_only)
        self.me.video_muted = muted
        await self.client.presence(self.room, self.me)

    def _bridge_channel(self, offered: str) -> BridgeChannel:
        """The bridge channel at the URL the offer names; with ``bridge_base``, at the same path
        there (the embedded backend names its public host, which virtual participants skip)."""
        url = offered
        if self._bridge_base:
            base = URL(self._bridge_base.replace("https://", "wss://", 1).replace("http://", "ws://", 1))
            url = str(base.with_path(URL(offered).path).with_query(URL(offered).query))
        return BridgeChannel(
            url,
            http=self.client.http,
            tls=self.client.tls,
            receive_height=self._receive_height,
            on_sources_map=self.media.on_sources_map,
            on_sender_limit=self.media.on_sender_limit,
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
