"""Signalling messages: anything malformed is a ProtocolError, never a crash."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator import protocol

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
TYPES = ["join", "publish", "subscribe-answer", "state", "switch-to-video", "leave", "nope"]


@given(
    st.one_of(JSON, st.dictionaries(st.sampled_from(["type", "token", "sessionId", "sdp", "reason"]), JSON))
)
def test_arbitrary_json_decodes_or_raises_protocol_error(value: object) -> None:
    try:
        message = protocol.decode_client_message(json.dumps(value))
    except protocol.ProtocolError:
        return
    assert isinstance(message, protocol.ClientMessage)  # type: ignore[arg-type]


@given(
    st.sampled_from(TYPES),
    st.dictionaries(st.sampled_from(["token", "sessionId", "sdp", "reason", "audioMuted"]), JSON),
)
def test_typed_messages_with_random_fields(kind: str, fields: dict[str, object]) -> None:
    with contextlib.suppress(protocol.ProtocolError):
        protocol.decode_client_message(json.dumps({"type": kind, **fields}))


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("{", "not JSON"),
        ('{"type": "join", "token": 1, "sessionId": "s"}', "$.token"),
        ('{"type": "leave", "reason": "bored"}', "$.reason"),
        ('{"type": "unknown"}', "$.type"),
        ("[]", "Expected `object`"),
    ],
)
def test_errors_name_the_problem(raw: str, fragment: str) -> None:
    with pytest.raises(protocol.ProtocolError, match=fragment.replace("$", r"\$").replace("[", r"\[")):
        protocol.decode_client_message(raw)


def test_oversize_messages_are_refused_before_parsing() -> None:
    raw = json.dumps({"type": "publish", "sdp": "x" * protocol.MAX_MESSAGE_BYTES})
    with pytest.raises(protocol.ProtocolError, match="exceeds"):
        protocol.decode_client_message(raw)


def test_round_trip() -> None:
    message = protocol.StateUpdate(audio_muted=True)
    assert protocol.decode_client_message(protocol.encode(message)) == message


DEEP = "[" * 1000 + "]" * 1000  # 2 KB, 1,000 levels: within the size limit, beyond the stack


@pytest.mark.parametrize(
    ("decode", "tag"),
    [
        (protocol.decode_client_message, "join"),
        (protocol.decode_server_message, "left"),
        (protocol.decode_chat_client_message, "login"),
        (protocol.decode_chat_server_message, "logged-in"),
    ],
)
def test_deeply_nested_json_is_a_protocol_error_not_a_recursion_error(decode, tag: str) -> None:  # type: ignore[no-untyped-def]
    # An unknown field is skipped rather than typed, which is where the nesting recursed.
    raw = (
        f'{{"type": "{tag}", "extra": {DEEP}, "token": "t", "sessionId": "s", "authToken": "a", "uid": "u"}}'
    )
    with pytest.raises(protocol.ProtocolError, match="nested too deeply"):
        decode(raw)
