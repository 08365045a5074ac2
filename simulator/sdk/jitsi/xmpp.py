"""XMPP over WebSocket (RFC 7395) as lib-jitsi-meet speaks it, for one participant.

:class:`JitsiClient` logs in the way the published SDK does (SASL ANONYMOUS, the call token in
the URL), asks the focus for the conference, joins the MUC with the SDK's presence children,
and keeps every stanza it receives, so that its user can wait for one.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import ssl
from collections.abc import Callable
from typing import Final
from xml.etree import ElementTree as ET

import aiohttp

from simulator import protocol
from simulator.jitsi.presence import occupant_presence

logger = logging.getLogger(__name__)

__all__ = ["CLIENT", "FOCUS", "JitsiClient", "XmppRefusedError", "attributes", "child", "local", "text"]

FRAMING: Final = "urn:ietf:params:xml:ns:xmpp-framing"
CLIENT: Final = "jabber:client"
FOCUS: Final = "http://jitsi.org/protocol/focus"
STREAMS: Final = "{http://etherx"


class XmppRefusedError(Exception):
    """The server ended the stream or refused a step; ``condition`` says how."""

    def __init__(self, condition: str, text: str = "") -> None:
        super().__init__(f"{condition}: {text}".strip(": "))
        self.condition = condition


def local(tag: str) -> str:
    """An element's name without its namespace."""
    return tag.rsplit("}", 1)[-1]


def child(element: ET.Element, name: str) -> ET.Element | None:
    """``element``'s first child named ``name`` (any namespace)."""
    return next((c for c in element if local(c.tag) == name), None)


def text(element: ET.Element, name: str) -> str | None:
    """The text of ``element``'s child ``name`` (None when absent)."""
    found = child(element, name)
    return None if found is None else found.text


def attributes(element: ET.Element, name: str) -> dict[str, str]:
    """The attributes of ``element``'s child ``name`` (empty when absent)."""
    found = child(element, name)
    return {} if found is None else dict(found.attrib)


