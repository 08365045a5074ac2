"""``callsim demo --browser``: the published SDK in Chromium and virtual participants in one
session on the embedded backend, with both sides' callbacks printed as they happen.

The backend opens both doors: native signalling for the virtual participants, and the XMPP
door (Prosody and the focus) with its TLS listener on port 443 for the SDK, which needs
``xmpp.<host>`` there. Run it where 443 is free and private: ``tools/in-private-network
callsim demo --browser`` (docs/jitsi.md). Chromium is Debian's; it is driven with
Playwright (``pip install 'callsim[interop]'``) and the SDK bundle comes from npm.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from typing import Any, Final

from faker import Faker
from rich.console import Console

from simulator import eventloop
from simulator.published_sdk import CHROMIUM_FLAGS, DOMAIN
from simulator.sdk import (
    CallAppSettingsBuilder,
    CallsClient,
    CallSettingsBuilder,
    CallView,
    OngoingCallListener,
    to_wire,
)
from simulator.sdk.recorder import EventRecorder
from simulator.server import Backend

__all__ = ["BrowserDemoError", "run_browser_demo"]

SESSION: Final = "browser-demo"
SCREENSHOT: Final = Path("reports/demo-browser.png")


class BrowserDemoError(RuntimeError):
    """Something the demo needs is missing (the message says what to install or run)."""


def _printer(console: Console, started: float, who: str) -> Any:
    def show(callback: str, payload: object) -> None:
        console.print(f"{time.monotonic() - started:6.2f} s  [bold]{who:<14}[/] {callback} {payload}")

    return show


def run_browser_demo(bundle: Path, seconds: float, console: Console) -> int:
    """Run the demo; 0 when the SDK and the natives saw each other join and leave.

    :class:`BrowserDemoError` says what is missing before anything starts.
    """
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise BrowserDemoError("Chromium is missing: apt-get install chromium")
    if not bundle.exists():
        raise BrowserDemoError(
            f"no SDK bundle at {bundle}: npm install --prefix .interop @cometchat/calls-sdk-javascript@4.2.6"
        )
    try:
        import playwright.async_api  # noqa: F401, PLC0415 - an optional extra
    except ImportError:
        raise BrowserDemoError("Playwright is missing: pip install 'callsim[interop]'") from None
    SCREENSHOT.parent.mkdir(exist_ok=True)
    return eventloop.run(_run(chromium, bundle, seconds, console))


async def _run(chromium: str, bundle: Path, seconds: float, console: Console) -> int:
    from playwright.async_api import async_playwright  # noqa: PLC0415 - an optional extra

    started = time.monotonic()
    faker = Faker()
    faker.seed_instance(11)
    async with Backend(xmpp=True, https_port=443, sdk_bundle=bundle, webrtc_host=DOMAIN) as backend:
        natives: list[tuple[CallsClient, EventRecorder]] = []
        for uid in ("vp-1", "vp-2"):
            name = faker.name()
            auth = backend.provision_user(uid, name)
            client = CallsClient(name=uid, media_path="lean")
            recorder = EventRecorder(uid)
            show = _printer(console, started, f"{name} (native)")
            listener = OngoingCallListener(
                **{
                    callback: _wrap(handler, show, callback)
                    for callback, handler in recorder.handlers().items()
                }
            )
            await client.init(
                CallAppSettingsBuilder().set_app_id("callsim").set_region("us").set_host(backend.url).build()
            )
            token = await client.generate_token(SESSION, auth)
            settings = CallSettingsBuilder().set_call_listener(listener).build()
            await client.start_session(token.token, settings, CallView())
            await client.wait_joined()
            natives.append((client, recorder))
        auth = backend.provision_user("browser-user", "Browser User")
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium, args=list(CHROMIUM_FLAGS))
            page = await (await browser.new_context(ignore_https_errors=True)).new_page()
            await page.goto(f"https://{DOMAIN}/sdk/?session={SESSION}&auth={auth}")
            show = _printer(console, started, "SDK (browser)")
            seen = 0
            deadline = time.monotonic() + seconds
            left = False
            while time.monotonic() < deadline or not left:
                events = await page.evaluate("callsim.events")
                for _, callback, payload in events[seen:]:
                    if callback != "onMediaDeviceListUpdated":
                        show(callback, payload)
                seen = len(events)
                if time.monotonic() >= deadline and not left:
                    for client, _ in natives:
                        client.end_session()
                    left = True
                    deadline = time.monotonic() + 3
                await asyncio.sleep(0.25)  # the page is polled: its callbacks live in JavaScript
            await page.screenshot(path=str(SCREENSHOT))
            await browser.close()
        for client, _ in natives:
            await client.aclose()
    names = [callback for _, callback, _ in events]
    console.print(f"screenshot: {SCREENSHOT}")
    return 0 if "onUserJoined" in names and "onCallEnded" in names else 1


def _wrap(handler: Any, show: Any, callback: str) -> Any:
    """Record the callback, then print it (with the contract's camelCase name)."""

    def both(*args: Any) -> None:
        handler(*args)
        show(to_wire(callback), args[0] if args else "")

    return both
