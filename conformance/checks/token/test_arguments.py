"""§A.2 #1–#3, §G, §H.3: refusals with several bad arguments at once, compared whole.

With one bad argument per case the order in which the contract checks arguments never
shows (weakness class 2); a refusal is its code, message and the keys it leaves out
(class 3): the Calls SDK's own errors carry only ``code`` and ``message`` (§H.1, §B.3.6).
"""

from __future__ import annotations

from typing import Any

import pytest

from conformance.api import Sut
from conformance.check import SHOULD, check
from conformance.driver import ContractError

AUTH = "Argument authToken is missing or invalid, a valid authentication token as a string is required to proceed."
SESSION = (
    "Argument sessionID is missing or invalid, a valid session identifier as a string is required to proceed."
)
APP_SETTINGS = "appSettings must be an instance of CallAppSettings class"
APP_ID = "Invalid app id, please check your appSettings"
REGION = "Invalid region, please check your appSettings"
UNKNOWN_API = (
    "There is an unknown issue with the API request. Please check your internet connection "
    "and verify the api call."
)


def refusal(call: Any, *args: Any, **kwargs: Any) -> ContractError:
    with pytest.raises(ContractError) as caught:
        call(*args, **kwargs)
    return caught.value


def whole(error: ContractError) -> tuple[object, object, object, object]:
    return (error.code, error.message, error.name, error.details)


@check("G", SHOULD, items=("G", "H.3"), closes=(2, 3))
@pytest.mark.parametrize(
    ("session_id", "auth_token"), [(7, 42), (None, None), ({}, [])], ids=["numbers", "nulls", "objects"]
)
def test_auth_token_is_checked_before_the_session_id(
    sut: Sut, session_id: object, auth_token: object
) -> None:
    """§G check order: (2) authToken, (3) sessionID; both bad → the authToken message, only."""
    alice = sut.client("alice")
    error = refusal(alice.calls, "generateToken", sessionId=session_id, authToken=auth_token)
    assert whole(error) == ("INVALID_ARGUMENT_EXCEPTION", AUTH, None, None)


@check("G", SHOULD, items=("G", "H.3"), closes=(2, 3))
def test_init_is_checked_before_the_arguments_k23(sut: Sut) -> None:
    """§G check order (1): without init, even with both arguments bad, INVALID_CALL_APP_SETTINGS."""
    alice = sut.client("alice", init=False)
    error = refusal(alice.calls, "generateToken", sessionId=7, authToken=42)
    assert whole(error) == ("INVALID_CALL_APP_SETTINGS", APP_SETTINGS, None, None)


@check("A", SHOULD, items=("A.2", "B.7", "H.3"), closes=(2, 3))
@pytest.mark.parametrize(
    ("app_settings", "message"),
    [
        ("not settings", APP_SETTINGS),
        ({"appId": "", "region": "mars"}, APP_ID),
        ({"appId": 5, "region": 5}, APP_ID),
        ({"appId": "callsim", "region": "mars"}, REGION),
        ({"appId": "callsim", "region": 5}, REGION),
    ],
    ids=["not-an-object", "app-id-and-region", "both-numbers", "region", "region-number"],
)
def test_init_refuses_in_the_contracts_order(sut: Sut, app_settings: object, message: str) -> None:
    """§A.2 #1: instance, then appId, then region; the first failure is the one reported."""
    alice = sut.client("alice", init=False)
    error = refusal(alice.calls, "init", appSettings=app_settings)
    assert whole(error) == ("INVALID_CALL_APP_SETTINGS", message, None, None)


@check("B", SHOULD, items=("B.3", "H.3"), closes=(2, 3))
def test_settings_are_refused_before_the_token_is_looked_at(sut: Sut) -> None:
    """§A.2 #3: settings are validated first and reject the promise; a bad token beside them
    never reaches onError."""
    alice = sut.client("alice")
    error = refusal(
        alice.calls,
        "startSession",
        callToken="not.a.jwt",
        callSettings={"setCallListener": True, "showModeButton": 1},
    )
    assert whole(error) == (
        "INVALID_CALL_SETTINGS",
        "showModeButton method must be provided a boolean value.",
        None,
        None,
    )
    assert alice.events(None) == []


@check("B", SHOULD, items=("B.3", "H.3"), closes=(3,))
@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ("not settings", "callSettings must be an instance of CallSettings class"),
        ({"setIdleTimeoutPeriod": 119}, "Minimum value for idleTimeoutPeriod is 120 seconds."),
        ({"enableDefaultLayout": "yes"}, "enableDefaultLayout method must be provided a boolean value."),
    ],
    ids=["instance", "idle", "boolean"],
)
def test_settings_refusals_carry_only_code_and_message(sut: Sut, settings: object, message: str) -> None:
    """§B.3.6: ``{code, message}``, no name, no details."""
    alice = sut.client("alice")
    error = refusal(alice.calls, "startSession", callToken=alice.token("s1"), callSettings=settings)
    assert whole(error) == ("INVALID_CALL_SETTINGS", message, None, None)


@check("G", SHOULD, items=("G", "H.3"), closes=(3,))
def test_an_unknown_auth_token_relays_the_servers_error(sut: Sut) -> None:
    """§G: the server's ``{code, message}`` reaches the caller as it is: the code §G names for
    an unknown auth token, a message of the server's (not the SDK's fallback)."""
    alice = sut.client("alice")
    error = refusal(alice.calls, "generateToken", sessionId="s1", authToken="no-such-auth-token")
    assert error.code == "AUTH_ERR_AUTH_TOKEN_NOT_FOUND"
    assert isinstance(error.message, str) and error.message and error.message != UNKNOWN_API
