"""The published SDK's screen-share companion on a real Prosody: a connection without a call
token, let in only as the companion of one present token holder, and then only to publish
its owner's screen.

The SDK's companion dials with no token, and its first stanza of note is its conference IQ,
carrying the ``machine-uid`` of its browser, the same as its owner's (the owner itself says
nothing before it shares); after joining it names its owner in ``SCREEN_SHARING_STARTED``.
Every other token-less connection is closed with ``not-authorized``, and the call carries on.
The real SDK's share is measured in tests/interop/test_published_sdk_media.py.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from xml.etree import ElementTree as ET

import aiohttp
import pytest

from simulator.sdk.jitsi.xmpp import CLIENT, JitsiClient, XmppRefusedError, child, local, text
from simulator.server import Backend
from tests.conftest import Join
from tests.e2e.test_jingle import others, received
from tests.e2e.test_xmpp_door import ROOM, call_token, member, pytestmark  # noqa: F401 - the skip marks

MACHINE = "3f5c2a9e-alices-browser"
OWNER = "a1"


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    async with Backend(xmpp=True) as b:
        yield b


@asynccontextmanager
async def owner(backend: Backend, machine: str | None = MACHINE) -> AsyncIterator[JitsiClient]:
    """Alice, a token holder and a member of the session, from the browser ``machine``."""
    async with JitsiClient(backend.url, call_token(backend, "alice", "s1")) as alice:
        await alice.conference(ROOM, machine)
        await alice.join(ROOM, member(OWNER, "alice", "Alice"))
        await received(alice, "session-initiate")  # the focus has made her a member
        yield alice


async def share(client: JitsiClient, nick: str, *, names: str | None, joining: bool = False) -> ET.Element:
    """The companion's presence as the SDK writes it (``SCREEN_SHARING_STARTED`` naming
    ``names``, if given); its echo from the room."""
    started = json.dumps({"userId": names, "screenShareId": nick}) if names else None
    await client.send(
        f'<presence xmlns="{CLIENT}" to="{ROOM}/{nick}">'
        + ('<x xmlns="http://jabber.org/protocol/muc"/>' if joining else "")
        + '<nick xmlns="http://jabber.org/protocol/nick">Alice(Screen)</nick><SourceInfo>{}</SourceInfo>'
        + (f"<SCREEN_SHARING_STARTED>{started}</SCREEN_SHARING_STARTED>" if started else "")
        + "</presence>"
    )
    count = sum(1 for e in client.received if _from(e) == f"{ROOM}/{nick}")
    seen = 0

    def next_echo(element: ET.Element) -> bool:
        nonlocal seen
        if local(element.tag) == "presence" and _from(element) == f"{ROOM}/{nick}":
            seen += 1
        return seen > count

    return await client.wait(next_echo)


async def companion_of_alice(backend: Backend, nick: str = "sc1") -> JitsiClient:
    """A companion bound to Alice, joined as ``nick`` and sharing (the caller closes it)."""
    client = JitsiClient(backend.url, None)
    await client.__aenter__()
    await client.conference(ROOM, MACHINE)
    echo = await share(client, nick, names=None, joining=True)
    assert echo.get("type") != "error", ET.tostring(echo)
    await share(client, nick, names=OWNER)
    return client


async def closed_with(client: JitsiClient) -> str:
    """The condition the server closed ``client``'s stream with."""
    with pytest.raises(XmppRefusedError) as closed:
        await client.wait(lambda _: False, timeout=30)
    return closed.value.condition


def _from(element: ET.Element) -> str:
    return element.get("from") or ""


def members(backend: Backend) -> list[str]:
    return sorted(p.record.uid for p in backend.rooms.get("s1") or ())


async def test_a_token_less_socket_is_closed_at_the_stream_unless_a_holder_could_share(
    backend: Backend,
) -> None:
    with pytest.raises(XmppRefusedError) as refused:
        async with JitsiClient(backend.url, None):
            pass  # nobody holds a token: no stream at all
    assert refused.value.condition == "not-authorized"
    async with owner(backend):
        # Someone could share now, so the stream opens; the conference IQ then has to name
        # her browser and her room, and a wrong one closes the stream.
        for machine, room in (
            (None, ROOM),
            ("another-browser", ROOM),
            (MACHINE, "s2@conference.callsim.test"),
        ):
            async with JitsiClient(backend.url, None) as stranger:
                with pytest.raises(XmppRefusedError) as refused:
                    await stranger.conference(room, machine)
                assert refused.value.condition == "not-authorized"
                assert await closed_with(stranger) == "not-authorized"
        assert members(backend) == ["alice"]


