"""The unmodified published SDK joins a reference session with native virtual participants.

Chromium (Debian's) runs the SDK's own page (``/sdk/`` of the backend) with its host at
``https://callsim.test/``: the SDK reads ``GET call_tokens``, dials
``wss://xmpp.callsim.test/xmpp-websocket`` on port 443, asks the focus for the conference
and joins the MUC. Both sides' callbacks are recorded and compared. Port 443 and the name
``callsim.test`` exist only inside a private network namespace (``tools/in-private-network``,
which ``tox -e interop`` runs this under) and Chromium's ``--host-resolver-rules``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from simulator.published_sdk import CHROMIUM_FLAGS, DOMAIN, SDK_BUNDLE
from simulator.server import Backend
from tests.conftest import Join

pytestmark = pytest.mark.interop

SDK = Path(os.environ.get("CALLSIM_JS_SDK", str(SDK_BUNDLE))).absolute()
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
REQUIRED = os.environ.get("CALLSIM_REQUIRE_INTEROP") == "1"
TIMELINE = Path(os.environ.get("CALLSIM_INTEROP_REPORT", ".interop/timeline.json"))


def _missing() -> list[str]:
    missing = [what for what, ok in (("chromium", CHROMIUM), (f"the SDK at {SDK}", SDK.exists())) if not ok]
    if shutil.which("prosody") is None:
        missing.append("prosody")
    return missing


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    """The backend with both doors, its TLS listener on 443 as the SDK requires."""
    if missing := _missing():
        if REQUIRED:
            pytest.fail(f"interop run without {' and '.join(missing)} (see tox -e interop)")
        pytest.skip(f"needs {' and '.join(missing)}: run `tox -e interop`")
    try:
        backend = Backend(xmpp=True, https_port=443, sdk_bundle=SDK, webrtc_host=DOMAIN)
        await backend.start()
    except PermissionError:
        pytest.fail("port 443 is needed: run under tools/in-private-network (tox -e interop does)")
    try:
        yield backend
    finally:
        await backend.close()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield chromium
        finally:
            await chromium.close()


class SdkPage:
    """The published SDK in one browser page, and the callbacks it fired."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.console_errors: list[str] = []
        """What the page logged as errors (lib-jitsi-meet logs its own failures there)."""
        page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)

    @classmethod
    async def open(cls, browser: Any, backend: Backend, uid: str, session: str) -> SdkPage:
        auth = backend.provision_user(uid, uid.title(), f"https://avatars.test/{uid}.png")
        page = cls(await (await browser.new_context(ignore_https_errors=True)).new_page())
        await page.page.goto(f"https://{DOMAIN}/sdk/?session={session}&auth={auth}")
        return page

    async def events(self) -> list[list[Any]]:
        return list(await self.page.evaluate("callsim.events"))

    async def wait_for(self, condition: str, timeout: float = 30.0) -> None:
        """Wait until the JavaScript ``condition`` over ``events`` (the callbacks) holds."""
        check = f"(() => {{ const events = callsim.events; return {condition}; }})()"
        try:
            await self.page.wait_for_function(check, timeout=timeout * 1000)
        except Exception as exc:
            state = await self.page.evaluate("({state: callsim.state, error: callsim.error})")
            raise AssertionError(
                f"{condition} never held; page {state}; events {await self.events()}"
            ) from exc

    async def started_at(self) -> int:
        return int(await self.page.evaluate("callsim.startedAt"))


def _uids(events: list[list[Any]], callback: str) -> list[str]:
    return [payload["uid"] for _, name, payload in events if name == callback]


def _record(name: str, browser_events: list[list[Any]], natives: dict[str, Any]) -> None:
    """The two sides' histories, side by side, kept as a CI artifact."""
    TIMELINE.parent.mkdir(parents=True, exist_ok=True)
    runs = json.loads(TIMELINE.read_text()) if TIMELINE.exists() else {}
    runs[name] = {
        "browser": [[t, callback, payload] for t, callback, payload in browser_events],
        "natives": {
            uid: [[callback, repr(args)[:300]] for callback, args in p.recorder.events]
            for uid, p in natives.items()
        },
    }
    TIMELINE.write_text(json.dumps(runs, indent=1, default=str))


