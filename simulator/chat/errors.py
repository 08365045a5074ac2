"""The Chat SDK's ``CometChatException`` and the call errors it raises (§H.2, §H.4).

It shares the SDK's one exception root (K48: tests look only at the fields).
"""

from __future__ import annotations

from typing import Any, Final

from simulator.sdk.errors import CometChatCallsException

__all__ = ["CALL_ERROR", "CometChatException", "call_error"]


class CometChatException(CometChatCallsException):
    """An error of the Chat SDK's call methods."""


CALL_ERROR: Final[dict[str, dict[str, Any]]] = {
    "CALL_ALREADY_INITIATED": {
        "code": "CALL_ALREADY_INITIATED",
        "name": "CALL_ALREADY_INITIATED",
        "message": "There is already call in progress",
        "details": {},
    },
    "ERROR_IN_CALLING": {
        "code": "CALL_IN_PROGRESS",
        "name": "CALL_ALREADY_INITIATED",
        "message": "There is already call in progress",
        "details": {},
    },
    "CANNOT_ACCEPT_CALL": {
        "code": "CALL_IN_PROGRESS",
        "name": "CALL_IN_PROGRESS",
        "message": "There is already a call in progress",
        "details": {},
    },
    "NOT_INITIALIZED": {
        "code": "NOT_INITIALIZED",
        "name": "NOT_INITIALIZED",
        "message": (
            "Please call the CometChat.init() method before calling any other methods related to CometChat."
        ),
        "details": {},
    },
    "NOT_LOGGED_IN": {
        "code": "NOT_LOGGED_IN",
        "name": "NOT_LOGGED_IN",
        "message": "Please login before starting a call.",
        "details": {},
    },
    "SESSION_ID_REQUIRED": {
        "code": "SESSION_ID_REQUIRED",
        "name": "SESSION_ID_REQUIRED",
        "message": "Please make sure you are passing correct session id.",
        "details": {},
    },
    # §H.4: getCallParticipantCount
    "ERROR_INVALID_SESSIONID": {
        "code": "ERROR_INVALID_SESSIONID",
        "name": "ERROR_INVALID_SESSIONID",
        "message": "The provided sessionId cannot be null or empty. Please provide a valid sessionId.",
        "details": "",
    },
    "ERROR_INVALID_TYPE": {
        "code": "ERROR_INVALID_TYPE",
        "name": "ERROR_INVALID_TYPE",
        "message": "The provided type cannot be null or empty. Please provide a valid type.",
        "details": "",
    },
    "FAILED_TO_FETCH": {
        "code": "FAILED_TO_FETCH",
        "name": "FAILED_TO_FETCH",
        "message": (
            "There is an unknown issue with the API request. Please check your internet connection "
            "and verify the api call."
        ),
        "details": {},
    },
}


def call_error(key: str) -> CometChatException:
    """The exception of one ``CALL_ERROR`` entry, with its exact code, name, message, details."""
    entry = CALL_ERROR[key]
    return CometChatException(entry["code"], entry["message"], name=entry["name"], details=entry["details"])
