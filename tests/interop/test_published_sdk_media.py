"""Media both ways between the unmodified published SDK and native virtual participants.

The SDK (lib-jitsi-meet in Chromium) gets its media session from the focus in Jingle and its
transport from the bridge (:mod:`simulator.server.jitsi.endpoint`); the native participants
use the native protocol. Measured on both sides: the browser's ``getStats`` (frames decoded
and audio energy for each virtual participant's streams, its send rate) and the virtual
participants' analysers (the browser's camera frames, its microphone's sound, its screen).

The SDK's peer connections are found by wrapping ``RTCPeerConnection`` in the page before the
SDK loads: observation only, the SDK itself is not touched.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from simulator.server import Backend
from tests.conftest import Join
from tests.interop.test_published_sdk_joins import SdkPage, backend, browser  # noqa: F401 - fixtures

pytestmark = pytest.mark.interop

WATCH_PEER_CONNECTIONS = """
(() => {
  const Original = window.RTCPeerConnection;
  const made = window.__callsimPeerConnections = [];
  function Watched(...args) { const pc = new Original(...args); made.push(pc); return pc; }
  Watched.prototype = Original.prototype;
  Object.setPrototypeOf(Watched, Original);
  window.RTCPeerConnection = Watched;
  window.__callsimStats = async () => {
    const result = {received: [], sent: [], outgoingBitrate: 0, connections: made.length};
    for (const pc of made) {
      for (const s of (await pc.getStats()).values()) {
        if (s.type === "inbound-rtp") {
          result.received.push({kind: s.kind, ssrc: s.ssrc, framesDecoded: s.framesDecoded || 0,
                                totalAudioEnergy: s.totalAudioEnergy || 0, packets: s.packetsReceived,
                                height: s.frameHeight || 0, trackIdentifier: s.trackIdentifier || ""});
        } else if (s.type === "outbound-rtp") {
          result.sent.push({kind: s.kind, ssrc: s.ssrc, bytes: s.bytesSent, rid: s.rid || "",
                            height: s.frameHeight || 0, frames: s.framesEncoded || 0});
        } else if (s.type === "candidate-pair" && s.nominated && s.availableOutgoingBitrate) {
          result.outgoingBitrate = Math.max(result.outgoingBitrate, s.availableOutgoingBitrate);
        }
      }
    }
    return result;
  };
})();
"""


async def _open_watched(browser: Any, backend: Backend, uid: str) -> SdkPage:  # noqa: F811
    context = await browser.new_context(ignore_https_errors=True)
    await context.add_init_script(WATCH_PEER_CONNECTIONS)
    auth = backend.provision_user(uid, uid.title(), f"https://avatars.test/{uid}.png")
    page = await context.new_page()
    from conformance.shims.published_js import DOMAIN

    await page.goto(f"https://{DOMAIN}/sdk/?session=s1&auth={auth}")
    return SdkPage(page)


async def _stats(page: SdkPage) -> dict[str, Any]:
    return dict(await page.page.evaluate("window.__callsimStats()"))


async def _wait_for_stats(
    page: SdkPage, condition: Callable[[dict[str, Any]], bool], timeout: float = 40.0
) -> dict[str, Any]:
    """The page's stats once ``condition`` holds of them (polled: getStats has no event)."""
    deadline = time.monotonic() + timeout
    while True:
        stats = await _stats(page)
        if condition(stats):
            return stats
        if time.monotonic() > deadline:
            raise AssertionError(f"the browser's stats never met the condition: {stats}")
        await page.page.wait_for_timeout(250)


async def test_the_published_sdk_and_two_virtual_participants_send_and_receive_media(
    backend: Backend,  # noqa: F811
    browser: Any,  # noqa: F811
    join: Join,
) -> None:
    bob = await join("bob")
    carol = await join("carol")
    started = time.monotonic()
    alice = await _open_watched(browser, backend, "alice")
    await alice.wait_for("events.filter(e => e[1] === 'onUserJoined').length >= 3")
    stats = await _wait_for_stats(
        alice,
        lambda s: len([r for r in s["received"] if r["kind"] == "video" and r["framesDecoded"] > 20]) >= 2
        and len([r for r in s["received"] if r["kind"] == "audio" and r["totalAudioEnergy"] > 0]) >= 2,
    )
    print("browser stats:", stats)
    print(f"startSession → media from both virtual participants decoded: {time.monotonic() - started:.1f} s")
    for native in (bob, carol):
        stream = lambda source, n=native: n.evidence.stream("alice", source)  # noqa: E731
        await native.evidence.wait_for(
            lambda s=stream: (c := s("camera")) is not None and c.frames > 20 and (m := s("mic")) is not None and m.frames > 50,
            30,
        )
