"""Bad tokens, bad settings, bad messages: precise errors, and nobody else is harmed (§G, §H)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import jwt
import pytest
from aiortc import RTCPeerConnection, RTCRtpSender

from simulator.media.peer import close_peer_connection, open_peer_connection
from simulator.sdk import (
    CallAppSettingsBuilder,
    CallsClient,
    CallSettingsBuilder,
    CallView,
    CometChatCallsException,
)
from simulator.sdk.recorder import EventRecorder
from simulator.server import Backend
from tests.conftest import Join

pytestmark = pytest.mark.e2e


async def _client(backend: Backend) -> CallsClient:
    client = CallsClient()
    await client.init(
        CallAppSettingsBuilder().set_app_id("callsim").set_region("us").set_host(backend.url).build()
    )
    return client


async def test_before_init_both_refuse_k23() -> None:
    async with CallsClient() as client:
        for call in (
            client.generate_token("s", "t"),
            client.start_session("x", CallSettingsBuilder().build(), CallView()),
        ):
            with pytest.raises(CometChatCallsException) as caught:
                await call
            assert (caught.value.code, caught.value.message) == (
                "INVALID_CALL_APP_SETTINGS",
                "appSettings must be an instance of CallAppSettings class",
            )


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda b: b.set_app_id("").set_region("us"), "Invalid app id, please check your appSettings"),
        (lambda b: b.set_app_id("a").set_region("mars"), "Invalid region, please check your appSettings"),
        (
            lambda b: b.set_app_id("a").set_region("EU").set_host(5),
            "Invalid host, please check your appSettings",
        ),
    ],
)
async def test_init_validation(build, message: str) -> None:  # type: ignore[no-untyped-def]
    async with CallsClient() as client:
        with pytest.raises(CometChatCallsException) as caught:
            await client.init(build(CallAppSettingsBuilder()).build())
        assert (caught.value.code, caught.value.message) == ("INVALID_CALL_APP_SETTINGS", message)


async def test_generate_token_argument_checks(backend: Backend) -> None:
    async with await _client(backend) as client:
        with pytest.raises(CometChatCallsException) as caught:
            await client.generate_token("s1", 42)
        assert caught.value.message.startswith("Argument authToken is missing or invalid")
        with pytest.raises(CometChatCallsException) as caught:
            await client.generate_token(None, "token")
        assert caught.value.message.startswith("Argument sessionID is missing or invalid")
        with pytest.raises(CometChatCallsException) as caught:
            await client.generate_token("s1", "no-such-token")
        assert caught.value.code == "AUTH_ERR_AUTH_TOKEN_NOT_FOUND"
        auth = backend.provision_user("zed", "Zed")
        with pytest.raises(CometChatCallsException) as caught:
            await client.generate_token("", auth)  # K24: empty strings are refused by the server
        assert caught.value.code == "INVALID_ARGUMENT_EXCEPTION"


async def test_bad_settings_reject_start_session_and_nothing_starts(backend: Backend) -> None:
    async with await _client(backend) as client:
        view = CallView()
        with pytest.raises(CometChatCallsException) as caught:
            await client.start_session("t", CallSettingsBuilder().show_mode_button("no").build(), view)  # type: ignore[arg-type]
        assert caught.value.message == "showModeButton method must be provided a boolean value."
        assert client.session is None and not view.mounted


async def _start_with_token(backend: Backend, token: str) -> tuple[CallsClient, EventRecorder]:
    client = await _client(backend)
    recorder = EventRecorder()
    await client.start_session(
        token, CallSettingsBuilder().set_call_listener(recorder.listener()).build(), CallView()
    )
    await recorder.wait_for("on_error")
    await client.wait_closed()
    return client, recorder


async def test_a_token_without_session_id_reaches_on_error(backend: Backend) -> None:
    for token in ("garbage", jwt.encode({"data": {}}, "k" * 32, algorithm="HS256")):
        client, recorder = await _start_with_token(backend, token)
        error = recorder.of("on_error")[0][0]
        assert (error.code, error.message) == (
            "INVALID_ARGUMENT_EXCEPTION",
            "callToken must be valid please verify.",
        )
        await client.aclose()


async def test_forged_and_expired_tokens_reach_on_error_with_the_server_code(backend: Backend) -> None:
    user = backend.user(backend.provision_user("ann", "Ann").split("_")[0])
    assert user is not None
    forged = jwt.encode(
        {"data": {"sessionId": "s1", "user": {"uid": "ann"}}, "exp": 2**40}, "x" * 32, algorithm="HS256"
    )
    client, recorder = await _start_with_token(backend, forged)
    assert recorder.of("on_error")[0][0].code == "AUTH_ERR_TOKEN_INVALID_SIGNATURE"
    await client.aclose()
    old = Backend(wall_clock=lambda: 0.0)
    old.tokens._secret = backend.tokens._secret  # same secret, issued long ago
    client, recorder = await _start_with_token(backend, old.tokens.issue(user, "s1"))
    assert recorder.of("on_error")[0][0].code == "AUTH_ERR_TOKEN_EXPIRED"
    await client.aclose()
    await old.close()
    assert backend.rooms.participant_count("s1") == 0


async def test_a_second_session_is_refused_k22(join: Join) -> None:
    alice = await join("alice")
    token = await alice.client.generate_token("s2", alice.auth_token)
    with pytest.raises(CometChatCallsException) as caught:
        await alice.client.start_session(token.token, CallSettingsBuilder().build(), CallView())
    assert caught.value.code == "SESSION_ALREADY_ACTIVE"


async def test_in_call_methods_are_silent_no_ops_without_a_session_k3() -> None:
    async with CallsClient() as client:
        client.mute_audio(True)
        client.pause_video(True)
        client.start_screen_share()
        client.stop_screen_share()
        client.set_mode("SPOTLIGHT")
        client.switch_camera()
        client.switch_to_video_call()
        client.set_audio_input_device("nope")
        client.end_session()
        assert client.get_audio_input_devices() == []  # §I: [] before any session


# --- the REST surface, in the JavaScript SDK's shapes -----------------------------------------


async def test_rest_shapes_and_errors(backend: Backend) -> None:
    auth = backend.provision_user("alice", "Alice")
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{backend.url}call_tokens",
            headers={"authToken": auth, "X-Unknown": "1"},
            json={"sessionId": "s1"},
        ) as r:
            body = await r.json()
            assert r.status == 200 and set(body["data"]) >= {"token", "sessionId"}
        token = body["data"]["token"]
        async with http.get(f"{backend.url}call_tokens", headers={"callToken": token}) as r:
            answer = (await r.json())["data"]
        # Exactly the keys the published bundle reads (docs/jitsi.md): session, deployment, user.
        assert set(answer) == {"payload", "settings"}
        data = answer["payload"]["data"]
        assert (data["sessionId"], data["region"], data["appId"]) == ("s1", "us", backend.app_id)
        assert data["user"] == {"uid": "alice", "name": "Alice", "avatar": "", "resource": "WEB-alice"}
        assert answer["settings"] == {
            "WEBRTC_HOST": "callsim.test", "ANALYTICS_HOST": "callsim.test", "ANALYTICS_VERSION": "v1",
            "PRESENTER_MODE_ENABLED": False,
        }  # fmt: skip
        async with http.post(
            f"{backend.url}v1/calls/ping",
            headers={"appId": "callsim", "authorization": f"Beare {token}"},
            json={"uts": 1, "sessionId": "s1", "type": "video"},
        ) as r:
            assert r.status == 200
        assert list(backend.analytics) == [
            {"appId": "callsim", "body": {"uts": 1, "sessionId": "s1", "type": "video"}}
        ]
        async with http.get(
            f"{backend.url}call_tokens", headers={"callToken": token}, params={"sessionId": "s2"}
        ) as r:
            assert (await r.json())["error"]["code"] == "AUTH_ERR_TOKEN_SESSION_MISMATCH"
        async with http.post(
            f"{backend.url}call_tokens", headers={"authToken": "nope"}, json={"sessionId": "s1"}
        ) as r:
            assert r.status == 401 and (await r.json())["error"]["code"] == "AUTH_ERR_AUTH_TOKEN_NOT_FOUND"
        async with http.post(
            f"{backend.url}call_tokens", headers={"authToken": auth}, data=b"{not json"
        ) as r:
            assert (await r.json())["error"]["code"] == "ERR_BAD_REQUEST"
        deep = b'{"sessionId": "s1", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        async with http.post(f"{backend.url}call_tokens", headers={"authToken": auth}, data=deep) as r:
            assert r.status == 400 and (await r.json())["error"]["code"] == "ERR_BAD_REQUEST"
        async with http.post(f"{backend.url}users", json={"uid": "x", "name": "X"}) as r:
            assert (await r.json())["error"]["code"] == "AUTH_ERR_APIKEY_NOT_FOUND"
        async with http.post(
            f"{backend.url}users", headers={"apiKey": backend.api_key}, json={"uid": 3}
        ) as r:
            assert (await r.json())["error"]["code"] == "INVALID_ARGUMENT_EXCEPTION"
        async with http.get(f"{backend.url}nowhere") as r:
            assert r.status == 404 and "error" in await r.json()
        origin = "http://127.0.0.1:5173"
        async with http.options(
            f"{backend.url}call_tokens", headers={"Origin": origin, "Access-Control-Request-Method": "POST"}
        ) as r:
            assert r.status == 204 and r.headers["Access-Control-Allow-Origin"] == origin
            assert "authToken" in r.headers["Access-Control-Allow-Headers"]
        operator = {"apiKey": backend.api_key}
        async with http.get(
            f"{backend.url}sessions/s1", headers={"Origin": "http://evil.example", **operator}
        ) as r:
            assert "Access-Control-Allow-Origin" not in r.headers
            assert (await r.json())["data"]["participantCount"] == 0
        async with http.get(f"{backend.url}sessions/s1") as r:  # who is in a session: not public
            assert r.status == 401 and (await r.json())["error"]["code"] == "AUTH_ERR_APIKEY_NOT_FOUND"


async def test_a_calls_details_are_its_parties_alone(backend: Backend) -> None:
    tokens = {uid: backend.provision_user(uid, uid.title()) for uid in ("alice", "bob", "eve")}
    alice = backend.store.get_user("alice")
    assert alice is not None
    call = backend.calls.create(alice, "bob", "user", "audio")
    async with aiohttp.ClientSession() as http:
        for uid, allowed in (("alice", True), ("bob", True), ("eve", False)):
            async with http.get(
                f"{backend.url}calls/{call.session_id}", headers={"authToken": tokens[uid]}
            ) as r:
                body = await r.json()
                if allowed:
                    assert r.status == 200 and body["data"][0]["sessionId"] == call.session_id
                else:
                    assert r.status == 403 and body["error"]["code"] == "ERR_CALL_NOT_A_PARTICIPANT"


@pytest.mark.parametrize("path", ["/ws", "/chat"])
async def test_sockets_refuse_pages_of_other_origins(backend: Backend, path: str) -> None:
    url = backend.url.rstrip("/").replace("http://", "ws://") + path
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(url, headers={"Origin": "http://evil.example"})
        assert refused.value.status == 403
        for origin in ({"Origin": "http://127.0.0.1:5173"}, {"Origin": "https://xmpp.callsim.test"}, {}):
            async with http.ws_connect(url, headers=origin) as ws:  # loopback, the SDK's page, no browser
                assert not ws.closed


async def test_a_restarted_backend_still_knows_users_and_tokens(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "callsim.db"
    async with Backend(db=db) as first:
        auth = first.provision_user("alice", "Alice")
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{first.url}call_tokens", headers={"authToken": auth}, json={"sessionId": "s1"}) as r,
        ):
            token = (await r.json())["data"]["token"]
    async with Backend(db=db) as second:
        assert second.tokens.verify(token).user.uid == "alice"
        assert second.store.user_for_auth_token(auth) is not None
        # The secret and the auth tokens are in these files: readable by their owner alone.
        for path in (db, tmp_path / "callsim.db-wal"):
            assert path.stat().st_mode & 0o777 == 0o600, path


async def test_a_restart_closes_the_calls_and_presence_a_crash_left_open(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # The rule: a new process has nothing live, so at start every ongoing call ends, every
    # ringing call was not answered, and everyone still "in" a session left it.
    db = tmp_path / "callsim.db"
    async with Backend(db=db, wall_clock=lambda: 1000.0) as first:
        for uid in ("alice", "bob", "carol"):
            first.provision_user(uid, uid.title())
        alice = first.store.get_user("alice")
        assert alice is not None
        ongoing = first.calls.create(alice, "bob", "user", "audio")
        first.calls.update(first.store.get_user("bob"), ongoing.session_id, "ongoing")  # type: ignore[arg-type]
        first.calls.participant_joined(ongoing.session_id, "alice")
        ringing = first.calls.create(alice, "carol", "user", "video")
    # (the first backend's clean close is no different from a crash for these records)
    async with Backend(db=db, wall_clock=lambda: 2000.0) as second:
        details = second.calls.details(ongoing.session_id, "alice")
        assert (details["status"], details["endedAt"]) == ("ended", 2000.0)
        assert details["participants"] == [
            {"uid": "alice", "name": "Alice", "joinedAt": 1000.0, "leftAt": 2000.0}
        ]
        assert second.calls.details(ringing.session_id, "alice")["status"] == "unanswered"
    async with Backend(db=db, wall_clock=lambda: 3000.0) as third:
        assert third.calls.details(ongoing.session_id, "alice")["endedAt"] == 2000.0  # closed once, not again


# --- the signalling socket ----------------------------------------------------------------------


async def test_malformed_messages_get_errors_and_harm_no_one(join: Join, backend: Backend) -> None:
    alice = await join("alice")
    bob = await join("bob")
    await alice.evidence.wait_for(lambda: "bob" in alice.evidence.heard(), 20)
    async with aiohttp.ClientSession() as http, http.ws_connect(backend.ws_url) as ws:

        async def reply(payload: str | bytes) -> dict[str, object]:
            await (ws.send_bytes(payload) if isinstance(payload, bytes) else ws.send_str(payload))
            return json.loads((await ws.receive(timeout=10)).data)  # type: ignore[no-any-return]

        assert (await reply("{nope"))["code"] == "ERR_MESSAGE_INVALID"
        assert (await reply(b"\x00\x01"))["code"] == "ERR_MESSAGE_INVALID"
        assert (await reply(json.dumps({"type": "state", "audioMuted": True})))["code"] == "ERR_NOT_JOINED"
        deep = '{"type": "leave", "x": ' + "[" * 1000 + "]" * 1000 + "}"
        assert (await reply(deep))["message"] == "nested too deeply"  # and the socket stays open
        assert (await reply(json.dumps({"type": "publish", "sdp": "x" * 300_000})))[
            "code"
        ] == "ERR_MESSAGE_INVALID"
        answer = await reply(json.dumps({"type": "join", "token": "forged.token.here", "sessionId": "s1"}))
        assert answer["code"] == "AUTH_ERR_TOKEN_MALFORMED" and answer["fatal"] is True
    # A joined participant sending nonsense gets an error, stays in the call, and the
    # others' media and events carry on.
    mallory_auth = backend.provision_user("mallory", "Mallory")
    token = backend.tokens.issue(backend.store.user_for_auth_token(mallory_auth), "s1")  # type: ignore[arg-type]
    async with aiohttp.ClientSession() as http, http.ws_connect(backend.ws_url) as ws:
        await ws.send_str(json.dumps({"type": "join", "token": token, "sessionId": "s1"}))
        assert json.loads((await ws.receive(timeout=10)).data)["type"] == "joined"
        await alice.recorder.wait_for("on_user_joined", 2)
        for junk in (
            "[1, 2]",
            '{"type": "subscribe-answer", "sdp": "v=0 junk"}',
            '{"type": "publish", "sdp": "junk"}',
        ):
            await ws.send_str(junk)
            message = json.loads((await ws.receive(timeout=10)).data)
            assert message["type"] == "error" and message["code"] in (
                "ERR_MESSAGE_INVALID",
                "ERR_NEGOTIATION_FAILED",
            )
        assert backend.rooms.participant_count("s1") == 3
        alice.client.mute_audio(True)
        await bob.evidence.wait_for(lambda: "alice" not in bob.evidence.heard(), 20)
    await alice.recorder.wait_for("on_user_left")
    assert backend.rooms.participant_count("s1") == 2
    assert bob.recorder.of("on_error") == []


async def test_losing_the_backend_mid_call_is_told_never_silent(join: Join, backend: Backend) -> None:
    alice = await join("alice", media=False)
    bob = await join("bob", media=False)
    await backend.close()  # the backend goes away under a call in progress
    for participant in (alice, bob):
        (error,) = await participant.recorder.wait_for("on_error")
        assert error.code == "UNKNOWN_API_ERROR"
        assert "the connection to the call ended" in error.message
        session = participant.client.session
        if session is not None:
            async with asyncio.timeout(10):
                await session.closed.wait()
    assert alice.recorder.of("on_call_ended") == []  # K4: only the one left alone gets it


async def test_leaving_normally_is_no_error(join: Join) -> None:
    alice = await join("alice", media=False)
    bob = await join("bob", media=False)
    alice.client.end_session()
    await bob.recorder.wait_for("on_user_left")
    session = alice.client.session
    if session is not None:
        async with asyncio.timeout(10):
            await session.closed.wait()
    assert alice.recorder.of("on_error") == [] and bob.recorder.of("on_error") == []


async def _offer(*, video: str) -> tuple[RTCPeerConnection, str]:
    """A publish offer in the protocol's shape (mic, camera, screen), its video in ``video``."""
    pc = open_peer_connection()
    capabilities = RTCRtpSender.getCapabilities("video")
    assert capabilities is not None
    codecs = [c for c in capabilities.codecs if c.mimeType.lower() in (f"video/{video}", "video/rtx")]
    for kind in ("audio", "video", "video"):
        transceiver = pc.addTransceiver(kind, direction="sendonly")
        if kind == "video":
            transceiver.setCodecPreferences(codecs)
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


