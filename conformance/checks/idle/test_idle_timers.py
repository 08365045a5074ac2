"""§E, §B.3: the idle timer followed to its end — after the expiry, a button pressed then,
non-number and fractional periods (weakness class 4)."""

from __future__ import annotations

import pytest

from conformance.api import Sut
from conformance.check import SHOULD, check


@check("E", SHOULD, "virtualClock", items=("E",), closes=(4,))
def test_the_timeout_fires_once_and_nothing_follows(sut: Sut) -> None:
    """After onSessionTimeout, ten more minutes alone bring no second timeout and no other
    callback (§E.6: no local onCallEnded)."""
    alice = sut.client("alice")
    alice.join("s1")
    sut.advance(180)
    alice.wait("onSessionTimeout")
    alice.harness("waitClosed")
    sut.advance(600)
    assert alice.names() == ["onSessionTimeout"]


@check("E", SHOULD, "virtualClock", items=("E", "B.3"), closes=(4,))
@pytest.mark.parametrize("period", ["300", True, None], ids=["string", "boolean", "null"])
def test_a_non_number_period_means_180(sut: Sut, period: object) -> None:
    """§B.3.3: a non-number is not refused; §E: the period is then 180 s."""
    alice = sut.client("alice")
    alice.join("s1", {"setIdleTimeoutPeriod": period})
    sut.advance(179.5)
    assert "onSessionTimeout" not in alice.names()
    sut.advance(0.5)
    alice.wait("onSessionTimeout")


@check("E", SHOULD, "virtualClock", items=("E",), closes=(4,))
def test_a_fractional_period_is_kept(sut: Sut) -> None:
    """§E.9: fractional T allowed: the timeout comes at T, not at a rounded T."""
    alice = sut.client("alice")
    alice.join("s1", {"setIdleTimeoutPeriod": 150.5})
    sut.advance(150.25)
    assert "onSessionTimeout" not in alice.names()
    sut.advance(0.25)
    alice.wait("onSessionTimeout")


@check("E", SHOULD, "virtualClock", "callView", items=("E", "D"), closes=(4,))
def test_leave_now_after_the_expiry_reaches_the_settings_listener_only(sut: Sut) -> None:
    """§E.7: after the expiry the handlers are cleared (§D.9), so "Leave now" on the ended
    view reaches only the settings listener, and no second timeout."""
    alice = sut.client("alice")
    alice.join("s1")
    alice.calls("addCallEventListener", listenerId="a")
    sut.advance(180)
    alice.wait("onSessionTimeout")
    alice.press("leaveNow")
    alice.wait("onCallEndButtonPressed")
    pressed = [e.listener for e in alice.events(None, "onCallEndButtonPressed")]
    assert pressed == ["settings"]
    assert [e.listener for e in alice.events(None, "onSessionTimeout")] == ["a", "settings"]
