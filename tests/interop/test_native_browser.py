"""Plain Chromium on the native protocol: a page written from docs/signalling.md
publishes its fake camera and microphone and receives a native virtual participant's.

Media both ways is measured on both sides: the browser's ``getStats`` (frames decoded, audio
energy) and the virtual participant's analysers. Preferring H264 and turning simulcast on
either work or are refused with a clear error, never silently; the browser's send rate climbs
above its start once the SFU gives it feedback.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from simulator.server import Backend
from tests.conftest import Join

pytestmark = pytest.mark.interop

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PAGE = Path(__file__).with_name("native_client.html")
FLAGS = [
    "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream", "--autoplay-policy=no-user-gesture-required",
]  # fmt: skip
START_BITRATE = 300_000
"""Chrome's bandwidth estimate before any feedback (bits per second)."""


@pytest.fixture
async def chromium() -> AsyncIterator[Any]:
    if CHROMIUM is None:
        pytest.skip("needs chromium: run `tox -e interop`")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def page_origin() -> AsyncIterator[str]:
    """The page, served from a loopback origin (the socket refuses pages of other origins)."""
    app = web.Application()

    async def index(_: web.Request) -> web.FileResponse:
        return web.FileResponse(PAGE)

    app.router.add_get("/", index)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/"
    finally:
        await runner.cleanup()


class NativePage:
    def __init__(self, page: Any) -> None:
        self.page = page

    @classmethod
    async def open(cls, chromium: Any, origin: str, backend: Backend, **options: str) -> NativePage:
        auth = backend.provision_user("browser", "Browser")
        user = backend.store.user_for_auth_token(auth)
        assert user is not None
        token = backend.tokens.issue(user, "s1")
        query = "&".join(
            f"{k}={v}" for k, v in {"ws": backend.ws_url, "token": token, "session": "s1", **options}.items()
        )
        page = await (await chromium.new_context()).new_page()
        await page.goto(f"{origin}?{query}")
        return cls(page)

    async def wait(self, condition: str, timeout: float = 30.0) -> None:
        try:
            await self.page.wait_for_function(condition, timeout=timeout * 1000, polling=250)
        except Exception as exc:
            state = await self.page.evaluate("({log: native.log, errors: native.errors})")
            raise AssertionError(f"{condition} never held; page {state}") from exc

    async def stats(self) -> dict[str, Any]:
        return dict(await self.page.evaluate("native.stats()"))

    async def errors(self) -> list[dict[str, Any]]:
        return list(await self.page.evaluate("native.errors"))


RECEIVES = """native.latest !== null
 && native.latest.received.some(s => s.kind === "video" && s.framesDecoded > 20)
 && native.latest.received.some(s => s.kind === "audio" && s.totalAudioEnergy > 0)"""


async def _media_both_ways(page: NativePage, alice: Any) -> dict[str, Any]:
    await page.wait(RECEIVES)
    stream = lambda source: alice.evidence.stream("browser", source)  # noqa: E731
    await alice.evidence.wait_for(
        lambda: (
            (c := stream("camera")) is not None
            and c.frames > 20
            and (m := stream("mic")) is not None
            and m.frames > 50
        ),
        30,
    )
    mic = stream("mic")
    assert mic is not None and mic.last_audible_at is not None  # Chrome's fake microphone beeps: sound
    return await page.stats()


async def test_chromium_with_its_defaults_sends_and_receives_vp8(
    chromium: Any, page_origin: str, backend: Backend, join: Join
) -> None:
    alice = await join("alice")
    page = await NativePage.open(chromium, page_origin, backend)
    stats = await _media_both_ways(page, alice)
    assert stats["sent"]["codec"] == "video/VP8"
    assert await page.errors() == []


async def test_chromium_preferring_h264_is_answered_with_vp8_and_media_flows(
    chromium: Any, page_origin: str, backend: Backend, join: Join
) -> None:
    alice = await join("alice")
    page = await NativePage.open(chromium, page_origin, backend, codec="h264")
    stats = await _media_both_ways(page, alice)
    assert stats["sent"]["codec"] == "video/VP8"  # the SFU answers only what it forwards
    assert await page.errors() == []


async def test_chromium_with_simulcast_is_refused_with_a_clear_error(
    chromium: Any, page_origin: str, backend: Backend, join: Join
) -> None:
    await join("alice")
    page = await NativePage.open(chromium, page_origin, backend, simulcast="1")
    await page.wait("native.errors.length > 0")
    (error,) = await page.errors()
    assert error["code"] == "ERR_NEGOTIATION_FAILED"
    assert "simulcast is not supported" in error["message"]


async def test_a_browser_publishers_rate_climbs_above_its_start(
    chromium: Any, page_origin: str, backend: Backend, join: Join
) -> None:
    await join("alice")
    page = await NativePage.open(chromium, page_origin, backend)
    await page.wait(RECEIVES)
    # With receiver reports and REMB from the SFU, the estimate leaves its start value.
    started = asyncio.get_running_loop().time()
    await page.wait(f"native.latest.availableOutgoingBitrate > {START_BITRATE * 3}", timeout=40)
    stats = await page.stats()
    print(
        f"browser publisher: estimate {stats['availableOutgoingBitrate']} b/s after"
        f" {asyncio.get_running_loop().time() - started:.1f} s; sent {stats['sent']}"
    )
