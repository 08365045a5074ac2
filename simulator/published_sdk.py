"""Where the published Calls SDK is on this machine: one place for every part that loads it
(the canaries, ``callsim demo --browser``, ``callsim serve``'s SDK page, the interop checks)."""

from __future__ import annotations

from pathlib import Path
from typing import Final

__all__ = [
    "CHROMIUM_FLAGS",
    "DOMAIN",
    "SDK_BUNDLE",
    "SDK_INSTALL",
    "SDK_VERSION",
    "WATCH_PEER_CONNECTIONS",
    "chromium_flags",
]

SDK_VERSION: Final = "4.2.6"
"""The version callsim is tested against (pinned, as the interop environment installs it)."""
SDK_BUNDLE: Final = Path(".interop/node_modules/@cometchat/calls-sdk-javascript/pack/index.js")
"""Its bundle, where :data:`SDK_INSTALL` puts it (relative to the directory it runs from)."""
SDK_INSTALL: Final = f"npm install --prefix .interop @cometchat/calls-sdk-javascript@{SDK_VERSION}"

DOMAIN: Final = "callsim.test"
"""The host the SDK is pointed at (``setHost("https://callsim.test/")``): the backend's
``webrtc_host``, resolved to loopback in Chromium by :data:`CHROMIUM_FLAGS`."""


def chromium_flags(resolve_to: str = "127.0.0.1") -> tuple[str, ...]:
    """Headless Chromium for the SDK: fake camera and microphone, no prompts, and :data:`DOMAIN`
    (with its ``xmpp.`` name) resolved to ``resolve_to``, where the backend is."""
    return (
        "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream", "--autoplay-policy=no-user-gesture-required",
        f"--host-resolver-rules=MAP {DOMAIN} {resolve_to}, MAP *.{DOMAIN} {resolve_to}",
        "--ignore-certificate-errors",  # the backend's certificate is self-signed, made at start
    )  # fmt: skip


CHROMIUM_FLAGS: Final = chromium_flags()
"""Headless Chromium for the SDK, its host on loopback."""

WATCH_PEER_CONNECTIONS: Final = """
(() => {
  const Original = window.RTCPeerConnection;
  const made = [];
  function Watched(...args) { const pc = new Original(...args); made.push(pc); return pc; }
  Watched.prototype = Original.prototype;
  Object.setPrototypeOf(Watched, Original);
  window.RTCPeerConnection = Watched;
  const watch = window.__callsim = {latest: null, firstFrameAt: null, sendRates: []};
  async function sample() {
    const result = {received: [], sent: [], outgoingBitrate: 0, connections: made.length};
    for (const pc of made) {
      for (const s of (await pc.getStats()).values()) {
        if (s.type === "inbound-rtp") {
          result.received.push({kind: s.kind, ssrc: s.ssrc, framesDecoded: s.framesDecoded || 0,
                                totalAudioEnergy: s.totalAudioEnergy || 0, packets: s.packetsReceived,
                                height: s.frameHeight || 0, lost: s.packetsLost || 0, jitter: s.jitter || 0,
                                freezes: s.freezeCount || 0});
        } else if (s.type === "outbound-rtp") {
          result.sent.push({kind: s.kind, ssrc: s.ssrc, bytes: s.bytesSent, height: s.frameHeight || 0,
                            frames: s.framesEncoded || 0});
        } else if (s.type === "candidate-pair" && s.nominated && s.availableOutgoingBitrate) {
          result.outgoingBitrate = Math.max(result.outgoingBitrate, s.availableOutgoingBitrate);
        }
      }
    }
    if (watch.firstFrameAt === null && result.received.some(r => r.kind === "video" && r.framesDecoded > 0)) {
      watch.firstFrameAt = Date.now();
    }
    if (result.outgoingBitrate) watch.sendRates.push([Date.now(), result.outgoingBitrate]);
    watch.latest = result;
  }
  // getStats has no event: the page samples it, and tests wait on the samples.
  setInterval(() => { sample().catch(() => {}); }, 100);
})();
"""
"""An init script for a page of the SDK: it wraps ``RTCPeerConnection`` before the SDK loads
(observation only) and samples every connection's ``getStats`` ten times a second into
``window.__callsim.latest`` (received: kind, frames decoded, audio energy, packets, height,
packets lost, jitter, freezes; sent; the outgoing bitrate estimate), and the time of the first
remote frame decoded (``firstFrameAt``), so a driver can wait on what the browser decodes."""
