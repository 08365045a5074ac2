"""The focus's Jingle and the bridge channel on a real Prosody, seen by a Jitsi-style client.

What lib-jitsi-meet relies on is asserted stanza by stanza (the research behind it is in
docs/jitsi.md): the session-initiate's shape, source-add and source-remove as natives come
and go, and the bridge channel (the screen-share companion: test_xmpp_companion.py). Bad
Jingle gets an error naming what is wrong, and harms nobody else. Media itself is measured with the
published SDK in Chromium (tests/interop/test_published_sdk_media.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator
from xml.etree import ElementTree as ET

import aiohttp
import pytest

from simulator import protocol
from simulator.jitsi.jingle import NS_JINGLE, Jingle, Source
from simulator.sdk.jitsi.xmpp import CLIENT, JitsiClient, child, local
from simulator.server import Backend
from simulator.server.jitsi.endpoint import Endpoint
from tests.conftest import Join
from tests.e2e.test_xmpp_door import ROOM, call_token, member

SSMA = "urn:xmpp:jingle:apps:rtp:ssma:0"
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        shutil.which("prosody") is None and os.environ.get("CALLSIM_REQUIRE_XMPP") != "1",
        reason="needs Prosody (apt-get install prosody; tox installs it)",
    ),
]


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    async with Backend(xmpp=True) as b:
        yield b


def jingle_of(action: str):  # type: ignore[no-untyped-def]
    def match(element: ET.Element) -> bool:
        found = element.find(f"{{{NS_JINGLE}}}jingle") if local(element.tag) == "iq" else None
        return found is not None and found.get("action") == action

    return match


async def received(client: JitsiClient, action: str, *, after: int = 0) -> tuple[ET.Element, Jingle]:
    """The ``after``-th (0: first) Jingle IQ of ``action`` the client got, answered ``result``."""
    seen = 0

    def nth(element: ET.Element) -> bool:
        nonlocal seen
        if not jingle_of(action)(element):
            return False
        seen += 1
        return seen > after

    iq = await client.wait(nth)
    await client.send(f'<iq xmlns="{CLIENT}" type="result" id="{iq.get("id")}" to="{iq.get("from")}"/>')
    found = iq.find(f"{{{NS_JINGLE}}}jingle")
    assert found is not None
    return iq, Jingle.parse(found)


async def send_jingle(client: JitsiClient, body: str) -> ET.Element:
    """Send a Jingle IQ to the focus's occupant JID; the answer (result or error)."""
    ident = f"j{len(client.received)}"
    await client.send(f'<iq xmlns="{CLIENT}" id="{ident}" type="set" to="{ROOM}/focus">{body}</iq>')
    return await client.wait(lambda e: local(e.tag) == "iq" and e.get("id") == ident)


def others(sources: list[Source]) -> list[Source]:
    """The sources of other participants: all but the bridge's placeholders."""
    return [s for s in sources if s.owner != "jvb"]


def error_condition(answer: ET.Element) -> str:
    error = child(answer, "error")
    assert answer.get("type") == "error" and error is not None, ET.tostring(answer)
    return next(local(c.tag) for c in error if local(c.tag) != "text")


