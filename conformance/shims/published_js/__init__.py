"""The published JavaScript Calls SDK as a system under test (PROTOCOL.md, any language).

``python -m conformance.shims.published_js`` speaks the conformance wire protocol on
stdio and serves it with the unmodified ``@cometchat/calls-sdk-javascript`` bundle from
npm, running in headless Chromium (one page per client: the SDK is a singleton per page)
against the reference backend's Jitsi-compatible door (``docs/jitsi.md``). ``adapter.js``
maps the protocol's methods onto the SDK inside each page; this module owns the browser,
the backend and the harness methods.

It needs port 443 (the SDK always dials ``wss://xmpp.<host>:443``) and so runs inside
``tools/in-private-network``; ``callsim conform --sut published-js`` does that. What it
declares, and why, is in :data:`CAPABILITIES`' comment.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from conformance.driver import ContractError, DriverError, Emit
from conformance.shims.published_js.clock import FRAME_COUNTER, SteppedClock
from simulator.published_sdk import CHROMIUM_FLAGS, DOMAIN, SDK_BUNDLE
from simulator.server import Backend
from simulator.server.rooms import Participant, Room

__all__ = ["CHROMIUM_FLAGS", "DEFAULT_SDK", "DOMAIN", "PublishedJs"]

DEFAULT_SDK: Final = SDK_BUNDLE
PAGE_URL: Final = f"https://{DOMAIN}/sdk/bare"
ADAPTER: Final = Path(__file__).with_name("adapter.js")
CAPABILITIES: Final[list[str]] = [
    c for c in os.environ.get("CALLSIM_SHIM_CAPS", "callView,virtualClock").split(",") if c
]
"""What the browser really gives, found out by running the suite (``CALLSIM_SHIM_CAPS``,
comma-separated, overrides it; empty for none):

- ``virtualClock``: **declared.** Playwright's fake clock (``page.clock``, one per page)
  replaces the page's ``setTimeout``/``setInterval``/``Date``; WebRTC, in the browser's own
  threads, is not touched. One long jump also fired lib-jitsi-meet's XMPP ping timeouts
  before any answer could come, and the SDK dropped its connection; ``advanceClock`` now
  goes in steps settled on the XMPP traffic (:mod:`.clock`), and the SDK's idle timers fire
  on time with the room intact.
- ``callView``: **declared.** The SDK's own view in the page's element (``adapter.js``):
  buttons pressed by their ``data-testid`` (the SDK runs a button's handler after a
  debounce: 0.5 s, 1 s for the end button), the idle prompt's countdown read off
  ``.modal-overlay .timer-text``, the mode off the layout's container. Not answered: the
  tiles (the view shows display names, not uids: ``tiles`` is null), an "armed" idle timer
  (no mark in the DOM: it reads "off"), and pressing ``mode`` (a menu here, not a button).
- ``mediaEvidence``: not declared. Media flows both ways now (the focus speaks Jingle;
  measured in ``tests/interop/test_published_sdk_media.py``), but ``Harness.media`` would
  have to tell who is heard by tone and whose frames arrived from the browser's ``getStats``:
  not written yet.
- ``devices``: Chromium's fake devices cannot be plugged in or out while it runs.
- ``ringing``: the Chat SDK is another package, not loaded here.
"""
SMALL_CAMERA: Final = """
(() => {
  const devices = navigator.mediaDevices;
  const original = devices.getUserMedia.bind(devices);
  devices.getUserMedia = (constraints) => {
    if (constraints && constraints.video) {
      const video = typeof constraints.video === "object" ? {...constraints.video} : {};
      delete video.aspectRatio;
      Object.assign(video, {width: {ideal: 320, max: 320}, height: {ideal: 180, max: 180}});
      video.frameRate = {max: 15};
      constraints = {...constraints, video};
    }
    return original(constraints);
  };
})();
"""
"""The pages' fake camera, 320×180 at 15 fps: the size of the virtual participants' own. The
SDK asks for 720p in three simulcast layers, and a suite that runs up to four pages at once on
two cores spent its time encoding video no check looks at (the suite took 15 minutes, and
joins missed their 15 s waits); the SDK's own constraints are measured in the interop tests."""
MEDIA: Final = os.environ.get("CALLSIM_SHIM_MEDIA", "0") == "1"
"""Whether the backend gives the pages media (Jingle and the bridge): off by default
(``CALLSIM_SHIM_MEDIA=1`` turns it on). No check of the profile this shim declares needs
media, and with media the SDK's idle prompt misbehaves under the fake clock (found here:
``idle.idle.stay-restarts-the-cycle-k17`` fails with media and passes without, the same SDK
and check): media is measured in ``tests/interop/test_published_sdk_media.py`` instead,
until ``mediaEvidence`` is declared and that is understood."""
WAIT_TIMEOUT: Final = 15.0
SELF_LIST_GRACE: Final = 5.0
"""How long ``waitJoined`` waits, once the backend has the member, for the SDK's own list."""


