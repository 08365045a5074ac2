"""REST routes, in the published JavaScript SDK's own request shapes (contract §G, §A.2).

* ``POST {host}call_tokens`` — header ``authToken``, body ``{"sessionId"}`` →
  ``{"data": {"token", "sessionId"}}``;
* ``GET {host}call_tokens`` — header ``callToken`` → ``{"data": {"payload": {"data": …},
  "settings": …}}``, exactly what the published bundle reads (:func:`call_token_answer`);
* ``POST {host}v1/calls/ping`` — the published SDK's analytics ping (every 60 s), recorded;
* ``POST {host}users`` / ``POST {host}users/{uid}/auth_tokens`` — header ``apiKey``;
* ``GET {host}sessions/{sessionId}`` — the participant count (§F.3) and who is in.

Every error is ``{"error": {"code", "message"}}``; unknown headers are ignored; a
browser page on loopback may call these (CORS).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from simulator import protocol
from simulator.server.admission import Admission, TooManyRequestsError
from simulator.server.errors import ApiError, Codes
from simulator.server.store import UserRecord

if TYPE_CHECKING:
    from simulator.server.app import Backend

__all__ = ["WEBRTC_HOST", "call_token_answer", "origin_allowed", "routes"]

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
WEBRTC_HOST = web.AppKey("webrtc_host", str)
ADMISSION = web.AppKey("admission", Admission)
"""The backend's bare host name, whose HTTPS origins its browser pages come from."""

_LOOPBACK_ORIGIN = re.compile(r"^https?://(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?$")
_CORS_HEADERS = "authToken, callToken, apiKey, Content-Type, Accept, appId, sdk, resource, authorization"
_CORS_METHODS = "GET, POST, PUT, OPTIONS"


def origin_allowed(origin: str, webrtc_host: str) -> bool:
    """Whether a browser page at ``origin`` may use this backend: pages on loopback, and the
    backend's own HTTPS name and its subdomains (the published SDK's page). REST answers
    carry CORS headers for these; the WebSockets refuse other origins outright (a browser
    does not apply CORS to them)."""
    if _LOOPBACK_ORIGIN.match(origin):
        return True
    host = re.escape(webrtc_host)
    return re.fullmatch(rf"https://([a-z0-9-]+\.)*{host}(:\d+)?", origin.lower()) is not None


def require_allowed_origin(request: web.Request, webrtc_host: str) -> None:
    """For WebSocket handshakes: a browser page from another origin is refused (403)."""
    origin = request.headers.get("Origin")
    if origin is not None and not origin_allowed(origin, webrtc_host):
        raise ApiError(Codes.ORIGIN_NOT_ALLOWED, f"origin {origin!r} may not open this socket", 403)


