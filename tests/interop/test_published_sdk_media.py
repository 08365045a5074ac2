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

import asyncio
from typing import Any

import pytest

from simulator.media.tones import TONES_HZ
from simulator.published_sdk import DOMAIN, WATCH_PEER_CONNECTIONS
from simulator.sdk.jitsi import JitsiParticipant
from simulator.server import Backend
from tests.conftest import Join
from tests.e2e.test_xmpp_door import call_token
from tests.interop.test_published_sdk_joins import SdkPage, backend, browser  # noqa: F401 - fixtures

pytestmark = pytest.mark.interop

START_BITRATE = 300_000
"""Chrome's bandwidth estimate before any feedback (bits per second)."""

RECEIVES_BOTH = """(() => {
  const s = window.__callsim.latest;
  return s !== null
    && s.received.filter(r => r.kind === "video" && r.framesDecoded > 20).length >= %(count)d
    && s.received.filter(r => r.kind === "audio" && r.totalAudioEnergy > 0).length >= %(count)d;
})()"""

DECODES_HEIGHT = """(() => {
  const s = window.__callsim.latest;
  return s !== null
    && s.received.some(r => r.kind === "video" && r.framesDecoded > 0 && r.height === %(height)d);
})()"""


async def _open_watched(browser: Any, backend: Backend, uid: str) -> SdkPage:  # noqa: F811
    context = await browser.new_context(ignore_https_errors=True)
    await context.add_init_script(WATCH_PEER_CONNECTIONS)
    auth = backend.provision_user(uid, uid.title(), f"https://avatars.test/{uid}.png")
    page = SdkPage(await context.new_page())  # listening to the console before the SDK starts
    await page.page.goto(f"https://{DOMAIN}/sdk/?session=s1&auth={auth}")
    return page


async def _stats(page: SdkPage) -> dict[str, Any]:
    return dict(await page.page.evaluate("window.__callsim.latest"))


async def _wait_in_page(page: SdkPage, condition: str, timeout: float = 40.0) -> None:
    try:
        await page.page.wait_for_function(condition, timeout=timeout * 1000)
    except Exception as exc:
        raise AssertionError(f"{condition} never held; stats {await _stats(page)}") from exc