async def test_the_session_initiate_offers_what_the_sfu_forwards_and_the_others_sources(
    backend: Backend, join: Join
) -> None:
    bob = await join("bob")
    assert bob.client.session is not None
    bob_id = bob.client.session.me.participant_id
    async with JitsiClient(backend.url, call_token(backend, "alice", "s1")) as alice:
        await alice.conference(ROOM)
        await alice.join(ROOM, member("a1", "alice", "Alice"))
        iq, offer = await received(alice, "session-initiate")

    assert iq.get("from") == f"{ROOM}/focus"  # lib-jitsi-meet takes Jingle from the focus only
    assert offer.initiator == f"{ROOM}/focus" and offer.bundle == ["audio", "video"]
    assert [c.name for c in offer.contents] == [
        "audio",
        "video",
    ]  # no data content: the bridge channel is a WebSocket
    audio, video = offer.contents
    assert [(p.name, p.clockrate, p.channels) for p in audio.payload_types] == [("opus", 48000, 2)]
    assert [p.name for p in video.payload_types] == ["VP8", "rtx"]  # no VP9 (SVC), no H264
    assert ("goog-remb", "") in video.payload_types[0].feedback
    transport = offer.transport
    assert transport is not None and transport.ufrag and transport.pwd
    assert {f.setup for f in transport.fingerprints} == {"actpass"}
    assert "sha-256" in {f.hash for f in transport.fingerprints}
    assert [(c.ip, c.protocol, c.type) for c in transport.candidates] == [("127.0.0.1", "udp", "host")]
    assert transport.websocket.endswith("/colibri-ws/s1/a1")
    assert all(c.transport == transport for c in offer.contents)  # one bundled transport in each content

    # First the bridge's placeholders (lib-jitsi-meet skips their stream), then Bob's microphone
    # and camera, on the bridge's own SSRCs, owned by his occupant.
    assert [(s.name, s.owner, s.msid) for s in (audio.sources[0], video.sources[0])] == [
        ("jvb-a0", "jvb", "mixedmslabel mixedlabelaudio0"),
        ("jvb-v0", "jvb", "mixedmslabel mixedlabelvideo0"),
    ]
    (mic,) = others(audio.sources)
    (camera,) = others(video.sources)
    assert (mic.name, camera.name, camera.video_type) == (f"{bob_id}-a0", f"{bob_id}-v0", "camera")
    assert mic.owner == camera.owner == f"{ROOM}/{bob_id}"
    assert mic.msid and camera.msid and mic.msid != camera.msid
    publisher = {
        ssrc
        for f in next(
            p for p in backend.rooms.get("s1") or () if p.record.uid == "bob"
        ).sfu.forwarders.values()
        for ssrc in f.layers
    }  # type: ignore[union-attr]
    assert not {mic.ssrc, camera.ssrc} & publisher


async def test_source_add_and_remove_follow_the_natives(backend: Backend, join: Join) -> None:
    async with JitsiClient(backend.url, call_token(backend, "alice", "s1")) as alice:
        await alice.conference(ROOM)
        await alice.join(ROOM, member("a1", "alice", "Alice"))
        _, offer = await received(alice, "session-initiate")
        assert all(not others(c.sources) for c in offer.contents)  # nobody else yet

        carol = await join("carol")
        assert carol.client.session is not None
        carol_id = carol.client.session.me.participant_id
        _, added = await received(alice, "source-add")
        assert added.sid == offer.sid
        names = sorted(s.name for c in added.contents for s in c.sources)
        assert names == [f"{carol_id}-a0", f"{carol_id}-v0"]

        carol.client.end_session()
        _, removed = await received(alice, "source-remove")
        assert sorted(s.name for c in removed.contents for s in c.sources) == names
        assert {s.ssrc for c in removed.contents for s in c.sources} == {
            s.ssrc for c in added.contents for s in c.sources
        }


