"""Fuzzing a live backend: every REST endpoint and every socket message type, with
hypothesis. Whatever arrives, the answer has the API's shape (never a 500, never a crash or a
silent close), and a witness in another session is untouched.

Bounded by the hypothesis profile (ci: 100 examples a test, derandomised); ``HYPOTHESIS_PROFILE=
nightly`` digs deeper. The backend lives across examples on a loop of this module's own, so an
example costs a request, not a backend.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator import protocol
from simulator.server import Backend
from simulator.server.admission import Limits

pytestmark = pytest.mark.e2e

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
ROUTES = [
    ("POST", "/users"), ("POST", "/users/{x}/auth_tokens"), ("GET", "/users/{x}"), ("POST", "/call_tokens"),
    ("GET", "/call_tokens"), ("POST", "/v1/calls/ping"), ("GET", "/sessions/{x}"), ("POST", "/groups"),
    ("POST", "/calls"), ("PUT", "/calls/{x}"), ("GET", "/calls/{x}"), ("GET", "/room_size"),
    ("GET", "/stats"), ("GET", "/nowhere"), ("DELETE", "/users"),
]  # fmt: skip
BODY_KEYS = [
    "uid",
    "name",
    "avatar",
    "sessionId",
    "guid",
    "members",
    "receiverId",
    "receiverType",
    "type",
    "status",
]
CLIENT_TYPES = ["join", "publish", "subscribe-answer", "state", "switch-to-video", "leave", "login", "nope"]
FIELDS = [
    "token",
    "sessionId",
    "sdp",
    "reason",
    "audioMuted",
    "videoMuted",
    "screenSharing",
    "state",
    "authToken",
]
WITNESS_SESSION = "witness"


@dataclass
class Live:
    """A backend on a loop of its own, a witness joined to its own session, tokens to use."""

    runner: asyncio.Runner
    backend: Backend
    http: aiohttp.ClientSession
    witness: aiohttp.ClientWebSocketResponse
    auth_token: str
    call_token: str
    examples: int = 0
    seen: dict[str, int] = field(default_factory=dict)

    def run(self, coro: Any) -> Any:
        return self.runner.run(coro)

    def check_witness(self) -> None:
        assert self.backend.rooms.participant_count(WITNESS_SESSION) == 1
        assert not self.witness.closed

    def settle(self, session: str | None = None) -> None:
        """Run the backend's loop until the example's sockets (and its session) are gone: the
        loop runs only inside :meth:`run`, so what the server closes after a reply closes here."""
        backend = self.backend

        async def quiet() -> None:
            async with asyncio.timeout(10):
                while (  # noqa: ASYNC110 - the backend has no event for "socket set empty"
                    len(backend.signalling.sockets) > 1  # the witness's stays
                    or backend.chat.sockets
                    or (session is not None and backend.rooms.participant_count(session))
                ):
                    await asyncio.sleep(0.01)

        self.run(quiet())


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    runner = asyncio.Runner()

    async def start() -> Live:
        # Fuzzing fails authentication on purpose, thousands of times: no throttle here.
        backend = Backend(limits=Limits(auth_failures_per_second=1e9, call_tokens_per_second=1e9))
        await backend.start()
        auth = backend.provision_user("witness", "Witness")
        user = backend.store.user_for_auth_token(auth)
        assert user is not None
        http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))  # no pooled sockets
        ws = await http.ws_connect(backend.ws_url)
        token = backend.tokens.issue(user, WITNESS_SESSION)
        await ws.send_str(json.dumps({"type": "join", "token": token, "sessionId": WITNESS_SESSION}))
        assert (await ws.receive_json(timeout=10))["type"] == "joined"
        return Live(runner, backend, http, ws, auth, backend.tokens.issue(user, "fuzz"))

    state = runner.run(start())
    yield state

    async def stop() -> None:
        await state.witness.close()
        await state.http.close()
        await state.backend.close()

    runner.run(stop())
    runner.close()


FUZZ = settings(
    deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


def _credential(good: str) -> st.SearchStrategy[str | None]:
    return st.one_of(st.none(), st.just(good), st.text(max_size=40))


@FUZZ
@given(
    route=st.sampled_from(ROUTES),
    param=st.text(min_size=1, max_size=20).filter(lambda s: "/" not in s and "?" not in s and "#" not in s),
    api_key=st.booleans(),
    auth=st.data(),
    body=st.one_of(
        st.none(), JSON, st.dictionaries(st.sampled_from(BODY_KEYS), JSON), st.binary(max_size=64)
    ),
    query=st.dictionaries(st.sampled_from(["room", "sessionId", "x"]), st.text(max_size=20), max_size=2),
)
def test_every_rest_endpoint_answers_fuzz_in_the_apis_shape(  # noqa: PLR0917 - hypothesis's arguments
    live: Live, route: tuple[str, str], param: str, api_key: bool, auth: st.DataObject, body: Any,
    query: dict[str, str],
) -> None:  # fmt: skip
    method, path = route
    headers = {"apiKey": live.backend.api_key} if api_key else {}
    for name, good in (("authToken", live.auth_token), ("callToken", live.call_token)):
        value = auth.draw(_credential(good))
        if value is not None and value.isprintable() and value.isascii():
            headers[name] = value

    async def request() -> tuple[int, Any]:
        data = body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
        url = live.backend.url.rstrip("/") + path.replace("{x}", param)
        async with live.http.request(method, url, headers=headers, data=data, params=query) as response:
            return response.status, await response.json(content_type=None)

    status, answer = live.run(request())
    assert status < 500, answer
    assert isinstance(answer, dict)
    if status < 300:
        assert "data" in answer or "participants" in answer
    else:
        error = answer["error"]
        assert isinstance(error["code"], str) and error["code"]
        assert isinstance(error["message"], str)
    live.check_witness()


def _message() -> st.SearchStrategy[str]:
    typed = st.builds(
        lambda kind, fields: json.dumps({"type": kind, **fields}),
        st.sampled_from(CLIENT_TYPES),
        st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=4),
    )
    return st.one_of(typed, JSON.map(json.dumps), st.text(max_size=60))


async def _replies_until_probe(ws: aiohttp.ClientWebSocketResponse) -> list[Any]:
    """Every reply up to the answer to a probe sent last (or to the server's close)."""
    probe = json.dumps({"type": "probe-sentinel"})
    replies: list[Any] = []
    if ws.closed:
        return replies
    await ws.send_str(probe)
    async with asyncio.timeout(10):
        async for raw in ws:
            assert raw.type is aiohttp.WSMsgType.TEXT, raw
            replies.append(raw.data)
            if "probe-sentinel" in raw.data:
                break
    return replies


@FUZZ
@given(joined=st.booleans(), messages=st.lists(_message(), min_size=1, max_size=6))
def test_the_signalling_socket_answers_fuzz_and_harms_no_one(
    live: Live, joined: bool, messages: list[str]
) -> None:
    live.examples += 1
    session = f"fuzz-{live.examples}"

    async def converse() -> list[Any]:
        async with live.http.ws_connect(live.backend.ws_url) as ws:
            if joined:
                user = live.backend.store.user_for_auth_token(live.auth_token)
                assert user is not None
                token = live.backend.tokens.issue(user, session)
                await ws.send_str(json.dumps({"type": "join", "token": token, "sessionId": session}))
                assert (await ws.receive_json(timeout=10))["type"] == "joined"
            for message in messages:
                await ws.send_str(message)
            return await _replies_until_probe(ws)

    replies = live.run(converse())
    decoded = [protocol.decode_server_message(r) for r in replies]  # every reply is a valid message
    ended = [
        m for m in decoded if isinstance(m, protocol.Left) or (isinstance(m, protocol.Error) and m.fatal)
    ]
    if not ended:  # a conversation the server did not end is still open: the probe was answered
        assert isinstance(decoded[-1], protocol.Error) and decoded[-1].code == "ERR_MESSAGE_INVALID"

    live.settle(session)  # whoever the fuzzer was has left its session, its socket is closed
    live.check_witness()


@FUZZ
@given(login=st.sampled_from(["good", "bad", "none"]), messages=st.lists(_message(), max_size=4))
def test_the_chat_socket_answers_every_message_of_fuzz(live: Live, login: str, messages: list[str]) -> None:
    if login != "none":
        token = live.auth_token if login == "good" else "wrong"
        messages = [json.dumps({"type": "login", "authToken": token}), *messages]

    async def converse() -> list[Any]:
        # The chat socket answers each message once (logged in, an error, or a fatal error
        # and the close), so every reply can be waited for.
        replies: list[Any] = []
        async with live.http.ws_connect(live.backend.url + "chat") as ws:
            for message in messages:
                await ws.send_str(message)
            async with asyncio.timeout(10):
                while len(replies) < len(messages):
                    raw = await ws.receive()
                    if raw.type is not aiohttp.WSMsgType.TEXT:
                        break
                    replies.append(protocol.decode_chat_server_message(raw.data))
        return replies

    replies = live.run(converse())
    live.settle()
    fatal = [r for r in replies if isinstance(r, protocol.Error) and r.fatal]
    assert len(replies) == len(messages) or (
        fatal and replies[-1] is fatal[0]
    )  # answered, or ended with a word
    live.check_witness()