async def test_the_published_sdk_and_two_virtual_participants_send_and_receive_media(
    backend: Backend,  # noqa: F811
    browser: Any,  # noqa: F811
    join: Join,
) -> None:
    bob = await join("bob")
    carol = await join("carol")
    alice = await _open_watched(browser, backend, "alice")
    await alice.wait_for("events.filter(e => e[1] === 'onUserJoined').length >= 3")
    await _wait_in_page(alice, RECEIVES_BOTH % {"count": 2})
    stats = await _stats(alice)
    first_frame = await alice.page.evaluate("window.__callsim.firstFrameAt")
    print(f"startSession → the SDK's first remote video frame: {first_frame - await alice.started_at()} ms")
    print("browser stats:", stats)
    for native in (bob, carol):
        stream = lambda source, n=native: n.evidence.stream("alice", source)  # noqa: E731
        await native.evidence.wait_for(
            lambda s=stream: (
                (c := s("camera")) is not None
                and c.frames > 20
                and (m := s("mic")) is not None
                and m.frames > 50
            ),
            30,
        )
        mic = stream("mic")
        assert mic is not None and mic.last_audible_at is not None  # Chrome's fake microphone beeps

    # The SDK sends its camera in three simulcast layers; natives get the 360p one.
    assert len([s for s in stats["sent"] if s["kind"] == "video"]) == 3
    camera = _member(backend, "alice").sfu.forwarders["camera"]
    assert len(camera.layers) == 3
    assert {camera.heights[o.layer] for o in camera.outlets if o.layer is not None} == {360}
    # ... and the SDK is asked to encode nothing taller (SenderSourceConstraints).
    assert _member(backend, "alice").sfu.sender_limit == 360

    # Congestion feedback: the browser's estimate leaves its 300 kb/s start.
    rates = await alice.page.evaluate("window.__callsim.sendRates")
    print(
        "send estimate (ms since start, b/s):",
        [(t - rates[0][0], r) for t, r in rates[:: max(1, len(rates) // 8)]],
    )
    assert max(r for _, r in rates) > 2 * START_BITRATE


def _member(server: Backend, uid: str) -> Any:
    room = server.rooms.get("s1")
    assert room is not None
    return next(p for p in room if p.record.uid == uid)


async def test_mute_in_the_sdk_silences_it_at_the_others(
    backend: Backend,  # noqa: F811
    browser: Any,  # noqa: F811
    join: Join,
) -> None:
    bob = await join("bob")
    alice = await _open_watched(browser, backend, "alice")
    mic = lambda: bob.evidence.stream("alice", "mic")  # noqa: E731
    await bob.evidence.wait_for(lambda: (m := mic()) is not None and m.last_audible_at is not None, 30)
    await alice.page.evaluate("window.CometChatCalls.muteAudio(true)")
    # The SDK mutes by disabling its track: silence keeps arriving, and none of it is audible.
    muted_at = asyncio.get_running_loop().time()
    stream = mic()
    assert stream is not None
    heard_before = stream.last_audible_at
    start = stream.frames
    await bob.evidence.wait_for(lambda: stream.frames - start > 150, 20)  # 3 s of 20 ms frames
    assert stream.last_audible_at is not None and heard_before is not None
    assert stream.last_audible_at < muted_at + 0.5  # what was in flight, at most
    await alice.page.evaluate("window.CometChatCalls.unMuteAudio()")
    await bob.evidence.wait_for(
        lambda: (m := mic()) is not None and (m.last_audible_at or 0) > muted_at + 1, 20
    )


async def test_a_screen_share_from_the_sdk_reaches_the_others(
    backend: Backend,  # noqa: F811
    browser: Any,  # noqa: F811
    join: Join,
) -> None:
    bob = await join("bob")
    alice = await _open_watched(browser, backend, "alice")
    await bob.evidence.wait_for(
        lambda: (c := bob.evidence.stream("alice", "camera")) is not None and c.frames > 5, 30
    )
    # The SDK shares from a second, token-less connection: an occupant "Alice(Screen)".
    await alice.page.evaluate("window.CometChatCalls.startScreenShare()")
    await bob.evidence.wait_for(
        lambda: (s := bob.evidence.stream("alice", "screen")) is not None and s.frames > 20, 30
    )
    room = backend.rooms.get("s1")
    assert room is not None and sorted(p.record.uid for p in room) == ["alice", "bob"]  # no third member
    assert _member(backend, "alice").record.screen_sharing
    await alice.page.evaluate("window.CometChatCalls.stopScreenShare()")
    await bob.evidence.wait_for(lambda: bob.evidence.stream("alice", "screen") is None, 20)
    assert not _member(backend, "alice").record.screen_sharing


async def test_two_sdks_receive_one_layer_of_each_others_simulcast_camera(
    backend: Backend,  # noqa: F811
    browser: Any,  # noqa: F811
) -> None:
    alice = await _open_watched(browser, backend, "alice")
    dave = await _open_watched(browser, backend, "dave")
    await _wait_in_page(alice, RECEIVES_BOTH % {"count": 1})
    await _wait_in_page(dave, RECEIVES_BOTH % {"count": 1})
    # Every session-initiate starts with the bridge's placeholder sources: without them the SDK
    # alone in the room logged "No SSRC lines found in remote SDP", then "remote track removal
    # failed" as the other joined (docs/jitsi.md).
    for page in (alice, dave):
        tracks = [e for e in page.console_errors if "SSRC" in e or "track" in e.lower()]
        assert not tracks, tracks
    for receiver, sender in ((alice, "dave"), (dave, "alice")):
        camera = _member(backend, sender).sfu.forwarders["camera"]
        outlet = camera.outlets[0]
        assert outlet.layer is not None
        # The browser's decoded size follows a layer switch some frames later: wait for it.
        await _wait_in_page(receiver, DECODES_HEIGHT % {"height": camera.heights[outlet.layer]}, 20)
        stats = await _stats(receiver)
        videos = [r for r in stats["received"] if r["kind"] == "video" and r["framesDecoded"] > 0]
        assert len(videos) == 1  # one stream of the three layers, on one SSRC
        receiver_member = _member(backend, "dave" if sender == "alice" else "alice")
        limit = receiver_member.sfu.constraints.height(f"{_member(backend, sender).participant_id}-v0")
        print(f"{sender} → the other SDK: layer {outlet.layer} of {camera.heights}, asked ≤ {limit}")
        assert outlet.layer is not None and videos[0]["height"] == camera.heights[outlet.layer]
        assert limit is None or camera.heights[outlet.layer] <= max(
            limit, min(h or 0 for h in camera.heights)
        )


async def test_one_room_three_kinds_of_member_see_and_hear_each_other(
    backend: Backend,  # noqa: F811
    browser: Any,  # noqa: F811
    join: Join,
) -> None:
    """A native virtual participant, a Jitsi-protocol one and the published SDK, in one session."""
    bob = await join("bob", path="lean")  # native, lean: the fixture's first tone
    carol = JitsiParticipant(
        backend.url,
        call_token(backend, "carol", "s1"),
        session_id="s1",
        uid="carol",
        name="Carol",
        tone_hz=TONES_HZ[4],
        publisher_tag=7,
    )
    async with carol:
        alice = await _open_watched(browser, backend, "alice")
        # The SDK sees both join and decodes both: frames and sound from bob and from carol.
        await alice.wait_for("events.filter(e => e[1] === 'onUserJoined').length >= 3")
        await _wait_in_page(alice, RECEIVES_BOTH % {"count": 2})
        # Carol (the Jitsi protocol) hears bob's tone and reads his marks, and gets the SDK's media.
        await carol.evidence.wait_for(
            lambda: (
                carol.evidence.heard().get("bob") == TONES_HZ[0]
                and carol.evidence.frames_from("bob") >= 10
                and (camera := carol.evidence.stream("alice", "camera")) is not None
                and camera.frames > 20
                and (mic := carol.evidence.stream("alice", "mic")) is not None
                and mic.frames > 50
            ),
            40,
        )
        # Bob (native) hears carol's tone and reads her marks.
        await bob.evidence.wait_for(
            lambda: (
                bob.evidence.heard().get("carol") == TONES_HZ[4] and bob.evidence.frames_from("carol") >= 10
            ),
            40,
        )
        assert {o.uid for o in carol.occupants.values()} == {"alice", "bob", "carol"}
        assert carol.media.failure is None
        # What lib-jitsi-meet logs of its own failures (an avatar it cannot load is not one).
        failures = [e for e in alice.console_errors if not e.startswith("Failed to load resource")]
        assert not failures, failures
