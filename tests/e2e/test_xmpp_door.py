"""The XMPP door on a real Prosody: the call token gates it, and the focus makes one room of
a session whether its members came natively or as the published SDK does (lib-jitsi-meet's
stanzas, sent by :class:`JitsiClient`)."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import AsyncIterator

import jwt
import pytest

from simulator.protocol import ParticipantRecord
from simulator.sdk.jitsi.xmpp import JitsiClient, XmppRefusedError, attributes, child, local, text
from simulator.server import Backend
from tests.conftest import Join

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        shutil.which("prosody") is None and os.environ.get("CALLSIM_REQUIRE_XMPP") != "1",
        reason="needs Prosody (apt-get install prosody; tox installs it)",
    ),
]

ROOM = "s1@conference.callsim.test"


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    """The backend with its XMPP door open (Prosody and the focus as children)."""
    async with Backend(xmpp=True) as b:
        yield b


def call_token(backend: Backend, uid: str, session: str) -> str:
    auth = backend.provision_user(uid, uid.title())
    user = backend.store.user_for_auth_token(auth)
    assert user is not None
    return backend.tokens.issue(user, session)


def member(nick: str, uid: str, name: str, *, audio_muted: bool = False) -> ParticipantRecord:
    """What an occupant says of itself in its presence."""
    return ParticipantRecord(nick, uid, name, "", 0, audio_muted=audio_muted)


def presence_of(client: JitsiClient, nick: str, *, available: bool = True):  # type: ignore[no-untyped-def]
    def match(element):  # type: ignore[no-untyped-def]
        if local(element.tag) != "presence" or element.get("from") != f"{ROOM}/{nick}":
            return False
        return (element.get("type") != "unavailable") == available

    return match


async def test_one_session_is_one_room_across_both_doors(backend: Backend, join: Join) -> None:
    bob = await join("bob", media=False)
    async with JitsiClient(backend.url, call_token(backend, "alice", "s1")) as alice:
        answer = await alice.conference(ROOM)
        assert (answer.get("ready"), answer.get("focusjid")) == ("true", "focus@focus.callsim.test")
        own = await alice.join(ROOM, member("a1b2c3d4", "alice", "Alice"))
        assert own.get("type") != "error"

        # The native participant is an occupant with what the SDK reads to list it.
        assert bob.client.session is not None and bob.client.session.me is not None
        bob_id = bob.client.session.me.participant_id
        shown = await alice.wait(presence_of(alice, bob_id))
        assert attributes(shown, "user_object")["uid"] == "bob"
        assert attributes(shown, "user_object")["name"] == "Bob"
        assert text(shown, "stats-id") == "bob"  # onUserLeft needs it
        assert "xmlns" not in attributes(shown, "user_object")

        # The XMPP occupant is a room member for the native side.
        joined = await bob.recorder.wait_for("on_user_joined")
        assert (joined[0].uid, joined[0].name) == ("alice", "Alice")
        listed = await bob.recorder.wait_for("on_user_list_updated")
        assert {u.uid for u in listed[0]} == {"bob", "alice"}

        # A mute crosses as state: the SDK's contract fires no onUserMuted for someone's own mute.
        await alice.presence(ROOM, member("a1b2c3d4", "alice", "Alice", audio_muted=True))
        async with asyncio.timeout(10):
            while not bob.client.session.participants["a1b2c3d4"].audio_muted:  # noqa: ASYNC110
                await asyncio.sleep(0.05)  # participant-state has no callback (the contract fires none)
        bob.client.mute_audio(True)
        muted = await alice.wait(lambda e: presence_of(alice, bob_id)(e) and text(e, "audiomuted") == "true")
        assert '"muted": true' in (text(muted, "SourceInfo") or "")
        assert bob.recorder.of("on_user_muted") == []

        # A native leave reaches the SDK as the occupant leaving.
        bob.client.end_session()
        await alice.wait(presence_of(alice, bob_id, available=False))


async def test_a_conference_outside_the_muc_is_refused(backend: Backend) -> None:
    async with JitsiClient(backend.url, call_token(backend, "alice", "s1")) as alice:
        with pytest.raises(XmppRefusedError) as refused:
            await alice.conference("s1@elsewhere.example")
        assert refused.value.condition == "bad-request"
    assert backend.rooms.get("s1") is None


async def test_asking_for_a_conference_makes_no_room_until_someone_joins(
    backend: Backend, join: Join
) -> None:
    async with JitsiClient(backend.url, call_token(backend, "alice", "s1")) as alice:
        await alice.conference(ROOM)
        assert backend.rooms.get("s1") is None  # nothing to leak if the client never joins
        bob = await join("bob", media=False)  # a native joining later is shown in the MUC
        assert bob.client.session is not None and bob.client.session.me is not None
        await alice.join(ROOM, member("a1b2c3d4", "alice", "Alice"))
        await alice.wait(presence_of(alice, bob.client.session.me.participant_id))
        await bob.recorder.wait_for("on_user_joined")


async def test_an_xmpp_leave_reaches_the_natives_and_ends_their_call(backend: Backend, join: Join) -> None:
    bob = await join("bob", media=False)
    async with JitsiClient(backend.url, call_token(backend, "alice", "s1")) as alice:
        await alice.conference(ROOM)
        await alice.join(ROOM, member("a1b2c3d4", "alice", "Alice"))
        await bob.recorder.wait_for("on_user_joined")
        await alice.leave(ROOM, "a1b2c3d4")
        left = await bob.recorder.wait_for("on_user_left")
        assert left[0].uid == "alice"
        await bob.recorder.wait_for("on_call_ended")
    room = backend.rooms.get("s1")
    assert room is not None and [p.record.uid for p in room] == ["bob"]


async def test_a_closed_socket_is_a_leave_too(backend: Backend, join: Join) -> None:
    bob = await join("bob", media=False)
    async with JitsiClient(backend.url, call_token(backend, "alice", "s1")) as alice:
        await alice.conference(ROOM)
        await alice.join(ROOM, member("a1b2c3d4", "alice", "Alice"))
        await bob.recorder.wait_for("on_user_joined")
    # No unavailable sent: Prosody notices the socket closing and the MUC says the occupant left.
    left = await bob.recorder.wait_for("on_user_left")
    assert left[0].uid == "alice"


def _forged(backend: Backend, **changes: object) -> str:
    now = int(time.time())
    user = {"uid": "mallory", "name": "M"}
    payload = {
        "data": {"appId": "callsim", "region": "us", "user": user, "sessionId": "s1"},
        "iat": now, "exp": now + 600,
    }  # fmt: skip
    payload.update(changes)
    return jwt.encode(payload, backend.store.secret(), algorithm="HS256")


@pytest.mark.parametrize(
    "token",
    ["forged", "expired", "no-session", "absent", "garbage"],
)
async def test_a_bad_call_token_cannot_open_the_door(backend: Backend, token: str) -> None:
    tokens: dict[str, str | None] = {
        "forged": jwt.encode(
            {"data": {"sessionId": "s1"}, "exp": int(time.time()) + 600},
            "a 32-byte key that is not the backend's secret",
        ),
        "expired": _forged(backend, exp=int(time.time()) - 5),
        "no-session": _forged(backend, data={"appId": "callsim"}),
        "absent": None,
        "garbage": "not.a.jwt",
    }

    async def try_to_join() -> None:
        async with JitsiClient(backend.url, tokens[token]) as mallory:
            await mallory.conference(ROOM)
            await mallory.join(ROOM, member("m1", "mallory", "Mallory"))

    with pytest.raises(XmppRefusedError) as refused:
        await try_to_join()
    assert refused.value.condition == "not-authorized"
    assert backend.rooms.get("s1") is None


async def test_a_token_joins_its_own_session_only(backend: Backend, join: Join) -> None:
    await join("bob", media=False)
    async with JitsiClient(backend.url, call_token(backend, "mallory", "s2")) as mallory:
        answer = await mallory.join(ROOM, member("m1", "mallory", "Mallory"))
        assert answer.get("type") == "error"
        error = child(answer, "error")
        assert error is not None and local(error[0].tag) == "forbidden"
    room = backend.rooms.get("s1")
    assert room is not None and [p.record.uid for p in room] == ["bob"]
