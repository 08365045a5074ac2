"""``ChatClient``: the Chat SDK's ringing-flow calls for one logged-in user (contract §F).

Per user: ``login`` opens the call socket; ``initiate_call`` / ``accept_call`` /
``reject_call`` / ``end_call`` change a call on the backend; incoming call messages are
dispatched to ``CallListener``s by §F.4's table. The ringing timer runs on the
injected clock: no answer within the timeout makes the call ``unanswered`` (§F.3).
"""

from __future__ import annotations

import json
import logging
import math
from types import TracebackType
from typing import Any, Self

import aiohttp

from simulator import protocol
from simulator.chat.call import Call, User
from simulator.chat.constants import DEFAULT_TIMEOUT
from simulator.chat.errors import CometChatException, call_error
from simulator.chat.listeners import CallListenerName
from simulator.clock import Clock, SystemClock, Timer
from simulator.http import HttpSession
from simulator.sdk.app_settings import CallAppSettings, validate_app_settings
from simulator.sdk.listeners import ListenerRegistry
from simulator.sdk.settings import is_falsy
from simulator.tasks import TaskSet

__all__ = ["ChatClient", "normalise_timeout"]

logger = logging.getLogger(__name__)

REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=15)


def normalise_timeout(timeout: object) -> int:
    """K31: None, non-numbers and values ≤ 0 mean 45; fractions are floored."""
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not math.isfinite(timeout):
        return DEFAULT_TIMEOUT
    seconds = math.floor(timeout)
    return seconds if seconds > 0 else DEFAULT_TIMEOUT


