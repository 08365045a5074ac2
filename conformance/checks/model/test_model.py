"""A model of §C/§D/§F.7 compared with the implementation after every step."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from conformance.api import Client, Sut
from conformance.check import MUST, check

NAMES = ("ann", "ben", "cat")
LISTENER_IDS = ("x", "y", "z")
Delivery = tuple[str, str]
"""(listener, callback)."""


class ContractModel(RuleBasedStateMachine):
    """The model: the session's members in join order and each client's listeners."""

    def __init__(self, sut: Sut) -> None:
        super().__init__()
        self.sut = sut
        sut.call("Harness.reset")
        sut.driver.log.clear()
        self.session = sut.session_id("model")
        self.clients: dict[str, Client] = {name: sut.client(name) for name in NAMES}
        self.members: list[str] = []
        self.handlers: dict[str, list[str]] = {name: [] for name in NAMES}
        self.expected: dict[str, list[Delivery]] = {name: [] for name in NAMES}

    # --- the model's predictions ----------------------------------------------------------------

    def deliver(self, name: str, callback: str) -> None:
        """``callback`` reaches ``name``'s handlers in order, then its settings listener (§D.6)."""
        self.expected[name] += [(h, callback) for h in self.handlers[name]] + [("settings", callback)]
        if callback in ("onCallEnded", "onSessionTimeout", "onCallEndButtonPressed"):
            self.handlers[name] = []  # §D.9

    def observed(self, name: str) -> list[Delivery]:
        ignored = {"onMediaDeviceListUpdated"}
        return [
            (e.listener, e.callback) for e in self.clients[name].events(None) if e.callback not in ignored
        ]

    def settle(self) -> None:
        """Wait until every client got as many callbacks as the model predicts."""
        self.sut.wait_events(lambda _: all(len(self.observed(n)) >= len(self.expected[n]) for n in NAMES))

    # --- rules named after contract methods -------------------------------------------------------

    @initialize()
    def start(self) -> None:
        pass

    @precondition(lambda self: len(self.members) < len(NAMES))
    @rule(data=st.data())
    def start_session(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from([n for n in NAMES if n not in self.members]))
        self.clients[name].join(self.session)
        for other in self.members:  # K10: the joiner hears of each one already there
            self.deliver(name, "onUserJoined")
            self.deliver(name, "onUserListUpdated")
            self.deliver(other, "onUserJoined")
            self.deliver(other, "onUserListUpdated")
        self.members.append(name)
        self.settle()

    def _leave(self, name: str) -> None:
        self.members.remove(name)
        for other in self.members:
            self.deliver(other, "onUserLeft")
            self.deliver(other, "onUserListUpdated")
            if len(self.members) == 1:
                self.deliver(other, "onCallEnded")  # K4: the one left alone

    @precondition(lambda self: bool(self.members))
    @rule(data=st.data())
    def end_session(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(self.members))
        self.clients[name].end()
        self._leave(name)
        self.settle()

    @precondition(lambda self: bool(self.members))
    @rule(data=st.data())
    def press_end_call_button(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(self.members))
        self.clients[name].press("endCall")
        self.clients[name].harness("waitClosed")
        self.deliver(name, "onCallEndButtonPressed")
        self._leave(name)
        self.settle()

    @precondition(lambda self: bool(self.members))
    @rule(data=st.data(), mute=st.booleans())
    def mute_audio(self, data: st.DataObject, mute: bool) -> None:
        self.clients[data.draw(st.sampled_from(self.members))].calls(
            "muteAudio", mute=mute
        )  # K13: no callback

    @rule(name=st.sampled_from(NAMES), listener_id=st.sampled_from(LISTENER_IDS))
    def add_call_event_listener(self, name: str, listener_id: str) -> None:
        self.clients[name].calls("addCallEventListener", listenerId=listener_id)
        self.handlers[name] = [h for h in self.handlers[name] if h != listener_id] + [listener_id]

    @rule(name=st.sampled_from(NAMES), listener_id=st.sampled_from(LISTENER_IDS))
    def remove_call_event_listener(self, name: str, listener_id: str) -> None:
        self.clients[name].calls("removeCallEventListener", listenerId=listener_id)
        self.handlers[name] = [h for h in self.handlers[name] if h != listener_id]

    @rule(seconds=st.floats(min_value=0.1, max_value=20))
    def advance_clock(self, seconds: float) -> None:
        if self.sut.has("virtualClock"):
            self.sut.advance(seconds)  # far below any idle period: nothing may fire but device lists

    # --- the comparison ---------------------------------------------------------------------------

    @invariant()
    def every_client_received_exactly_what_the_model_predicts(self) -> None:
        for name in NAMES:
            assert self.observed(name) == self.expected[name], f"{name}: histories differ"


# An in-process implementation runs on another thread of this process, and its libraries
# (aioice) use the global ``random`` module; hypothesis would take that for a strategy
# using ``random`` during a draw. Nothing here draws from ``random``.
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
@check("D", MUST, "callView", optional=["virtualClock"])
@pytest.mark.timeout(600)  # a browser SDK takes about a second a join
def test_the_implementation_follows_the_model(sut: Sut, pytestconfig: pytest.Config) -> None:
    run_state_machine_as_test(
        lambda: ContractModel(sut),  # type: ignore[arg-type]  # a factory is what hypothesis calls
        settings=settings(
            max_examples=int(pytestconfig.getoption("model_examples")),
            stateful_step_count=15,
            derandomize=os.environ.get("HYPOTHESIS_PROFILE") == "ci",  # CI replays the same runs
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
