"""§G call tokens and the SQLite store (K24, K25)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import jwt
import pytest

from simulator.server.errors import ApiError, Codes
from simulator.server.store import Store, UserRecord
from simulator.server.tokens import CallTokenAuthority

ALICE = UserRecord("alice", "Alice", "https://a.png")
BOB = UserRecord("bob", "Bob", "")


def authority(now: float = 1_000_000.0, secret: str = "s" * 32) -> CallTokenAuthority:
    return CallTokenAuthority(secret, app_id="app", region="us", ttl=3600, wall_clock=lambda: now)


def payload_of(token: str) -> dict[str, object]:
    segment = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))  # type: ignore[no-any-return]


def test_token_is_a_jwt_carrying_the_session_and_user() -> None:
    token = authority().issue(ALICE, "s1")
    assert len(token.split(".")) == 3
    payload = payload_of(token)
    assert payload["data"] == {
        "appId": "app",
        "region": "us",
        "user": {"uid": "alice", "name": "Alice", "avatar": "https://a.png"},
        "sessionId": "s1",
    }
    assert payload["exp"] == payload["iat"] + 3600  # type: ignore[operator]
    claims = authority().verify(token, expected_session="s1")
    assert (claims.session_id, claims.user) == ("s1", ALICE)


def test_tokens_differ_per_user_session_and_issue() -> None:
    a = authority()
    tokens = {a.issue(ALICE, "s1"), a.issue(BOB, "s1"), a.issue(ALICE, "s2"), a.issue(ALICE, "s1")}
    assert len(tokens) == 4


@pytest.mark.parametrize(
    ("mangle", "code"),
    [
        (lambda t: t[:-4] + ("AAAA" if not t.endswith("AAAA") else "BBBB"), Codes.TOKEN_INVALID_SIGNATURE),
        (lambda t: "not-a-jwt", Codes.TOKEN_MALFORMED),
        (lambda t: "", Codes.TOKEN_MISSING),
        (lambda t: jwt.encode({"data": {}}, "s" * 32, algorithm="HS256"), Codes.TOKEN_MALFORMED),
        (lambda t: authority(secret="x" * 32).issue(ALICE, "s1"), Codes.TOKEN_INVALID_SIGNATURE),
    ],
)
def test_bad_tokens_are_refused_with_a_precise_code(mangle, code: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ApiError) as caught:
        authority().verify(mangle(authority().issue(ALICE, "s1")))
    assert caught.value.code == code


def test_an_expired_token_is_refused() -> None:
    token = authority(now=1_000_000).issue(ALICE, "s1")
    with pytest.raises(ApiError) as caught:
        authority(now=1_000_000 + 3600).verify(token)
    assert caught.value.code == Codes.TOKEN_EXPIRED


def test_another_sessions_token_is_refused() -> None:
    with pytest.raises(ApiError) as caught:
        authority().verify(authority().issue(ALICE, "s1"), expected_session="s2")
    assert caught.value.code == Codes.TOKEN_SESSION_MISMATCH


def test_store_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "callsim.db"
    store = Store(path)
    store.create_user("alice", "Alice", "a.png")
    auth = store.issue_auth_token("alice")
    secret = store.secret()
    token = CallTokenAuthority(secret, app_id="a", region="us").issue(ALICE, "s1")
    store.close()

    reopened = Store(path)
    assert reopened.get_user("alice") == UserRecord("alice", "Alice", "a.png")
    assert reopened.user_for_auth_token(auth) == UserRecord("alice", "Alice", "a.png")
    assert reopened.secret() == secret
    assert CallTokenAuthority(reopened.secret(), app_id="a", region="us").verify(token).session_id == "s1"
    reopened.close()


def test_store_refuses_duplicates_and_unknown_users() -> None:
    store = Store()
    store.create_user("alice", "Alice")
    with pytest.raises(ApiError) as dup:
        store.create_user("alice", "Other")
    assert dup.value.code == Codes.UID_ALREADY_EXISTS
    with pytest.raises(ApiError) as unknown:
        store.issue_auth_token("nobody")
    assert unknown.value.code == Codes.UID_NOT_FOUND
    assert store.user_for_auth_token("nope") is None
    store.close()