class ChatClient:
    """The Chat SDK's call part for one user. ``async with ChatClient() as chat: …``."""

    def __init__(
        self,
        *,
        name: str | None = None,
        clock: Clock | None = None,
        http: aiohttp.ClientSession | None = None,
    ) -> None:
        self.name = name or "chat"
        self.clock: Clock = clock or SystemClock()
        self.app_settings: CallAppSettings | None = None
        self.registry = ListenerRegistry.as_passed()  # §D.12: kept as passed, never cleared
        self._user: User | None = None
        self._active: Call | None = None
        self._ringing: Timer | None = None
        self._http = HttpSession(http)
        self._tasks = TaskSet(f"chat:{self.name}")
        self._socket: aiohttp.ClientWebSocketResponse | None = None
        self._closed = False

    # --- plumbing ---------------------------------------------------------------------------

    @property
    def http(self) -> aiohttp.ClientSession:
        return self._http.session

    @property
    def host(self) -> str:
        if self.app_settings is None:
            raise call_error("NOT_INITIALIZED")
        return self.app_settings.base_url()

    def _require_user(self) -> User:
        if self.app_settings is None:
            raise call_error("NOT_INITIALIZED")
        if self._user is None or self._user.auth_token is None:
            raise call_error("NOT_LOGGED_IN")
        return self._user

    async def _request(self, method: str, path: str, body: object = None, **headers: str) -> Any:
        """One REST call; the backend's ``{"error"}`` becomes a :class:`CometChatException`."""
        try:
            async with self.http.request(
                method, f"{self.host}{path}", json=body, headers=headers, timeout=REQUEST_TIMEOUT
            ) as response:
                payload = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError):
            raise call_error("FAILED_TO_FETCH") from None
        if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
            error = payload["error"]
            raise CometChatException(str(error.get("code")), str(error.get("message")))
        return payload

    async def _change(self, session_id: str, status: str) -> Call:
        user = self._require_user()
        assert user.auth_token is not None
        payload = await self._request(
            "PUT", f"calls/{session_id}", {"status": status}, authToken=user.auth_token
        )
        return Call.from_entity(protocol.decode_call(payload["data"]))

    # --- setup --------------------------------------------------------------------------------

    async def init(self, app_settings: CallAppSettings) -> None:
        """App id, region and the backend's host."""
        self.app_settings = validate_app_settings(app_settings)

    async def login(self, uid: str, auth_key: str) -> User:
        """Log ``uid`` in with the app's auth key and open its call socket."""
        if self.app_settings is None:
            raise call_error("NOT_INITIALIZED")
        payload = await self._request("POST", f"users/{uid}/auth_tokens", apiKey=auth_key)
        return await self.login_with_auth_token(payload["data"]["authToken"])

    async def login_with_auth_token(self, auth_token: str) -> User:
        """Log in with an auth token the backend issued; returns the logged-in user."""
        if self.app_settings is None:
            raise call_error("NOT_INITIALIZED")
        socket = await self.http.ws_connect(
            f"{self.host.replace('http', 'ws', 1)}chat", heartbeat=protocol.HEARTBEAT
        )
        await socket.send_str(protocol.encode(protocol.ChatLogin(auth_token=auth_token)))
        reply = protocol.decode_chat_server_message((await socket.receive(timeout=15)).data)
        if not isinstance(reply, protocol.ChatLoggedIn):
            await socket.close()
            code, message = (reply.code, reply.message) if isinstance(reply, protocol.Error) else ("", "")
            raise CometChatException(code or "AUTH_ERR_AUTH_TOKEN_NOT_FOUND", message or "login refused")
        self._socket = socket
        record = await self._user_record(reply.uid, auth_token)
        self._user = record
        self._tasks.spawn(self._receive(socket), "call-socket")
        return record

    async def _user_record(self, uid: str, auth_token: str) -> User:
        payload = await self._request("GET", f"users/{uid}", authToken=auth_token)
        data = payload["data"]
        return User(uid, data.get("name", ""), data.get("avatar", ""), auth_token)

    def get_logged_in_user(self) -> User | None:
        return self._user

    # --- incoming call messages (§F.4) --------------------------------------------------------

    async def _receive(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        async for raw in socket:
            if raw.type is not aiohttp.WSMsgType.TEXT:
                break
            try:
                message = protocol.decode_chat_server_message(raw.data)
            except protocol.ProtocolError as exc:
                logger.warning("%s: bad message on the call socket: %s", self.name, exc)
                continue
            if isinstance(message, protocol.CallMessage):
                self._on_call_message(Call.from_entity(message.call))

    def _emit(self, callback: CallListenerName, call: Call) -> None:
        self.registry.dispatch(callback, call)

    def _end_matching(self, call: Call) -> None:
        if self._active is not None and self._active.session_id == call.session_id:
            self.clear_active_call()

    def _stop_ringing(self, call: Call) -> None:
        if self._active is not None and self._active.session_id == call.session_id and self._ringing:
            self._ringing.cancel()
            self._ringing = None

    def _on_call_message(self, call: Call) -> None:
        me = self._user.uid if self._user else None
        group = call.receiver_type == "group"
        initiator = call.call_initiator is not None and call.call_initiator.uid == me
        match call.status:
            case "initiated":
                if not (group and initiator):
                    self._emit("on_incoming_call_received", call)
            case "ongoing":
                if not group or initiator:
                    self._stop_ringing(call)  # K30: group calls stop ringing on the first accept too
                    if self._active is not None and self._active.session_id == call.session_id:
                        self._active.status = call.status
                    self._emit("on_outgoing_call_accepted", call)
            case "rejected" | "busy":
                if not group:
                    self._end_matching(call)
                    self._emit("on_outgoing_call_rejected", call)
                elif initiator:
                    self._emit("on_outgoing_call_rejected", call)  # the group call goes on
            case "unanswered":
                if initiator:
                    self._emit("on_outgoing_call_rejected", call)
                else:
                    self._end_matching(call)
                    self._emit("on_incoming_call_cancelled", call)
            case "cancelled":
                self._emit("on_incoming_call_cancelled", call)
                self._end_matching(call)
            case "ended":
                self._emit("on_call_ended_message_received", call)
                self._end_matching(call)

    # --- the call methods (§F.3) -------------------------------------------------------------

    async def initiate_call(self, call: Call, timeout: object = None) -> Call:
        """Ring ``call``'s receiver; the returned call becomes the active call."""
        user = self._require_user()
        if self._active is not None:
            raise call_error("CALL_ALREADY_INITIATED")
        assert user.auth_token is not None
        payload = await self._request(
            "POST",
            "calls",
            {"receiverId": call.receiver_id, "receiverType": call.receiver_type, "type": call.type},
            authToken=user.auth_token,
        )
        created = Call.from_entity(protocol.decode_call(payload["data"]))
        self._active = created
        session_id = created.session_id
        assert session_id is not None
        self._ringing = self.clock.call_later(normalise_timeout(timeout), lambda: self._ring_out(session_id))
        return created

    def _ring_out(self, session_id: str) -> None:
        self._tasks.spawn(self._unanswered(session_id), "unanswered")

    async def _unanswered(self, session_id: str) -> None:
        """§F.3 ringing expiry: mark unanswered, tell the initiator, forget the call."""
        self._ringing = None
        active = self._active
        if active is None or active.session_id != session_id:
            return
        try:
            call = await self._change(session_id, "unanswered")
        except CometChatException as exc:
            logger.info("%s: could not mark %s unanswered: %s", self.name, session_id, exc)
            self.clear_active_call()
            return
        self._emit("on_outgoing_call_rejected", call)
        self.clear_active_call()

    async def accept_call(self, session_id: str) -> Call:
        """Answer an incoming call; it becomes the active call."""
        self._require_user()
        if self._active is not None:
            raise call_error("CANNOT_ACCEPT_CALL")
        call = await self._change(session_id, "ongoing")
        self._active = call
        return call

    async def reject_call(self, session_id: str, status: str) -> Call | None:
        """``rejected``, ``busy`` or (by the initiator) ``cancelled``; anything else ends the call."""
        self._require_user()
        if status in ("rejected", "busy"):
            return await self._change(session_id, status)
        if status == "cancelled":
            call = await self._change(session_id, status)
            # K28: resolves with the updated call even when nothing is active.
            self._end_matching(call)
            return call
        return await self.end_call(session_id)

    async def end_call(self, session_id: str) -> Call | None:
        """End the active call (K27: never raises for a failed update; None if nothing matches)."""
        self._require_user()
        active = self._active
        if active is None or active.session_id != session_id:
            return None  # K27: no active call, or another one: nothing to end, nothing hangs
        try:
            call = await self._change(session_id, "ended")
        except CometChatException as exc:
            logger.info("%s: ending %s failed on the backend (%s); ended locally", self.name, session_id, exc)
            active.status = "ended"
            call = active
        self.clear_active_call()
        return call

    def get_active_call(self) -> Call | None:
        """The active call, or None (K26)."""
        return self._active

    def clear_active_call(self) -> None:
        """Forget the active call and stop its ringing; local, idempotent (K29)."""
        self._active = None
        if self._ringing is not None:
            self._ringing.cancel()
            self._ringing = None

    async def get_call_participant_count(self, session_id: object, type: object) -> int:
        """Participants in a call's media room; ``type`` "direct" names it as §F.3 does."""
        if self.app_settings is None:
            raise call_error("NOT_INITIALIZED")
        if is_falsy(session_id) or not isinstance(session_id, str):
            raise call_error("ERROR_INVALID_SESSIONID")
        if is_falsy(type) or not isinstance(type, str):
            raise call_error("ERROR_INVALID_TYPE")
        room = session_id
        if type.lower() == "direct":
            settings = self.app_settings
            room = f"v1.{settings.region}.{settings.app_id}.{session_id}".lower()
        try:
            async with self.http.get(
                f"{self.host}room_size", params={"room": room}, timeout=REQUEST_TIMEOUT
            ) as r:
                data = await r.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError):
            raise call_error("FAILED_TO_FETCH") from None
        count = data.get("participants") if isinstance(data, dict) else None
        return int(count) if isinstance(count, int) else 0

    # --- listeners (§D.12) ------------------------------------------------------------------------

    def add_call_listener(self, listener_id: str, listener: object) -> None:
        self.registry.add(listener_id, listener)

    def remove_call_listener(self, listener_id: str) -> None:
        self.registry.remove(listener_id)

    # --- lifecycle ----------------------------------------------------------------------------------

    async def logout(self) -> None:
        """Close the call socket and forget the user and any active call."""
        self.clear_active_call()
        if self._socket is not None:
            await self._socket.close()
            self._socket = None
        await self._tasks.aclose()
        self._tasks = TaskSet(f"chat:{self.name}")
        self._user = None

    async def aclose(self) -> None:
        """Log out and release the HTTP session (idempotent)."""
        if self._closed:
            return
        self._closed = True
        await self.logout()
        await self._tasks.aclose()
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