async def test_a_refused_publish_leaves_nothing_behind_and_can_be_sent_again(backend: Backend) -> None:
    user = backend.store.user_for_auth_token(backend.provision_user("pat", "Pat"))
    assert user is not None
    h264, h264_sdp = await _offer(video="h264")
    vp8, vp8_sdp = await _offer(video="vp8")
    try:
        async with aiohttp.ClientSession() as http, http.ws_connect(backend.ws_url) as ws:
            await ws.send_str(
                json.dumps({"type": "join", "token": backend.tokens.issue(user, "s1"), "sessionId": "s1"})
            )
            assert json.loads((await ws.receive(timeout=10)).data)["type"] == "joined"

            async def publish(sdp: str) -> dict[str, Any]:
                await ws.send_str(json.dumps({"type": "publish", "sdp": sdp}))
                return json.loads((await ws.receive(timeout=20)).data)  # type: ignore[no-any-return]

            junk = await publish("v=0 junk")
            assert (junk["type"], junk["code"]) == ("error", "ERR_NEGOTIATION_FAILED")
            # A codec the SFU cannot forward is refused, never accepted into silence.
            refused = await publish(h264_sdp)
            assert refused["message"] == "publish offer refused: no video codec the SFU forwards (VP8)"
            (participant,) = list(backend.rooms.get("s1") or [])
            assert participant.sfu is not None and participant.sfu.forwarders == {}
            accepted = await publish(vp8_sdp)  # the same socket, corrected: accepted
            assert accepted["type"] == "publish-answer" and "VP8" in accepted["sdp"]
            assert "H264" not in accepted["sdp"]
            assert set(participant.sfu.forwarders) == {"mic", "camera", "screen"}
    finally:
        for pc in (h264, vp8):
            await close_peer_connection(pc)
