"""The published SDK's door: Prosody, the focus, and the WebSocket the SDK dials.

``wss://xmpp.<domain>/xmpp-websocket?token=…`` reaches the backend's TLS listener, which
hands the socket, query and all, to Prosody on loopback: Prosody speaks XMPP (and checks
the token), the focus runs the conference, and the backend's rooms are shared with the
native door (docs/jitsi.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final

import aiohttp
from aiohttp import WSMsgType, web

from simulator import protocol
from simulator.server.jitsi.colibri import BridgeChannels
from simulator.server.jitsi.endpoint import Endpoint
from simulator.server.jitsi.focus import Focus
from simulator.server.jitsi.prosody import Prosody
from simulator.server.rest import require_allowed_origin

if TYPE_CHECKING:
    from simulator.server.app import Backend

__all__ = ["XmppDoor"]

logger = logging.getLogger(__name__)

MAX_STANZA: Final = 1024 * 1024
PAGE: Final = Path(__file__).with_name("sdk_page.html")

BARE_PAGE: Final = (
    '<!doctype html><html><head><meta charset="utf-8"><title>callsim — the Calls SDK</title></head>'
    '<body><div id="call" style="width:960px;height:600px"></div>'
    '<script src="/sdk/calls-sdk.js"></script></body></html>'
)


FrameTap = Callable[[str, str, str], None]
"""``(call_token, toward, stanza_text)``: one relayed frame (``XmppDoor.taps``)."""


class XmppDoor:
    """Starts Prosody and the focus for ``backend``; serves ``/xmpp-websocket``."""

    def __init__(
        self, backend: Backend, domain: str, *, sdk_bundle: Path | None = None, media: bool = True
    ) -> None:
        self._backend = backend
        self.domain = domain
        self.sdk_bundle = sdk_bundle
        """The published SDK's ``pack/index.js`` (from npm), served with a page at ``/sdk/``."""
        self.prosody = Prosody(domain, backend.store.secret())
        self.focus: Focus | None = None
        self._http: aiohttp.ClientSession | None = None
        self.media = media
        """Whether the focus offers XMPP occupants media (Jingle and the bridge)."""
        self.channels = BridgeChannels(self._endpoint)
        self.taps: list[FrameTap] = []
        """Observers of every stanza relayed, called as ``tap(call_token, toward, text)`` with
        ``toward`` ``"server"`` or ``"client"`` (a test harness settling a fake clock on the
        SDK's XMPP traffic); they must not block."""

    async def start(self) -> None:
        await self.prosody.start()
        try:
            self._http = aiohttp.ClientSession()
            self.focus = Focus(
                self._backend,
                self.domain,
                port=self.prosody.component_port,
                secret=self.prosody.component_secret,
                channels=self.channels,
                media=self.media,
            )
            await self.focus.start()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """The focus leaves its rooms, then Prosody stops (idempotent)."""
        focus, self.focus = self.focus, None
        if focus is not None:
            await focus.close()
        http, self._http = self._http, None
        if http is not None:
            await http.close()
        await self.prosody.close()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/xmpp-websocket", self.websocket),
            web.get("/sdk/", self.sdk_page),
            web.get("/sdk/calls-sdk.js", self.sdk_script),
            web.get("/sdk/bare", self.sdk_bare_page),
            *self.channels.routes(),
        ]

    def _endpoint(self, session: str, name: str) -> Endpoint | None:
        return None if self.focus is None else self.focus.endpoint(session, name)

    async def sdk_page(self, _: web.Request) -> web.FileResponse:
        """A page running the published SDK against this backend (``?session=&auth=``)."""
        return web.FileResponse(PAGE)

    async def sdk_bare_page(self, _: web.Request) -> web.Response:
        """The SDK loaded and nothing run: a page for drivers that bring their own script
        (the conformance shim). It is this origin's, so the browser lets it reach the backend's
        loopback addresses (a page made up by the driver would be refused them)."""
        return web.Response(text=BARE_PAGE, content_type="text/html")

    async def sdk_script(self, _: web.Request) -> web.StreamResponse:
        if self.sdk_bundle is None or not self.sdk_bundle.exists():
            raise web.HTTPNotFound(reason="no SDK bundle: npm install @cometchat/calls-sdk-javascript@4.2.6")
        return web.FileResponse(self.sdk_bundle, headers={"Content-Type": "application/javascript"})

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        """RFC 7395 XMPP over WebSocket: frames both ways between the client and Prosody."""
        require_allowed_origin(request, self.domain)
        client = web.WebSocketResponse(
            protocols=("xmpp",), max_msg_size=MAX_STANZA, heartbeat=protocol.HEARTBEAT
        )
        await client.prepare(request)
        if self._http is None:
            await client.close(code=1013, message=b"the XMPP door is not open")
            return client
        url = (
            f"{self.prosody.websocket_url}?{request.query_string}"
            if request.query_string
            else self.prosody.websocket_url
        )
        try:
            async with (
                self._http.ws_connect(url, protocols=("xmpp",), max_msg_size=MAX_STANZA) as server,
                asyncio.TaskGroup() as group,
            ):
                token = request.query.get("token", "")
                group.create_task(_pipe(client, server, self._tap(token, "server")))
                group.create_task(_pipe(server, client, self._tap(token, "client")))
        except (aiohttp.ClientError, OSError) as exc:
            logger.warning("xmpp-websocket: Prosody unreachable: %s", exc)
        finally:
            await client.close()
        return client

    def _tap(self, token: str, toward: str) -> Callable[[str], None]:
        def relayed(text: str) -> None:
            for tap in self.taps:
                tap(token, toward, text)

        return relayed


async def _pipe(
    source: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
    sink: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
    relayed: Callable[[str], None],
) -> None:
    """Text frames from ``source`` to ``sink`` until either side closes; then close the other."""
    async for message in source:
        if message.type is not WSMsgType.TEXT:
            break
        with contextlib.suppress(ConnectionError):
            await sink.send_str(message.data)
            relayed(message.data)
    await sink.close()