async def test_a_companion_hears_only_the_focus_and_itself_and_gets_no_ones_media(
    backend: Backend, join: Join
) -> None:
    bob = await join("bob")  # a native publisher: sources and presence the companion must not get
    assert bob.client.session is not None and bob.client.session.me is not None
    bob_id = bob.client.session.me.participant_id
    async with owner(backend) as alice:
        companion = await companion_of_alice(backend)
        try:
            _, offer = await received(companion, "session-initiate")
            assert all(not others(c.sources) for c in offer.contents)  # the bridge's placeholders only
            # Alice sees her companion, marked by the gate as hers.
            seen = await alice.wait(lambda e: _from(e) == f"{ROOM}/sc1")
            mark = child(seen, "companion")
            assert mark is not None and mark.get("owner") == OWNER
            # Alice changes her presence, sees it, and only then the companion speaks: had her
            # change reached the companion, it would have come before this echo.
            await alice.presence(ROOM, member(OWNER, "alice", "Alice", audio_muted=True))
            await alice.wait(
                lambda e: _from(e) == f"{ROOM}/{OWNER}" and "true" in (text(e, "SourceInfo") or "")
            )
            await share(companion, "sc1", names=OWNER)
            heard = {_from(e).rsplit("/", 1)[-1] for e in companion.received if local(e.tag) == "presence"}
            assert heard == {"focus", "sc1"}, heard  # not Alice, not Bob's occupant
            assert not [e for e in companion.received if local(e.tag) == "message"]
            occupants = {
                _from(e) for e in companion.received if local(e.tag) == "iq" and _from(e).startswith(ROOM)
            }
            assert occupants <= {f"{ROOM}/focus"}, occupants  # Jingle from the focus only
            assert members(backend) == ["alice", "bob"]  # a companion is no member
            assert bob_id not in {s.owner.rsplit("/", 1)[-1] for c in offer.contents for s in c.sources}
        finally:
            await companion.__aexit__()


async def test_one_companion_per_holder(backend: Backend) -> None:
    async with owner(backend) as alice:
        companion = await companion_of_alice(backend)
        try:
            # Nobody else is free to share for: a second one gets no stream.
            with pytest.raises(XmppRefusedError) as refused:
                async with JitsiClient(backend.url, None):
                    pass
            assert refused.value.condition == "not-authorized"
            assert members(backend) == ["alice"]
        finally:
            await companion.__aexit__()
        # Her companion gone (she sees it leave), Alice may share again.
        await alice.wait(lambda e: _from(e) == f"{ROOM}/sc1" and e.get("type") == "unavailable")
        again = await companion_of_alice(backend, "sc2")
        try:
            # It leaves the room but stays connected (the SDK disconnects a moment later): Alice
            # may share again at once, and the one that left may not come back.
            await again.leave(ROOM, "sc2")
            await alice.wait(
                lambda e: _from(e) == f"{ROOM}/sc2" and e.get("type") == "unavailable", timeout=10
            )
            third = await companion_of_alice(backend, "sc3")
            await third.__aexit__()
            await again.send(
                f'<presence xmlns="{CLIENT}" to="{ROOM}/sc9"><x xmlns="http://jabber.org/protocol/muc"/></presence>'
            )
            assert await closed_with(again) == "not-authorized"
        finally:
            await again.__aexit__()


