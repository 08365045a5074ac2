"""Call tokens (contract §G, K24, K25): HS256 JWTs, one per user and session.

Payload: ``{data: {appId, region, user: {uid, name, avatar}, sessionId}, room, iat,
exp, jti}``. The ``jti`` makes two tokens for the same user and session differ too.
Expiry is checked against an injectable wall clock, so a test can make a token old.
"""

from __future__ import annotations

import collections
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt

from simulator.server.errors import ApiError, Codes
from simulator.server.store import UserRecord

__all__ = ["CallTokenAuthority", "CallTokenClaims"]

DEFAULT_TTL = 24 * 3600.0
VERIFIED_KEPT = 4096
"""Tokens whose signature was checked, kept so that a join's second look (the REST check, then
the join itself) costs no HMAC and JSON again; expiry and session are checked every time."""


@dataclass(frozen=True, slots=True)
class CallTokenClaims:
    """A verified call token."""

    session_id: str
    user: UserRecord
    payload: dict[str, Any]


class CallTokenAuthority:
    """Issues and verifies call tokens with the backend's secret."""

    def __init__(
        self,
        secret: str,
        *,
        app_id: str,
        region: str,
        ttl: float = DEFAULT_TTL,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = secret
        self.app_id = app_id
        self.region = region
        self.ttl = ttl
        self._wall_clock = wall_clock
        self._verified: collections.OrderedDict[str, dict[str, Any]] = collections.OrderedDict()

    def issue(self, user: UserRecord, session_id: str) -> str:
        now = int(self._wall_clock())
        payload = {
            "data": {
                "appId": self.app_id,
                "region": self.region,
                "user": {"uid": user.uid, "name": user.name, "avatar": user.avatar},
                "sessionId": session_id,
            },
            "room": session_id,
            "iat": now,
            "exp": now + int(self.ttl),
            "jti": secrets.token_hex(8),
        }
        return jwt.encode(payload, self._secret, algorithm="HS256")

    def verify(self, token: object, expected_session: str | None = None) -> CallTokenClaims:
        """The token's claims, or :class:`ApiError` saying exactly what is wrong with it."""
        if not isinstance(token, str) or not token:
            raise ApiError(Codes.TOKEN_MISSING, "a call token is required", 401)
        payload = self._signed_payload(token)
        data = payload.get("data")
        user = data.get("user") if isinstance(data, dict) else None
        exp = payload.get("exp")
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("sessionId"), str)
            or not isinstance(user, dict)
            or not isinstance(exp, int | float)
        ):
            raise ApiError(Codes.TOKEN_MALFORMED, "token payload lacks data.sessionId, data.user or exp", 401)
        if exp <= self._wall_clock():
            raise ApiError(Codes.TOKEN_EXPIRED, "token has expired; generate a new one", 401)
        session_id = data["sessionId"]
        if expected_session is not None and expected_session != session_id:
            raise ApiError(
                Codes.TOKEN_SESSION_MISMATCH,
                f"token is for session {session_id!r}, not {expected_session!r}",
                403,
            )
        record = UserRecord(str(user.get("uid", "")), str(user.get("name", "")), str(user.get("avatar", "")))
        return CallTokenClaims(session_id, record, payload)

    def _signed_payload(self, token: str) -> dict[str, Any]:
        """The payload of a token signed with our secret (read-only: it may be shared)."""
        if (payload := self._verified.get(token)) is not None:
            self._verified.move_to_end(token)
            return payload
        try:
            # Times are checked by verify() against our own (injectable) clock, not PyJWT's real
            # one: a token issued on a clock moved ahead would otherwise be "not yet valid (iat)".
            payload = jwt.decode(
                token, self._secret, algorithms=["HS256"], options={"verify_exp": False, "verify_iat": False}
            )
        except jwt.InvalidSignatureError:
            raise ApiError(Codes.TOKEN_INVALID_SIGNATURE, "token is invalid", 401) from None
        except jwt.InvalidTokenError as exc:
            raise ApiError(Codes.TOKEN_MALFORMED, f"token is malformed: {exc}", 401) from None
        self._verified[token] = payload
        if len(self._verified) > VERIFIED_KEPT:
            self._verified.popitem(last=False)
        return payload