class JitsiClient:
    """One published-SDK-like participant: ``async with JitsiClient(url, token, domain)``.

    ``base_url`` is where the deployment's ``xmpp-websocket`` lives (``http(s)://`` or
    ``ws(s)://``); ``token`` the call token, or None for a connection without one (the SDK's
    screen share dials so, and so do anonymous deployments). ``http`` is a session to dial
    from (shared by many participants; one of its own if None); ``tls`` is aiohttp's ``ssl``
    (False: no certificate check, for a self-signed test deployment).
    """

    def __init__(
        self,
        base_url: str,
        token: str | None,
        domain: str = "callsim.test",
        *,
        http: aiohttp.ClientSession | None = None,
        tls: ssl.SSLContext | bool | None = None,
    ) -> None:
        query = f"?token={token}" if token is not None else ""
        base = base_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1).rstrip("/")
        self.url = f"{base}/xmpp-websocket{query}"
        self.domain = domain
        self._shared_http = http
        self._tls = tls
        self.jid = ""
        self.received: list[ET.Element] = []
        """Every stanza received, in order (a waiter sees old ones too)."""
        self.on_stanza: list[Callable[[ET.Element], None]] = []
        """Called with each stanza as it arrives, in order, before any waiter sees it."""
        self._arrived = asyncio.Condition()
        self._ids = itertools.count(1)
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()

    @property
    def http(self) -> aiohttp.ClientSession:
        """The HTTP session it dials from (the bridge channel dials from it too), once entered."""
        assert self._http is not None, "not entered"
        return self._http

    @property
    def tls(self) -> ssl.SSLContext | bool | None:
        return self._tls

    async def __aenter__(self) -> JitsiClient:
        self._http = self._shared_http or aiohttp.ClientSession()
        try:
            self._ws = await self._http.ws_connect(
                self.url, protocols=("xmpp",), ssl=True if self._tls is None else self._tls
            )
            self._reader = asyncio.create_task(self._read())
            await self._login()
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._ws is not None and not self._ws.closed:
            await self._ws.close()
        if self._reader is not None:
            await self._reader
        if self._http is not None and self._http is not self._shared_http:
            await self._http.close()

    async def _read(self) -> None:
        assert self._ws is not None
        async for message in self._ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                break
            element = ET.fromstring(message.data)
            for handler in self.on_stanza:
                try:
                    handler(element)
                except Exception:  # one handler's bug must not stop the stream for the others
                    logger.exception("a stanza handler failed on %s", local(element.tag))
            async with self._arrived:
                self.received.append(element)
                self._arrived.notify_all()
        self.closed.set()
        async with self._arrived:
            self._arrived.notify_all()

    async def send(self, xml: str) -> None:
        """Send one top-level element, as written."""
        assert self._ws is not None
        await self._ws.send_str(xml)

    async def wait(self, match: Callable[[ET.Element], bool], timeout: float = 10.0) -> ET.Element:
        """The first received stanza (old or new) that ``match``es; XmppRefusedError if the
        stream ends first or carries a stream error."""
        async with asyncio.timeout(timeout), self._arrived:
            while True:
                for element in self.received:
                    if local(element.tag) == "error" and element.tag.startswith(STREAMS):
                        condition = next((local(c.tag) for c in element if local(c.tag) != "text"), "?")
                        raise XmppRefusedError(condition, text(element, "text") or "")
                    if match(element):
                        return element
                if self.closed.is_set():
                    raise XmppRefusedError("closed", "the server closed the WebSocket")
                await self._arrived.wait()

    async def _login(self) -> None:
        opening = f'<open xmlns="{FRAMING}" to="{self.domain}" version="1.0"/>'
        await self.send(opening)
        await self.wait(lambda e: local(e.tag) == "features" and child(e, "mechanisms") is not None)
        await self.send('<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="ANONYMOUS"/>')
        await self.wait(lambda e: local(e.tag) in ("success", "failure"))
        if any(local(e.tag) == "failure" for e in self.received):
            raise XmppRefusedError("sasl-failure")
        self.received.clear()
        await self.send(opening)
        await self.wait(lambda e: local(e.tag) == "features" and child(e, "bind") is not None)
        bound = await self.iq("set", self.domain, '<bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"/>')
        self.jid = "".join(bound.itertext())

    async def iq(self, kind: str, to: str, payload: str) -> ET.Element:
        """Send an IQ and wait for its answer; XmppRefusedError (its condition) if refused."""
        ident = f"q{next(self._ids)}"
        await self.send(f'<iq xmlns="{CLIENT}" id="{ident}" type="{kind}" to="{to}">{payload}</iq>')
        answer = await self.wait(lambda e: local(e.tag) == "iq" and e.get("id") == ident)
        if answer.get("type") == "error":
            error = child(answer, "error")
            raise XmppRefusedError(
                local(error[0].tag) if error is not None and len(error) else "?", "iq error"
            )
        return answer

    async def conference(self, room: str, machine_uid: str | None = None) -> ET.Element:
        """The focus's answer to lib-jitsi-meet's conference request (with the browser's
        ``machine-uid``, which the SDK's screen-share connection shares with its owner)."""
        machine = f' machine-uid="{machine_uid}"' if machine_uid is not None else ""
        answer = await self.iq(
            "set", f"focus.{self.domain}", f'<conference xmlns="{FOCUS}" room="{room}"{machine}/>'
        )
        found = child(answer, "conference")
        assert found is not None
        return found

    async def join(self, room: str, me: protocol.ParticipantRecord) -> ET.Element:
        """Join the MUC as the SDK does (``me.participant_id`` is the nick); the room's own
        presence for us (status 110), or its error."""
        await self.presence(room, me, joining=True)
        nick = me.participant_id
        return await self.wait(
            lambda e: (local(e.tag) == "presence" and e.get("from") == f"{room}/{nick}") or _is_error(e, room)
        )

    async def presence(self, room: str, me: protocol.ParticipantRecord, *, joining: bool = False) -> None:
        """The SDK's presence for ``me`` (the wire's :func:`occupant_presence`): stats-id, nick,
        user_object, mute states."""
        presence = ET.Element(f"{{{CLIENT}}}presence", to=f"{room}/{me.participant_id}")
        presence.extend(occupant_presence(me, joining=joining, namespace=CLIENT))
        await self.send(ET.tostring(presence, encoding="unicode"))

    async def leave(self, room: str, nick: str) -> None:
        """Leave the MUC (``unavailable``): the SDK sends no Jingle ``session-terminate``."""
        await self.send(f'<presence xmlns="{CLIENT}" to="{room}/{nick}" type="unavailable"/>')


def _is_error(element: ET.Element, room: str) -> bool:
    return element.get("type") == "error" and (element.get("from") or "").startswith(room)