async def test_a_companion_that_tries_to_subscribe_or_speak_is_refused(backend: Backend, join: Join) -> None:
    await join("bob")
    async with owner(backend) as alice:
        _, offer = await received(alice, "session-initiate")
        companion = await companion_of_alice(backend)
        try:
            _, companion_offer = await received(companion, "session-initiate")
            assert offer.transport is not None and companion_offer.transport is not None
            async with (
                aiohttp.ClientSession() as http,
                http.ws_connect(_channel_url(backend, offer.transport.websocket)) as alice_channel,
                http.ws_connect(
                    _channel_url(backend, companion_offer.transport.websocket), autoping=False
                ) as channel,
            ):
                assert (await channel.receive_json(timeout=10))["colibriClass"] == "ServerHello"
                asked = {"colibriClass": "ReceiverVideoConstraints", "defaultConstraints": {"maxHeight": 720}}
                await channel.send_json(asked)
                await channel.send_json({"colibriClass": "EndpointMessage", "to": "", "msgPayload": {"x": 1}})
                await channel.send_json(
                    {"colibriClass": "EndpointMessage", "to": OWNER, "msgPayload": {"x": 2}}
                )
                await alice_channel.send_json(
                    {"colibriClass": "EndpointMessage", "to": "", "msgPayload": {"y": 3}}
                )
                # The bridge has read the companion's messages once it answers its ping; anything
                # it had relayed to Alice would then be queued before the sources Carol brings.
                await channel.ping()
                assert (await channel.receive(timeout=10)).type is aiohttp.WSMsgType.PONG
                carol = await join("carol")
                assert carol.client.session is not None and carol.client.session.me is not None
                carol_id = carol.client.session.me.participant_id
                alice_got = []
                while not any(
                    carol_id in str(m) for m in alice_got if m["colibriClass"] == "ForwardedSources"
                ):
                    alice_got.append(await alice_channel.receive_json(timeout=15))
                assert not [m for m in alice_got if m["colibriClass"] == "EndpointMessage"], alice_got
                # Nor does the companion get anything: Alice's broadcast, Carol's sources.
                with pytest.raises(TimeoutError):
                    await channel.receive(timeout=1.0)
            assert backend.xmpp is not None and backend.xmpp.focus is not None
            endpoint = backend.xmpp.focus.endpoint("s1", "sc1")
            assert endpoint is not None and not endpoint.remote and endpoint.constraints.default is None
            # A word to the room, or to Alice directly, closes the companion.
            await companion.send(
                f'<message xmlns="{CLIENT}" to="{ROOM}" type="groupchat"><body>hi</body></message>'
            )
            assert await closed_with(companion) == "not-authorized"
        finally:
            await companion.__aexit__()
        prober = await companion_of_alice(backend)
        try:
            await prober.send(
                f'<iq xmlns="{CLIENT}" id="p1" type="get" to="{ROOM}/{OWNER}"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>'
            )
            assert await closed_with(prober) == "not-authorized"
        finally:
            await prober.__aexit__()
        assert members(backend) == ["alice", "bob", "carol"]  # the call carries on
        assert not [e for e in alice.received if local(e.tag) == "error"]


async def test_a_companion_whose_owner_does_not_share_is_closed(backend: Backend) -> None:
    async with owner(backend):
        # Its share names someone else: closed at once.
        async with JitsiClient(backend.url, None) as liar:
            await liar.conference(ROOM, MACHINE)
            await share(liar, "sc1", names=None, joining=True)
            await liar.send(
                f'<presence xmlns="{CLIENT}" to="{ROOM}/sc1"><SCREEN_SHARING_STARTED>'
                + json.dumps({"userId": "someone-else"})
                + "</SCREEN_SHARING_STARTED></presence>"
            )
            assert await closed_with(liar) == "not-authorized"
        # It never names its owner: closed at the deadline (10 s).
        async with JitsiClient(backend.url, None) as idle:
            await idle.conference(ROOM, MACHINE)
            await share(idle, "sc2", names=None, joining=True)
            assert await closed_with(idle) == "not-authorized"
        assert members(backend) == ["alice"]


async def test_a_companion_goes_with_its_owner(backend: Backend) -> None:
    async with owner(backend) as alice:
        companion = await companion_of_alice(backend)
        try:
            await alice.leave(ROOM, OWNER)
            assert await closed_with(companion) == "not-authorized"
        finally:
            await companion.__aexit__()


def _channel_url(served: Backend, websocket: str) -> str:
    path = websocket.split("/", 3)[3]  # wss://<host>/<path>: the same routes on the backend's URL
    return f"{served.url.rstrip('/')}/{path}"