async def test_bad_jingle_is_refused_precisely_and_harms_no_one(backend: Backend, join: Join) -> None:
    bob = await join("bob", media=False)
    async with JitsiClient(backend.url, call_token(backend, "alice", "s1")) as alice:
        await alice.conference(ROOM)
        await alice.join(ROOM, member("a1", "alice", "Alice"))
        _, offer = await received(alice, "session-initiate")
        no_action = await send_jingle(alice, f'<jingle xmlns="{NS_JINGLE}" sid="{offer.sid}"/>')
        assert error_condition(no_action) == "bad-request"
        bad_ssrc = await send_jingle(
            alice,
            f'<jingle xmlns="{NS_JINGLE}" action="source-add" sid="{offer.sid}"><content name="audio">'
            '<description xmlns="urn:xmpp:jingle:apps:rtp:1" media="audio">'
            f'<source xmlns="{SSMA}" ssrc="not-a-number"/></description></content></jingle>',
        )
        assert error_condition(bad_ssrc) == "bad-request"
        no_transport = await send_jingle(
            alice, f'<jingle xmlns="{NS_JINGLE}" action="session-accept" sid="{offer.sid}"/>'
        )
        assert error_condition(no_transport) == "bad-request"
        other_session = await send_jingle(
            alice, f'<jingle xmlns="{NS_JINGLE}" action="session-accept" sid="someone-elses"/>'
        )
        assert error_condition(other_session) == "item-not-found"
        # The session is intact: a good source-add is taken, and bob is still in the room.
        good = await send_jingle(
            alice,
            f'<jingle xmlns="{NS_JINGLE}" action="source-add" sid="{offer.sid}"><content name="audio">'
            '<description xmlns="urn:xmpp:jingle:apps:rtp:1" media="audio">'
            f'<source xmlns="{SSMA}" ssrc="1234" name="a1-a0"/></description></content></jingle>',
        )
        assert good.get("type") == "result"
        occupant = next(p for p in backend.rooms.get("s1") or () if p.record.uid == "alice")
        assert isinstance(occupant.sfu, Endpoint) and occupant.sfu.forwarders["mic"].ssrc == 1234
    assert bob.recorder.names().count("on_user_joined") == 1


async def test_the_bridge_channel_greets_and_takes_receiver_constraints(backend: Backend, join: Join) -> None:
    await join("bob")
    async with JitsiClient(backend.url, call_token(backend, "alice", "s1")) as alice:
        await alice.conference(ROOM)
        await alice.join(ROOM, member("a1", "alice", "Alice"))
        _, offer = await received(alice, "session-initiate")
        assert offer.transport is not None
        path = offer.transport.websocket.split("/", 3)[3]  # wss://<host>/<path>: the same routes here
        occupant = next(p for p in backend.rooms.get("s1") or () if p.record.uid == "alice")
        assert isinstance(occupant.sfu, Endpoint)
        async with aiohttp.ClientSession() as http:
            # autoping off: the bridge's pong comes after it has read all that was sent before the ping.
            async with http.ws_connect(f"{backend.url.rstrip('/')}/{path}", autoping=False) as channel:
                hello = await channel.receive_json(timeout=10)
                assert hello["colibriClass"] == "ServerHello"
                forwarded = await channel.receive_json(timeout=10)
                assert forwarded["colibriClass"] == "ForwardedSources"
                assert [n.rsplit("-", 1)[1] for n in forwarded["forwardedSources"]] == ["v0"]
                await channel.send_str("not json at all")
                await channel.send_str(json.dumps(["not", "an", "object"]))
                await channel.send_str(
                    json.dumps(
                        {"colibriClass": "ReceiverVideoConstraints", "defaultConstraints": {"maxHeight": 180}}
                    )
                )
                await channel.ping()
                while (message := await channel.receive(timeout=10)).type is not aiohttp.WSMsgType.PONG:
                    assert message.type is aiohttp.WSMsgType.TEXT
                assert occupant.sfu.constraints.default == 180
                assert all(
                    r.outlet.max_height == 180 for r in occupant.sfu.remote.values() if r.kind == "video"
                )
            missing = await http.get(f"{backend.url}/colibri-ws/s1/nobody")
            assert missing.status == 404


async def test_an_endpoint_closed_while_it_gathers_gives_its_sockets_back(backend: Backend) -> None:
    """A member that leaves while the bridge gathers for it (the focus offers a session at once,
    the occupant may be gone by then): no socket outlives the endpoint (the leak fixture)."""
    state = protocol.MediaState(audio_muted=False, video_muted=False)
    room, participant = backend.rooms.join("s9", uid="u", name="U", avatar="", state=state, connection=None)
    endpoint = Endpoint(participant, room, lambda added, removed: None)
    allocating = asyncio.create_task(endpoint.allocate("wss://callsim.test/colibri-ws/s9/x"))
    await endpoint.close()
    with pytest.raises(ConnectionError):
        await allocating
    backend.rooms.leave(room, participant)
