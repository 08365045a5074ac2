"""The SDK's one exception root (contract §H) and the exact codes and messages it raises.

``CometChatCallsException`` carries ``code``, ``name``, ``message`` and ``details``
(absent ones are None, K49). Families by cause let callers catch what they can act on;
every instance still compares by ``code``, which is what the contract defines.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ApiError",
    "CometChatCallsException",
    "InvalidArgumentError",
    "InvalidStateError",
    "Messages",
]


class CometChatCallsException(Exception):  # noqa: N818 - the contract's own class name
    """An error raised or delivered (``on_error``) by the Calls SDK (contract §H.1)."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        name: str | None = None,
        details: Any = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.name = name
        self.details = details

    def to_wire(self) -> dict[str, Any]:
        """The JS-shaped object (only the keys that are set, §H.1)."""
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.name is not None:
            out["name"] = self.name
        if self.details is not None:
            out["details"] = self.details
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class InvalidArgumentError(CometChatCallsException):
    """A caller passed a value the contract refuses (settings, token, arguments)."""


class InvalidStateError(CometChatCallsException):
    """The call is not allowed in the SDK's current state (names that state)."""


class ApiError(CometChatCallsException):
    """The backend answered with an error (its code and message are passed through)."""


class Messages:
    """The exact codes and messages of contract §H.3 and the reference's own (K22, K23)."""

    INVALID_CALL_APP_SETTINGS = "INVALID_CALL_APP_SETTINGS"
    APP_SETTINGS_INSTANCE = "appSettings must be an instance of CallAppSettings class"
    APP_ID_INVALID = "Invalid app id, please check your appSettings"
    REGION_INVALID = "Invalid region, please check your appSettings"
    HOST_INVALID = "Invalid host, please check your appSettings"

    INVALID_ARGUMENT_EXCEPTION = "INVALID_ARGUMENT_EXCEPTION"
    AUTH_TOKEN_INVALID = (
        "Argument authToken is missing or invalid, a valid authentication token as a string "
        "is required to proceed."
    )
    SESSION_ID_INVALID = (
        "Argument sessionID is missing or invalid, a valid session identifier as a string "
        "is required to proceed."
    )
    CALL_TOKEN_INVALID = "callToken must be valid please verify."

    INVALID_CALL_SETTINGS = "INVALID_CALL_SETTINGS"
    SETTINGS_INSTANCE = "callSettings must be an instance of CallSettings class"
    IDLE_MINIMUM = "Minimum value for idleTimeoutPeriod is 120 seconds."
    IDLE_NOT_FINITE = "idleTimeoutPeriod must be a finite number of seconds (K16)."

    UNKNOWN_API_ERROR = "UNKNOWN_API_ERROR"
    UNKNOWN_API_MESSAGE = (
        "There is an unknown issue with the API request. Please check your internet "
        "connection and verify the api call."
    )
    GENERIC_EXCEPTION = "GENERIC_EXCEPTION"
    REQUEST_IN_PROGRESS = "REQUEST_IN_PROGRESS"
    REQUEST_IN_PROGRESS_MESSAGE = "Request in progress."
    NOT_ENOUGH_PARAMETERS = "NOT_ENOUGH_PARAMETERS"
    AUTH_TOKEN_REQUIRED = "`Auth Token` is required to use the 'fetchNext()' method."
    SESSION_ID_REQUIRED = "`Session ID` is required to use the 'fetchNext()' method."

    # K22: not an SDK code; the reference refuses a second concurrent session.
    SESSION_ALREADY_ACTIVE = "SESSION_ALREADY_ACTIVE"
    SESSION_ALREADY_ACTIVE_MESSAGE = (
        "A call session is already active on this client; call end_session() first."
    )

    @staticmethod
    def not_boolean(method: str) -> str:
        """B.3: the message naming the builder method whose value is not a boolean."""
        return f"{method} method must be provided a boolean value."
