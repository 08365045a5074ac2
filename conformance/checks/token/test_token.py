"""§G: call tokens."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from conformance.api import Sut
from conformance.check import MUST, SHOULD, check
from conformance.driver import ContractError


def payload(token: str) -> dict[str, Any]:
    parts = token.split(".")
    assert len(parts) == 3, f"a JWT has three segments, got {len(parts)}"
    segment = parts[1] + "=" * (-len(parts[1]) % 4)
    return json.loads(base64.urlsafe_b64decode(segment))  # type: ignore[no-any-return]


@check("G", MUST)
def test_generate_returns_a_token(sut: Sut) -> None:
    alice = sut.client("alice")
    result = alice.calls("generateToken", sessionId="s1", authToken=sut.user("alice"))
    assert isinstance(result["token"], str)
    assert result["token"]


@check("G", SHOULD)
def test_token_is_a_jwt_carrying_the_session_id(sut: Sut) -> None:
    """K25: three base64url segments; the payload's data.sessionId is the requested one."""
    alice = sut.client("alice")
    token = alice.calls("generateToken", sessionId="room-42", authToken=sut.user("alice"))["token"]
    assert payload(token)["data"]["sessionId"] == "room-42"


@check("G", MUST)
def test_tokens_differ_per_user_and_session(sut: Sut) -> None:
    alice, bob = sut.client("alice"), sut.client("bob")
    tokens = {alice.token("s1"), alice.token("s2"), bob.token("s1")}
    assert len(tokens) == 3
    assert {payload(t)["data"]["sessionId"] for t in tokens} == {"s1", "s2"}


@check("G", MUST)
def test_unknown_auth_token_is_refused(sut: Sut) -> None:
    alice = sut.client("alice")
    with pytest.raises(ContractError) as caught:
        alice.calls("generateToken", sessionId="s1", authToken="no-such-auth-token")
    assert caught.value.code, "the refusal carries a code (K24)"


@check("G", SHOULD)
@pytest.mark.parametrize(
    ("session_id", "auth_token", "message"),
    [
        ("s1", 42, "Argument authToken is missing or invalid, a valid authentication token as a string is required to proceed."),
        ("s1", None, "Argument authToken is missing or invalid, a valid authentication token as a string is required to proceed."),
        (7, "token", "Argument sessionID is missing or invalid, a valid session identifier as a string is required to proceed."),
        (None, "token", "Argument sessionID is missing or invalid, a valid session identifier as a string is required to proceed."),
    ],
    ids=["auth-token-number", "auth-token-null", "session-id-number", "session-id-null"],
)  # fmt: skip
def test_non_string_arguments_exact_messages(
    sut: Sut, session_id: object, auth_token: object, message: str
) -> None:
    alice = sut.client("alice")
    with pytest.raises(ContractError) as caught:
        alice.calls("generateToken", sessionId=session_id, authToken=auth_token)
    assert (caught.value.code, caught.value.message) == ("INVALID_ARGUMENT_EXCEPTION", message)


@check("G", MUST)
def test_a_token_joins_its_own_session_only(sut: Sut) -> None:
    """Each one's token puts it in its own session: the lists of both sessions never mix."""
    alice, bob, carol, dave = (sut.client(name) for name in ("alice", "bob", "carol", "dave"))
    alice.join("s1")
    bob.join("s2")
    carol.join("s1")
    dave.join("s2")
    alice.wait_members("alice", "carol")
    bob.wait_members("bob", "dave")
    assert [e.payload["uid"] for e in alice.events(callback="onUserJoined")] == ["carol"]
    assert [e.payload["uid"] for e in bob.events(callback="onUserJoined")] == ["dave"]


@check("G", SHOULD)
def test_a_garbage_token_reaches_on_error(sut: Sut) -> None:
    """§A.2 #3: a token without data.sessionId → onError INVALID_ARGUMENT_EXCEPTION."""
    alice = sut.client("alice")
    alice.calls("startSession", callToken="not.a.jwt", callSettings={"setCallListener": True})
    error = alice.wait("onError").payload
    assert (error["code"], error["message"]) == (
        "INVALID_ARGUMENT_EXCEPTION",
        "callToken must be valid please verify.",
    )


@check("G", SHOULD, items=("G", "H.3", "A.2"), closes=(3,))
def test_a_token_the_backend_cannot_verify_reaches_on_error_with_the_servers_error(sut: Sut) -> None:
    """§A.2 #3: a token whose payload names the session (so the SDK's own check passes) but
    whose header names an algorithm the backend does not sign with: the backend refuses it at
    verification, and onError carries the server's ``{code, message}`` (not
    UNKNOWN_API_ERROR, the SDK's fallback when the server gives none); nobody joins."""
    alice, bob, carol = sut.client("alice"), sut.client("bob"), sut.client("carol")
    _, body, signature = alice.token("s1").split(".")
    header = base64.urlsafe_b64encode(json.dumps({"alg": "HS512", "typ": "JWT"}).encode()).rstrip(b"=")
    alice.calls(
        "startSession",
        callToken=".".join([header.decode(), body, signature]),
        callSettings={"setCallListener": True},
    )
    error = alice.wait("onError").payload
    assert set(error) == {"code", "message"}, error
    assert error["code"] and error["code"] != "UNKNOWN_API_ERROR", error
    assert isinstance(error["message"], str) and error["message"], error
    bob.join("s1")
    carol.join("s1")
    bob.wait_members("bob", "carol")
    assert [e.payload["uid"] for e in bob.events(callback="onUserJoined")] == ["carol"]
