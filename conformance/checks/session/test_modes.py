"""§J, §B.1: every mode constant, in the builder and in a session (weakness class 9)."""

from __future__ import annotations

import pytest

from conformance.api import Sut
from conformance.check import SHOULD, check

MODES = ("DEFAULT", "SPOTLIGHT", "GRID")


def constant(sut: Sut, key: str) -> str:
    return str(sut.call("Harness.constants")["CALL_MODE"][key])


@check("J", SHOULD, items=("J", "B.1"), closes=(9,))
@pytest.mark.parametrize("key", MODES)
def test_the_builder_keeps_each_mode(sut: Sut, key: str) -> None:
    """``setMode(CALL_MODE.<key>)`` reads back as that constant's value."""
    value = constant(sut, key)
    result = sut.call("CometChatCalls.CallSettingsBuilder", calls={"setMode": value})
    assert result["getters"]["getMode"] == value


@check("J", SHOULD, "callView", items=("J",), closes=(9,))
@pytest.mark.parametrize("key", MODES)
def test_set_mode_in_a_session_takes_each_mode(sut: Sut, key: str) -> None:
    """At runtime, each constant becomes the layout's mode, from another one, with no callback."""
    alice = sut.client("alice")
    start = "SPOTLIGHT" if key == "DEFAULT" else "DEFAULT"
    alice.join("s1", {"setMode": constant(sut, start)})
    alice.calls("setMode", mode=constant(sut, key))
    assert alice.view()["mode"] == constant(sut, key)
    assert alice.names() == []


@check("J", SHOULD, "callView", items=("J", "B.1"), closes=(9,))
@pytest.mark.parametrize("key", MODES)
def test_a_session_starts_in_the_builders_mode(sut: Sut, key: str) -> None:
    alice = sut.client("alice")
    alice.join("s1", {"setMode": constant(sut, key)})
    assert alice.view()["mode"] == constant(sut, key)