async def test_the_published_sdk_and_native_participants_see_each_other(
    backend: Backend, browser: Any, join: Join
) -> None:
    bob = await join("bob", media=False)
    carol = await join("carol", media=False)
    alice = await SdkPage.open(browser, backend, "alice", "s1")

    # The SDK lists both native participants (and, as observed, itself).
    await alice.wait_for("events.filter(e => e[1] === 'onUserJoined').length >= 3")
    events = await alice.events()
    assert set(_uids(events, "onUserJoined")) == {"alice", "bob", "carol"}
    lists = [payload for _, name, payload in events if name == "onUserListUpdated"]
    assert {u["uid"] for u in lists[-1]} == {"alice", "bob", "carol"}
    first = min(t for t, name, payload in events if name == "onUserJoined" and payload["uid"] != "alice")
    print(f"startSession → first onUserJoined of a native participant: {first - await alice.started_at()} ms")

    # Each native participant hears the browser user join (after the other native), as "Alice".
    for native in (bob, carol):
        joined = await native.recorder.wait_for("on_user_joined", count=2)
        assert (joined[0].uid, joined[0].name) == ("alice", "Alice")

    # Natives leave: the SDK reports each one, then the call's end when it is alone.
    bob.client.end_session()
    await alice.wait_for("events.some(e => e[1] === 'onUserLeft' && e[2].uid === 'bob')")
    carol.client.end_session()
    await alice.wait_for("events.some(e => e[1] === 'onCallEnded')")
    events = await alice.events()
    assert _uids(events, "onUserLeft") == ["bob", "carol"]
    assert [name for _, name, _ in events].index("onCallEnded") > [name for _, name, _ in events].index(
        "onUserLeft"
    )
    _record("see-each-other", events, {"bob": bob, "carol": carol})


async def test_the_sdk_end_button_leaves_the_room_at_the_others(
    backend: Backend, browser: Any, join: Join
) -> None:
    bob = await join("bob", media=False)
    alice = await SdkPage.open(browser, backend, "alice", "s1")
    await bob.recorder.wait_for("on_user_joined")
    await alice.wait_for("events.some(e => e[1] === 'onUserJoined' && e[2].uid === 'bob')")

    await alice.page.click('[title="End call"]')  # the SDK's own call view
    left = await bob.recorder.wait_for("on_user_left", timeout=20)
    assert left[0].uid == "alice"
    await bob.recorder.wait_for("on_call_ended")
    await alice.wait_for("events.some(e => e[1] === 'onCallEndButtonPressed')")
    room = backend.rooms.get("s1")
    assert room is not None and [p.record.uid for p in room] == ["bob"]
    _record("end-button", await alice.events(), {"bob": bob})


def test_the_browser_demo_prints_both_sides(tmp_path: Path) -> None:
    if missing := _missing():
        if REQUIRED:
            pytest.fail(f"interop run without {' and '.join(missing)} (see tox -e interop)")
        pytest.skip(f"needs {' and '.join(missing)}: run `tox -e interop`")
    command = ["demo", "--browser", "--seconds", "3", "--sdk-bundle", str(SDK)]
    done = subprocess.run(
        [sys.executable, "-m", "simulator.cli", *command],
        capture_output=True, text=True, timeout=180, check=False, cwd=tmp_path,
    )  # fmt: skip
    output = " ".join(done.stdout.split())  # rich wraps long lines when piped
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "SDK (browser) onUserJoined" in output and "(native) on_user_joined" in output
    assert "SDK (browser) onCallEnded" in output
    assert (tmp_path / "reports" / "demo-browser.png").exists()
