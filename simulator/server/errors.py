"""The backend's error codes: one exception, mapped to ``{"error": {code, message}}`` once."""

from __future__ import annotations

from typing import Final

__all__ = ["ApiError", "Codes"]


class Codes:
    """Every code the reference backend answers with."""

    AUTH_TOKEN_NOT_FOUND: Final = "AUTH_ERR_AUTH_TOKEN_NOT_FOUND"
    API_KEY_NOT_FOUND: Final = "AUTH_ERR_APIKEY_NOT_FOUND"
    TOKEN_INVALID_SIGNATURE: Final = "AUTH_ERR_TOKEN_INVALID_SIGNATURE"
    TOKEN_EXPIRED: Final = "AUTH_ERR_TOKEN_EXPIRED"
    TOKEN_MALFORMED: Final = "AUTH_ERR_TOKEN_MALFORMED"
    TOKEN_SESSION_MISMATCH: Final = "AUTH_ERR_TOKEN_SESSION_MISMATCH"
    TOKEN_MISSING: Final = "AUTH_ERR_TOKEN_MISSING"
    INVALID_ARGUMENT: Final = "INVALID_ARGUMENT_EXCEPTION"
    BAD_REQUEST: Final = "ERR_BAD_REQUEST"
    UID_ALREADY_EXISTS: Final = "ERR_UID_ALREADY_EXISTS"
    UID_NOT_FOUND: Final = "ERR_UID_NOT_FOUND"
    SESSION_NOT_FOUND: Final = "ERR_SESSION_NOT_FOUND"
    MESSAGE_INVALID: Final = "ERR_MESSAGE_INVALID"
    NOT_JOINED: Final = "ERR_NOT_JOINED"
    ALREADY_JOINED: Final = "ERR_ALREADY_JOINED"
    NEGOTIATION_FAILED: Final = "ERR_NEGOTIATION_FAILED"
    GUID_ALREADY_EXISTS: Final = "ERR_GUID_ALREADY_EXISTS"
    GUID_NOT_FOUND: Final = "ERR_GUID_NOT_FOUND"
    CALL_NOT_FOUND: Final = "ERR_CALL_NOT_FOUND"
    CALL_NOT_A_PARTICIPANT: Final = "ERR_CALL_NOT_A_PARTICIPANT"
    CALL_INVALID_TRANSITION: Final = "ERR_CALL_INVALID_TRANSITION"
    CALL_INVALID_STATUS: Final = "ERR_CALL_INVALID_STATUS"
    ORIGIN_NOT_ALLOWED: Final = "ERR_ORIGIN_NOT_ALLOWED"
    MEDIA_LOST: Final = "ERR_MEDIA_LOST"
    TOO_MANY_REQUESTS: Final = "ERR_TOO_MANY_REQUESTS"


class ApiError(Exception):
    """An error answered to a client; ``status`` is the HTTP status for REST routes."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status

    def body(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}
