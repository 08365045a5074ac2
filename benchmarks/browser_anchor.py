"""The anchor: what one headless Chromium participant of the published SDK costs.

Browser-based load farms run one such participant per 0.5–1.5 cores; callsim's Jitsi-protocol
participants are measured against it in the same run. The SDK joins a room of 4 on the
embedded backend (its XMPP door, TLS on port 443, which the SDK requires: run the benchmarks
with ``tools/in-private-network``) beside three lean Jitsi-protocol participants; once it
decodes video from them, Chromium's processes (browser, renderer, GPU and network services)
are sampled for :data:`WINDOW` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from typing import Any, Final

import psutil

from simulator.crowd.canary import canaries_missing
from simulator.media.tones import TONES_HZ
from simulator.published_sdk import CHROMIUM_FLAGS, DOMAIN, SDK_BUNDLE, WATCH_PEER_CONNECTIONS
from simulator.sdk.jitsi import JitsiParticipant
from simulator.server import Backend

__all__ = ["WINDOW", "anchor_missing", "measure_browser_participant"]

WINDOW: Final = 15.0
SESSION: Final = "anchor"
DECODES_THREE: Final = """(() => {
  const s = window.__callsim.latest;
  return s !== null && s.received.filter(r => r.kind === "video" && r.framesDecoded > 20).length >= 3;
})()"""


def anchor_missing() -> str | None:
    """Why the anchor cannot be measured here (None when it can): what a canary needs."""
    return canaries_missing(SDK_BUNDLE)


def _chromium_seconds() -> float:
    """CPU seconds of every Chromium process under this one (Playwright's driver starts them)."""
    total = 0.0
    for process in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if "chrom" in process.name().lower():
                times = process.cpu_times()
                total += times.user + times.system
    return total


async def measure_browser_participant(window: float = WINDOW) -> dict[str, Any]:
    """One SDK participant in a room of 4 (three lean Jitsi-protocol others); its CPU share."""
    from playwright.async_api import async_playwright  # noqa: PLC0415 - an optional extra

    async with Backend(xmpp=True, https_port=443, sdk_bundle=SDK_BUNDLE, webrtc_host=DOMAIN) as backend:
        others = []
        for index in range(3):
            uid = f"lean-{index}"
            auth = backend.provision_user(uid, uid.title())
            user = backend.store.user_for_auth_token(auth)
            assert user is not None
            others.append(
                JitsiParticipant(
                    backend.url,
                    backend.tokens.issue(user, SESSION),
                    session_id=SESSION,
                    uid=uid,
                    name=uid.title(),
                    domain=DOMAIN,
                    tone_hz=TONES_HZ[index],
                    publisher_tag=index + 1,
                )
            )
        async with contextlib.AsyncExitStack() as stack:
            for other in others:
                await stack.enter_async_context(other)
            async with async_playwright() as playwright:
                chromium = shutil.which("chromium")
                browser = await playwright.chromium.launch(
                    executable_path=chromium, args=list(CHROMIUM_FLAGS)
                )
                try:
                    context = await browser.new_context(ignore_https_errors=True)
                    await context.add_init_script(WATCH_PEER_CONNECTIONS)
                    page = await context.new_page()
                    auth = backend.provision_user("sdk-user", "SDK User")
                    await page.goto(f"https://{DOMAIN}/sdk/?session={SESSION}&auth={auth}")
                    await page.wait_for_function(DECODES_THREE, timeout=60_000)
                    await asyncio.sleep(2.0)  # past the first keyframes and the bitrate ramp
                    before, started = _chromium_seconds(), time.monotonic()
                    await asyncio.sleep(window)  # the measured window
                    cpu, wall = _chromium_seconds() - before, time.monotonic() - started
                    rss = sum(
                        p.memory_info().rss
                        for p in psutil.Process().children(recursive=True)
                        if "chrom" in p.name().lower()
                    )
                finally:
                    await browser.close()
    return {
        "browser_cpu_share": round(cpu / wall, 3),
        "browser_rss_mib": round(rss / 2**20, 1),
        "window_seconds": round(wall, 1),
    }
