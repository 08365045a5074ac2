"""§G, K25: token lifetimes on the backend's own clock (weakness class 6).

The SDK never reads a token's ``exp``; the backend does, when the session starts. So
these checks move the backend's clock (*backendClock*), never the SDK's.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from conformance.api import Sut
from conformance.check import REFERENCE, SHOULD, check

UNKNOWN_API = "UNKNOWN_API_ERROR"


def claims(token: str) -> dict[str, Any]:
    segment = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))  # type: ignore[no-any-return]


@check("G", SHOULD, "backendClock", items=("G", "H.3", "A.2"), closes=(3, 6))
def test_an_expired_token_reaches_on_error_with_the_servers_error(sut: Sut) -> None:
    """§A.2 #3: a token the backend refuses at verification → onError carrying the server's
    ``{code, message}`` (not UNKNOWN_API_ERROR), and no join: two who join after hear only
    of each other."""
    alice, bob, carol = sut.client("alice"), sut.client("bob"), sut.client("carol")
    token = alice.token("s1")
    sut.call("Harness.advanceBackendClock", seconds=10 * 365 * 86400.0)
    alice.calls("startSession", callToken=token, callSettings={"setCallListener": True})
    error = alice.wait("onError").payload
    assert set(error) == {"code", "message"}, error
    assert error["code"] and error["code"] != UNKNOWN_API
    assert isinstance(error["message"], str) and error["message"]
    bob.join("s1")
    carol.join("s1")
    bob.wait_members("bob", "carol")
    assert [e.payload["uid"] for e in bob.events(callback="onUserJoined")] == ["carol"]


@check("G", REFERENCE, "backendClock", items=("G",), closes=(4, 6))
def test_a_token_lives_exp_minus_iat_seconds_k25(sut: Sut) -> None:
    """REFERENCE, K25: ``iat``/``exp`` are seconds on the backend's clock; a token joins one
    second before ``exp`` and is refused with AUTH_ERR_TOKEN_EXPIRED at ``exp``."""
    alice, bob = sut.client("alice"), sut.client("bob")
    first, second = alice.token("s1"), bob.token("s1")
    lifetime = claims(first)["exp"] - claims(first)["iat"]
    assert isinstance(lifetime, int) and 60 <= lifetime <= 366 * 86400, lifetime
    sut.call("Harness.advanceBackendClock", seconds=lifetime - 2)
    alice.join("s1")
    sut.call("Harness.advanceBackendClock", seconds=2)
    bob.calls("startSession", callToken=second, callSettings={"setCallListener": True})
    error = bob.wait("onError").payload
    assert (error["code"], error["message"]) == (
        "AUTH_ERR_TOKEN_EXPIRED",
        "token has expired; generate a new one",
    )
    fresh = bob.token("s1")
    assert claims(fresh)["iat"] >= claims(first)["iat"] + lifetime  # issued on the moved clock
    bob.calls("startSession", callToken=fresh, callSettings={"setCallListener": True})
    bob.harness("waitJoined")
    alice.wait_members("alice", "bob")
