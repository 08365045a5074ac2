"""The published JavaScript Calls SDK, in headless Chromium, against the reference backend.

The token endpoints speak the JS SDK's own request shape, so that
the SDK with its ``host`` pointed here can use them. This runs the real SDK
(``@cometchat/calls-sdk-javascript`` 4.2.6 from npm, installed by ``tox -e interop``)
in a page served from another loopback origin, so CORS is exercised too.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from pathlib import Path

import pytest
from aiohttp import web

from simulator.published_sdk import SDK_BUNDLE
from simulator.server import Backend

pytestmark = pytest.mark.interop

SDK = Path(os.environ.get("CALLSIM_JS_SDK", str(SDK_BUNDLE)))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
REQUIRED = os.environ.get("CALLSIM_REQUIRE_INTEROP") == "1"

PAGE = """<!doctype html><html><body><pre id="out"></pre>
<script src="/sdk.js"></script>
<script>
const out = document.getElementById("out");
const log = (line) => { out.textContent += line + "\\n"; };
(async () => {
  try {
    const Calls = window.CometChatCalls;
    const app = new Calls.CallAppSettingsBuilder()
      .setAppId("callsim").setRegion("us").setHost("HOST").build();
    await Calls.init(app);
    const result = await Calls.generateToken("js-session", "AUTH");
    const payload = JSON.parse(atob(result.token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
    const segments = result.token.split(".").length;
    log(`token ${segments} ${payload.data.sessionId} ${payload.data.user.uid}`);
    try { await Calls.generateToken("js-session", "no-such-token"); log("accepted"); }
    catch (e) { log("refused " + e.code); }
  } catch (e) { log("failed " + (e && (e.code || e.message))); }
  log("done");
})();
</script></body></html>"""


@pytest.fixture
def browser() -> str:
    missing = [what for what, ok in (("chromium", CHROMIUM), (f"the SDK at {SDK}", SDK.exists())) if not ok]
    if missing:
        if REQUIRED:
            pytest.fail(f"interop run without {' and '.join(missing)} (see tox -e interop)")
        pytest.skip(f"needs {' and '.join(missing)}: run `tox -e interop`")
    assert CHROMIUM is not None
    return CHROMIUM


async def test_the_published_sdk_generates_tokens_here(
    browser: str, backend: Backend, tmp_path: Path
) -> None:
    auth = backend.provision_user("jsuser", "JS User")
    page = web.Application()
    html = PAGE.replace("HOST", backend.url).replace("AUTH", auth)

    async def index(_: web.Request) -> web.Response:
        return web.Response(text=html, content_type="text/html")

    async def sdk(_: web.Request) -> web.FileResponse:
        return web.FileResponse(SDK)

    page.router.add_get("/", index)
    page.router.add_get("/sdk.js", sdk)
    runner = web.AppRunner(page)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        origin = f"http://127.0.0.1:{runner.addresses[0][1]}/"
        process = await asyncio.create_subprocess_exec(
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=20000", "--dump-dom", origin,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        dom, _ = await asyncio.wait_for(process.communicate(), 120)
    finally:
        await runner.cleanup()
    match = re.search(r'<pre id="out">(.*?)</pre>', dom.decode(), re.S)
    assert match, dom.decode()[:500]
    assert match.group(1).split("\n")[:3] == [
        "token 3 js-session jsuser",
        "refused AUTH_ERR_AUTH_TOKEN_NOT_FOUND",
        "done",
    ]
