"""Virtual participants that speak the published SDK's protocol, and where they join.

A :class:`JitsiTarget` says where a Jitsi-style deployment is and how it hands out tokens
(plain data, so every worker gets it): the embedded backend's XMPP door by default, or an
external deployment (``callsim run --target``). A :class:`JitsiProtocolParticipant` is a
crowd participant on the client's door (:class:`~simulator.sdk.jitsi.JitsiParticipant`):
lean media, the SDK's callbacks from MUC presence, mute and pause as presence.
:func:`probe` tries one join before a run, so a target that cannot work is one line, not
hundreds of failed joins.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from dataclasses import dataclass
from typing import Any, Final, Literal

import aiohttp
import jwt

from simulator.crowd.participant import JOIN_TIMEOUT, VirtualParticipant
from simulator.crowd.plan import Action, PlannedParticipant
from simulator.media.analysers import MediaEvidence
from simulator.media.lean import ReceiveStats
from simulator.sdk.errors import ApiError
from simulator.sdk.jitsi import JitsiParticipant, XmppRefusedError
from simulator.sdk.jitsi.conference import JoinPhases
from simulator.sdk.token_api import TokenApi

__all__ = ["JitsiProtocolParticipant", "JitsiTarget", "TargetError", "TokenMode", "probe"]

TokenMode = Literal["rest", "jwt", "none"]
"""How the deployment hands out the token in the WebSocket's URL: ``rest``, CometChat-style
``call_tokens`` for a user's auth token; ``jwt``, a Jitsi JWT signed with the deployment's
secret (prosody's token auth: ``room`` and ``context.user`` claims); ``none``, anonymous rooms."""

JWT_LIFETIME: Final = 6 * 3600
PROBE_TIMEOUT: Final = 10.0
"""Seconds each step of the probe join may take (the login, the focus, the room)."""


class TargetError(RuntimeError):
    """The target cannot run a crowd: one line that says what refused and why."""


@dataclass(frozen=True, slots=True)
class JitsiTarget:
    """A Jitsi-style deployment, as its participants need it."""

    websocket_base: str
    """Where ``xmpp-websocket`` is (``https://meet.example.com/``: the WebSocket is
    ``wss://meet.example.com/xmpp-websocket``)."""
    domain: str
    """The XMPP domain (``focus.<domain>``, ``conference.<domain>``)."""
    tokens: TokenMode = "rest"
    rest: str = ""
    """The REST base for ``call_tokens`` (``tokens = "rest"``)."""
    jwt_secret: str = ""
    jwt_app_id: str = ""
    verify_tls: bool = True
    bridge_base: str = ""
    """Where the bridge channel is dialled, if not at the URL the focus names (the embedded
    backend names its public host; its virtual participants dial its own listener)."""

    @property
    def tls(self) -> bool:
        """aiohttp's ``ssl`` for this target: True (verify certificates) or False (``--insecure``)."""
        return self.verify_tls

    async def token(
        self, http: aiohttp.ClientSession, session_id: str, planned: PlannedParticipant, auth_token: str
    ) -> str | None:
        """The token ``planned`` joins ``session_id`` with (None: anonymous)."""
        if self.tokens == "none":
            return None
        if self.tokens == "jwt":
            identity = planned.identity
            now = int(time.time())
            claims = {
                "aud": self.jwt_app_id,
                "iss": self.jwt_app_id,
                "sub": self.domain,
                "room": session_id.lower(),
                "iat": now,
                "nbf": now - 60,
                "exp": now + JWT_LIFETIME,
                "context": {"user": {"id": identity.uid, "name": identity.name, "avatar": identity.avatar}},
            }
            return jwt.encode(claims, self.jwt_secret, algorithm="HS256")
        return (await TokenApi(http, self.rest).generate(session_id, auth_token)).token

    def participant(
        self, planned: PlannedParticipant, token: str | None, http: aiohttp.ClientSession
    ) -> JitsiParticipant:
        """A client-door participant for ``planned``, ready to enter."""
        identity = planned.identity
        return JitsiParticipant(
            self.websocket_base,
            token,
            session_id=planned.session_id,
            uid=identity.uid,
            name=identity.name,
            avatar=identity.avatar,
            domain=self.domain,
            tone_hz=planned.tone_hz,
            publisher_tag=planned.index + 1,
            audio_only=planned.profile == "audio-only",
            http=http,
            tls=self.tls,
            bridge_base=self.bridge_base or None,
            simulcast=planned.simulcast and planned.media_path == "lean",  # layers are pre-encoded
            path="full" if planned.media_path == "full" else "lean",
        )


class JitsiProtocolParticipant(VirtualParticipant):
    """A crowd participant through the Jitsi door (lean or full; no screen share, no audio-only switch)."""

    FAILURES = (*VirtualParticipant.FAILURES, XmppRefusedError, ApiError)

    def __init__(self, planned: PlannedParticipant, *, target: JitsiTarget, **kwargs: Any) -> None:
        super().__init__(planned, **kwargs)
        self._target = target
        self.conference: JitsiParticipant | None = None
        self._evidence = MediaEvidence()

    @property
    def evidence(self) -> MediaEvidence:
        return self._evidence

    @property
    def session_key(self) -> object:
        return self.conference

    async def receive_stats(self) -> ReceiveStats | None:
        return None if self.conference is None else await self.conference.receive_stats()

    async def _join(self) -> None:
        if self.in_session:
            return
        started = asyncio.get_running_loop().time()
        token = await self._target.token(self._http, self.planned.session_id, self.planned, self._auth_token)
        conference = self._target.participant(self.planned, token, self._http)
        conference.listeners.add("crowd", self._listener())
        async with asyncio.timeout(JOIN_TIMEOUT):
            await conference.__aenter__()
        try:
            phases = await conference.wait_media(JOIN_TIMEOUT)
        except BaseException:
            await conference.__aexit__()
            raise
        self.conference, self._evidence = conference, conference.evidence
        self._joined(started)
        for field, milliseconds in dataclasses.asdict(phases).items():
            self._metrics.record(f"xmpp_{field}", milliseconds)  # xmpp_login_ms, … (JoinPhases)
        others = any(nick != conference.nick for nick in conference.occupants)
        self._watch_media(started, others=others, video=self.planned.profile != "audio-only")

    async def _leave(self) -> None:
        if not self.in_session or self.conference is None:
            return
        self.in_session = False
        self._harvest()
        await self._harvest_rtp()
        conference, self.conference = self.conference, None
        with contextlib.suppress(Exception):
            await conference.__aexit__()

    async def _act_in_session(self, action: Action) -> None:
        conference = self.conference
        if conference is None:
            return
        match action.kind:
            case "mute" | "unmute":
                await conference.set_audio_muted(action.kind == "mute")
                self._metrics.observe("mute", self._clock(), uid=self.uid, muted=action.kind == "mute")
            case "pause" | "resume":
                await conference.set_video_muted(action.kind == "pause")
                self._metrics.observe("pause", self._clock(), uid=self.uid, paused=action.kind == "pause")


XMPP_PHASES: Final = JoinPhases.names()
"""Where a join through the XMPP door went: a histogram ``xmpp_<phase>_ms`` each."""


async def probe(target: JitsiTarget, planned: PlannedParticipant, auth_token: str) -> None:
    """Join ``planned``'s session once and leave; :class:`TargetError` (one line) if anything
    refuses: an unreachable target, a refused token, a focus that never answers, a refused join."""
    where = target.websocket_base
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=target.tls)) as http:
        try:
            token = await target.token(http, planned.session_id, planned, auth_token)
        except ApiError as exc:
            raise TargetError(f"{target.rest} refused a call token: {exc.code}: {exc.message}") from None
        conference = target.participant(planned, token, http)
        try:
            async with asyncio.timeout(PROBE_TIMEOUT * 3):
                await conference.__aenter__()
        except XmppRefusedError as exc:
            raise TargetError(f"{where}: {REFUSED[conference.step]}: {exc}") from None
        except TimeoutError:
            raise TargetError(f"{where}: {SILENT[conference.step].format(domain=target.domain)}") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise TargetError(f"cannot reach {where}: {_reason(exc)}") from None
        await conference.__aexit__()


REFUSED: Final = {
    "login": "the XMPP server refused the login",
    "conference": "the focus refused the conference",
    "room": "the room refused the join",
}
SILENT: Final = {
    "login": "the XMPP server did not log us in",
    "conference": "the focus (focus.{domain}) never answered the conference request",
    "room": "the room (conference.{domain}) never answered the join",
}


def _reason(exc: BaseException) -> str:
    """The root of a connection failure, as one short phrase."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        inner = exc.__cause__ or exc.__context__
        assert inner is not None
        if isinstance(inner, OSError) and inner.strerror:
            return str(inner.strerror)
        exc = inner
    return str(exc) or type(exc).__name__