@web.middleware
async def errors_and_cors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map every error to the contract's JSON shape once; allow loopback browser origins.

    A wildcard-free origin check on loopback is all CORS needs here, which
    aiohttp-cors (exact origins or ``*``) cannot express.
    """
    origin = request.headers.get("Origin", "")
    allowed = origin_allowed(origin, request.app[WEBRTC_HOST]) if origin else False
    response: web.StreamResponse
    admission = request.app[ADMISSION]
    if request.method == "OPTIONS" and allowed:
        response = web.Response(status=204)
    else:
        try:
            admission.check_not_throttled(request.remote)
            response = await handler(request)
        except ApiError as exc:
            admission.judge(request.remote, exc)
            response = web.json_response(exc.body(), status=exc.status)
            if isinstance(exc, TooManyRequestsError):
                response.headers["Retry-After"] = str(exc.retry_after)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            code = Codes.BAD_REQUEST if exc.status != 404 else "ERR_NOT_FOUND"
            response = web.json_response({"error": {"code": code, "message": exc.reason}}, status=exc.status)
    if allowed and not response.prepared:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Headers"] = _CORS_HEADERS
        response.headers["Access-Control-Allow-Methods"] = _CORS_METHODS
        response.headers["Vary"] = "Origin"
    return response


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise ApiError(Codes.BAD_REQUEST, "the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ApiError(Codes.BAD_REQUEST, "the body must be a JSON object")
    return body


def _string_field(body: dict[str, Any], key: str, *, required: bool = True) -> str:
    value = body.get(key, "" if not required else None)
    if not isinstance(value, str) or (required and not value.strip()):
        raise ApiError(Codes.INVALID_ARGUMENT, f"{key} must be a non-empty string")
    return value


def call_token_answer(payload: dict[str, Any], webrtc_host: str) -> dict[str, Any]:
    """The ``GET call_tokens`` answer in the shape the published bundle reads.

    The bundle takes the session, region, app and user from ``data.payload.data`` and the
    deployment from ``data.settings``: ``WEBRTC_HOST`` is a bare host name from which it
    derives ``wss://xmpp.<host>/xmpp-websocket``, ``conference.<host>`` and ``focus.<host>``;
    analytics go to ``https://<ANALYTICS_HOST>/<ANALYTICS_VERSION>/calls/ping``.
    """
    data = payload["data"]
    user = data["user"]
    return {
        "data": {
            "payload": {
                "data": {
                    "sessionId": data["sessionId"],
                    "region": str(data["region"]),
                    "appId": data["appId"],
                    "user": {
                        "uid": user["uid"],
                        "name": user["name"],
                        "avatar": user.get("avatar", ""),
                        "resource": f"WEB-{user['uid']}",
                    },
                },
                "room": payload.get("room"),
                "iat": payload.get("iat"),
                "exp": payload.get("exp"),
            },
            "settings": {
                "WEBRTC_HOST": webrtc_host,
                "ANALYTICS_HOST": webrtc_host,
                "ANALYTICS_VERSION": "v1",
                "PRESENTER_MODE_ENABLED": False,
            },
        }
    }


def routes(backend: Backend) -> list[web.RouteDef]:
    """The backend's HTTP routes."""

    def require_api_key(request: web.Request) -> None:
        if request.headers.get("apiKey") != backend.api_key:
            raise ApiError(Codes.API_KEY_NOT_FOUND, "a valid apiKey header is required", 401)

    async def create_user(request: web.Request) -> web.Response:
        require_api_key(request)
        body = await _json_body(request)
        user = backend.store.create_user(
            _string_field(body, "uid"),
            _string_field(body, "name"),
            _string_field(body, "avatar", required=False),
        )
        return web.json_response({"data": {"uid": user.uid, "name": user.name, "avatar": user.avatar}})

    async def create_auth_token(request: web.Request) -> web.Response:
        require_api_key(request)
        token = backend.store.issue_auth_token(request.match_info["uid"])
        return web.json_response({"data": {"uid": request.match_info["uid"], "authToken": token}})

    async def generate_call_token(request: web.Request) -> web.Response:
        auth_token = request.headers.get("authToken", "")
        user = backend.store.user_for_auth_token(auth_token) if auth_token else None
        if user is None:
            raise ApiError(Codes.AUTH_TOKEN_NOT_FOUND, "The auth token is not found or invalid.", 401)
        body = await _json_body(request)
        session_id = _string_field(body, "sessionId")
        backend.admission.spend_call_token(user.uid)
        token = backend.tokens.issue(user, session_id)
        return web.json_response({"data": {"token": token, "sessionId": session_id}})

    async def verify_call_token(request: web.Request) -> web.Response:
        claims = backend.tokens.verify(
            request.headers.get("callToken"), expected_session=request.query.get("sessionId")
        )
        return web.json_response(call_token_answer(claims.payload, backend.webrtc_host))

    async def analytics_ping(request: web.Request) -> web.Response:
        # The SDK's call screen pings every 60 s (appId and "Beare <call token>" headers).
        try:
            body = await request.json()
        except (ValueError, RecursionError):
            body = None
        backend.analytics.append(
            {"appId": request.headers.get("appId", ""), "body": body if isinstance(body, dict) else None}
        )
        return web.json_response({"data": {"success": True}})

    def require_user(request: web.Request) -> UserRecord:
        auth_token = request.headers.get("authToken", "")
        user = backend.store.user_for_auth_token(auth_token) if auth_token else None
        if user is None:
            raise ApiError(Codes.AUTH_TOKEN_NOT_FOUND, "The auth token is not found or invalid.", 401)
        return user

    async def get_user(request: web.Request) -> web.Response:
        require_user(request)
        user = backend.store.get_user(request.match_info["uid"])
        if user is None:
            raise ApiError(Codes.UID_NOT_FOUND, f"no user with uid {request.match_info['uid']!r}", 404)
        return web.json_response({"data": {"uid": user.uid, "name": user.name, "avatar": user.avatar}})

    async def create_group(request: web.Request) -> web.Response:
        require_api_key(request)
        body = await _json_body(request)
        members = body.get("members", [])
        if not isinstance(members, list) or not all(isinstance(m, str) and m for m in members):
            raise ApiError(Codes.INVALID_ARGUMENT, "members must be a list of uids")
        group = backend.store.create_group(_string_field(body, "guid"), _string_field(body, "name"), members)
        return web.json_response(
            {"data": {"guid": group.guid, "name": group.name, "members": list(group.members)}}
        )

    async def create_call(request: web.Request) -> web.Response:
        user = require_user(request)
        body = await _json_body(request)
        call = backend.calls.create(
            user,
            _string_field(body, "receiverId"),
            _string_field(body, "receiverType"),
            _string_field(body, "type"),
        )
        return web.json_response({"data": protocol.to_json_data(call)})

    async def update_call(request: web.Request) -> web.Response:
        user = require_user(request)
        body = await _json_body(request)
        call = backend.calls.update(user, request.match_info["session_id"], _string_field(body, "status"))
        return web.json_response({"data": protocol.to_json_data(call)})

    async def call_details(request: web.Request) -> web.Response:
        user = require_user(request)  # a call's details are its parties' alone
        return web.json_response(
            {"data": [backend.calls.details(request.match_info["session_id"], user.uid)]}
        )

    async def room_size(request: web.Request) -> web.Response:
        room = request.query.get("room", "")
        if not room:
            raise ApiError(Codes.INVALID_ARGUMENT, "the room query parameter is required")
        return web.json_response({"participants": backend.room_size(room)})

    async def session_info(request: web.Request) -> web.Response:
        require_api_key(request)  # who is in a session is the operator's to see, not the public's
        session_id = request.match_info["session_id"]
        room = backend.rooms.get(session_id)
        participants = [] if room is None else [p.record.uid for p in room]
        return web.json_response(
            {"data": {"sessionId": session_id, "participantCount": len(participants), "uids": participants}}
        )

    async def stats(request: web.Request) -> web.Response:
        require_api_key(request)  # the operator's view of the process (the soak samples it)
        data: dict[str, object] = dict(backend.stats(collect=request.query.get("collect") == "1"))
        if request.query.get("media") == "1":
            data["media_by_uid"] = {uid: dict(c) for uid, c in backend.media_by_uid.items()}
        return web.json_response({"data": data})

    return [
        web.get("/stats", stats),
        web.post("/users", create_user),
        web.post("/users/{uid}/auth_tokens", create_auth_token),
        web.get("/users/{uid}", get_user),
        web.post("/call_tokens", generate_call_token),
        web.get("/call_tokens", verify_call_token),
        web.post("/v1/calls/ping", analytics_ping),
        web.get("/sessions/{session_id}", session_info),
        web.post("/groups", create_group),
        web.post("/calls", create_call),
        web.put("/calls/{session_id}", update_call),
        web.get("/calls/{session_id}", call_details),
        web.get("/room_size", room_size),
        web.get("/ws", backend.signalling.handle),
        web.get("/chat", backend.chat.handle),
    ]