@dataclass
class _Client:
    name: str
    context: Any
    page: Any
    session: str | None = None
    uid: str | None = None
    member: Participant | None = field(default=None, repr=False)
    """The backend's member this client became (claimed once it appears)."""
    listed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    """Set when the settings listener got a user list naming this client's user: the SDK
    has run every callback of its own join (the published SDK fires some, K9)."""


def _log(line: str) -> None:
    print(line[:500], file=sys.stderr, flush=True)


def _token_claims(token: object) -> dict[str, Any]:
    """The call token's ``data`` claims (session and user), or {} for a token that is not one."""
    if not isinstance(token, str) or token.count(".") != 2:
        return {}
    body = token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, UnicodeDecodeError):
        return {}
    data = claims.get("data") if isinstance(claims, dict) else None
    return data if isinstance(data, dict) else {}


class PublishedJs:
    """The protocol served by the published SDK in Chromium, over the reference backend."""

    def __init__(self, emit: Emit, *, sdk: Path | None = None, chromium: str | None = None) -> None:
        self._emit = emit
        self._sdk = (sdk or Path(os.environ.get("CALLSIM_JS_SDK", DEFAULT_SDK))).absolute()
        self._chromium = chromium or shutil.which("chromium") or shutil.which("chromium-browser")
        self._backend: Backend | None = None
        self._playwright: Any = None
        self._browser: Any = None
        self._loose: _Client | None = None
        """The page serving client-less calls (builders, constants): never in a session."""
        self._clients: dict[str, _Client] = {}
        self._membership = asyncio.Event()
        self._clock = SteppedClock()

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> dict[str, Any]:
        if not self._sdk.exists():
            raise DriverError(
                f"the SDK bundle is not at {self._sdk} (npm install @cometchat/calls-sdk-javascript@4.2.6)"
            )
        if self._chromium is None:
            raise DriverError("chromium is not installed")
        from playwright.async_api import async_playwright  # noqa: PLC0415 - the interop extra

        self._backend = Backend(
            xmpp=True, xmpp_media=MEDIA, https_port=443, sdk_bundle=self._sdk, webrtc_host=DOMAIN
        )
        try:
            await self._backend.start()
        except PermissionError:
            raise DriverError("port 443 is needed: run under tools/in-private-network") from None
        self._backend.rooms.watchers.append(self._on_room)
        if "virtualClock" in CAPABILITIES and self._backend.xmpp is not None:
            self._backend.xmpp.taps.append(self._clock.relayed)
        self._playwright = await async_playwright().start()
        self._browser = await self._playwright.chromium.launch(
            executable_path=self._chromium, args=CHROMIUM_FLAGS
        )
        self._loose = await self._open("(client-less)")
        version = await self._loose.page.evaluate(
            "CometChatCalls.getSdkVersion ? CometChatCalls.getSdkVersion() : null"
        )
        return {
            "protocol": 1,
            "implementation": "@cometchat/calls-sdk-javascript (published, in Chromium)",
            "version": str(version or "4.2.6"),
            "capabilities": CAPABILITIES,
        }

    async def reset(self) -> None:
        """Close every client's page and wait until the backend has seen each one leave.

        The client-less page is replaced too: the SDK keeps module-level state (K41's
        shared container defaults), which must not leak from one check into the next."""
        pages = list(self._clients.values())
        if self._loose is not None:
            pages.append(self._loose)
            self._loose = None
        for client in pages:
            with contextlib.suppress(Exception):
                await client.context.close()
        self._clients.clear()
        self._clock.forget()
        if self._browser is not None:
            self._loose = await self._open("(client-less)")
        with contextlib.suppress(TimeoutError):
            await self._until(lambda: not any(room.participants for room in self.backend.rooms), WAIT_TIMEOUT)

    async def close(self) -> None:
        browser, self._browser = self._browser, None  # no client-less page is reopened
        with contextlib.suppress(Exception):
            await self.reset()
        self._browser = browser
        if self._browser is not None:
            with contextlib.suppress(Exception):
                await self._browser.close()
            self._browser = None
        if self._playwright is not None:
            with contextlib.suppress(Exception):
                await self._playwright.stop()
            self._playwright = None
        if self._backend is not None:
            await self._backend.close()
            self._backend = None

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            raise DriverError("the implementation is not started")
        return self._backend

    # --- dispatch -----------------------------------------------------------------------------

    async def handle(self, method: str, params: dict[str, Any]) -> Any:
        namespace, _, name = method.partition(".")
        if namespace == "Harness":
            return await self._harness(name, params)
        if namespace == "CometChatCalls" and name:
            if name in ("CallSettingsBuilder", "MainVideoContainerSetting"):
                return await self._page_call(self._loose_client(), name, params)
            client = self._client(params)
            if name == "startSession":
                claims = _token_claims(params.get("callToken"))
                user = claims.get("user")
                client.session = claims.get("sessionId")
                client.uid = user.get("uid") if isinstance(user, dict) else None
                client.member = None
                client.listed.clear()
            arguments = {k: v for k, v in params.items() if k != "client"}
            if name == "startSession":
                arguments["selfUid"] = client.uid  # the page watches for its own user's list
            return await self._page_call(client, name, arguments)
        raise LookupError(method)

    def _client(self, params: dict[str, Any]) -> _Client:
        name = params.get("client")
        if not isinstance(name, str) or name not in self._clients:
            raise DriverError(f"unknown client {name!r}; call Harness.createClient first")
        return self._clients[name]

    def _loose_client(self) -> _Client:
        if self._loose is None:
            raise DriverError("the implementation is not started")
        return self._loose

    async def _page_call(self, client: _Client, method: str, params: dict[str, Any]) -> Any:
        try:
            answer = await client.page.evaluate("([m, p]) => callsimShim.handle(m, p)", [method, params])
        except Exception as exc:  # the page crashed or navigated away: the SDK's fault, not a refusal
            raise DriverError(f"{client.name}: the page failed in {method}: {exc}") from None
        if "notImplemented" in answer:
            raise LookupError(answer["notImplemented"])
        if "error" in answer:
            error = answer["error"]
            raise ContractError(
                str(error["code"]), str(error["message"]), error.get("name"), error.get("details")
            )
        return answer.get("result")

    # --- pages --------------------------------------------------------------------------------

    async def _open(self, name: str) -> _Client:
        context = await self._browser.new_context(ignore_https_errors=True)

        def emit(_source: Any, listener: str, callback: str, payload: Any) -> None:
            self._emit(name, listener, callback, payload)

        listed = asyncio.Event()
        await context.add_init_script(SMALL_CAMERA)
        await context.expose_binding("callsimEmit", emit)
        await context.expose_binding("callsimListed", lambda _source: listed.set())
        if "virtualClock" in CAPABILITIES:
            await context.expose_binding(
                "callsimXmppFrame", lambda _source, url, what: self._clock.page_reported(url, what)
            )
            await context.add_init_script(FRAME_COUNTER)
        page = await context.new_page()
        if "virtualClock" in CAPABILITIES:
            await page.clock.install()

        # The SDK's own complaints go to stderr, which the suite keeps in its transcript.
        def console(message: Any) -> None:
            if message.type in ("error", "warning"):
                _log(f"{name} console.{message.type}: {message.text}")

        page.on("console", console)
        page.on("pageerror", lambda e: _log(f"{name} page error: {e}"))
        await page.goto(PAGE_URL)
        await page.add_script_tag(content=ADAPTER.read_text())
        return _Client(name, context, page, listed=listed)

    # --- Harness.* ----------------------------------------------------------------------------

    async def _harness(self, name: str, params: dict[str, Any]) -> Any:
        match name:
            case "reset":
                await self.reset()
                return {}
            case "provisionUser":
                uid = params["uid"]
                token = self.backend.provision_user(uid, params.get("name", uid), params.get("avatar", ""))
                return {"authToken": token}
            case "createClient":
                client_name = params["client"]
                if client_name in self._clients:
                    raise DriverError(f"client {client_name!r} exists")
                client = await self._open(client_name)
                self._clients[client_name] = client
                settings = {
                    "appId": self.backend.app_id,
                    "region": self.backend.region,
                    "host": f"https://{DOMAIN}/",
                }
                if params.get("init", True):
                    await self._page_call(client, "init", {"appSettings": settings})
                return {"appSettings": settings}
            case "waitJoined":
                await self._wait_joined(self._client(params), float(params.get("timeout", WAIT_TIMEOUT)))
                return {}
            case "waitClosed":
                await self._wait_closed(self._client(params), float(params.get("timeout", WAIT_TIMEOUT)))
                return {}
            case "advanceClock":
                await self._clock.advance([c.page for c in self._clients.values()], float(params["seconds"]))
                return {}
            case "constants":
                return await self._page_call(self._loose_client(), "constants", {})
            case "press":
                return await self._page_call(self._client(params), "press", {"button": params["button"]})
            case "view":
                return await self._page_call(self._client(params), "view", {})
        raise LookupError(f"Harness.{name}")

    def _on_room(self, _room: Room, _message: object) -> None:
        self._membership.set()

    async def _until(self, condition: Any, timeout: float) -> None:
        """Wait until ``condition()`` holds, re-checked at every room announcement."""
        async with asyncio.timeout(timeout):
            while not condition():
                self._membership.clear()
                # Page-side state (an onError) changes without an announcement: look again soon.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.25):
                        await self._membership.wait()

    def _find_member(self, client: _Client) -> Participant | None:
        """This client's member of its session's room: one with its uid no other client claimed."""
        if client.session is None or client.uid is None:
            return None
        room = self.backend.rooms.matching(client.session)
        if room is None:
            return None
        claimed = {id(c.member) for c in self._clients.values() if c.member is not None}
        return next(
            (p for p in room if p.connection is None and p.record.uid == client.uid and id(p) not in claimed),
            None,
        )

    async def _join_error(self, client: _Client) -> dict[str, Any] | None:
        state = await self._page_call(client, "joinState", {})
        error = state.get("error") if isinstance(state, dict) else None
        return error if isinstance(error, dict) else None

    async def _wait_joined(self, client: _Client, timeout: float) -> None:
        """Joined = the backend holds the client's member; failed = the SDK's onError fired."""
        error: dict[str, Any] | None = None

        async def joined_or_failed() -> None:
            nonlocal error
            async with asyncio.timeout(timeout):
                while True:
                    client.member = client.member or self._find_member(client)
                    if client.member is not None:
                        return
                    if (error := await self._join_error(client)) is not None:
                        return
                    with contextlib.suppress(TimeoutError):
                        await self._until(lambda: self._find_member(client) is not None, 0.5)

        started = asyncio.get_running_loop().time()
        try:
            await joined_or_failed()
        except TimeoutError:
            raise ContractError("JOIN_TIMEOUT", f"{client.name} did not join within {timeout:g} s") from None
        if error is not None:
            raise ContractError(
                str(error["code"]), str(error["message"]), error.get("name"), error.get("details")
            )
        if "virtualClock" in CAPABILITIES:
            await self._clock.anchor(client.page)  # its timers (idle) count from about now
        # In the backend, but the SDK has not yet handled the echo of its own presence: a check
        # registering a listener now would see the callbacks of this join (its own onUserJoined).
        left = max(0.0, timeout - (asyncio.get_running_loop().time() - started))
        try:
            async with asyncio.timeout(min(left, SELF_LIST_GRACE)):
                await client.listed.wait()
        except TimeoutError:
            _log(f"{client.name}: joined, but no user list naming {client.uid} within {SELF_LIST_GRACE:g} s")

    async def _wait_closed(self, client: _Client, timeout: float) -> None:
        """Closed = the backend no longer holds the client's member."""

        def gone() -> bool:
            member = client.member
            room = None if client.session is None else self.backend.rooms.matching(client.session)
            return member is None or room is None or member not in list(room)

        try:
            await self._until(gone, timeout)
        except TimeoutError:
            raise ContractError(
                "CLOSE_TIMEOUT", f"{client.name} was still in its session after {timeout:g} s"
            ) from None
