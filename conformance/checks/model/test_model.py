"""A model of §C/§D/§F compared with the implementation after every step.

Four clients, so that audiences and endings with three and four in the session are in
reach; with *ringing*, the Chat SDK's calls between them (ring, accept, reject, cancel,
end) are steps too. The runs are derandomised (the same every time) unless ``--model-random``
or ``--hypothesis-seed`` asks for a seed (the header prints which), and the check
asserts that its runs did reach three participants (and a ringing step, when the profile has
ringing): the width is measured, not hoped for.
"""

from __future__ import annotations

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
from conformance.plugin import hypothesis_seed

NAMES = ("ann", "ben", "cat", "dan")
RINGING_TIMEOUT = 100_000
"""Seconds: far beyond the clock the model moves, so no call goes unanswered unplanned."""
LISTENER_IDS = ("x", "y", "z")
Delivery = tuple[str, str]
"""(listener, callback)."""


class ContractModel(RuleBasedStateMachine):
    """The model: the session's members in join order and each client's listeners."""

    def __init__(self, sut: Sut, reached: dict[str, int]) -> None:
        super().__init__()
        self.sut = sut
        self.reached = reached
        """Across runs: the most participants in the session, and ringing steps taken."""
        sut.call("Harness.reset")
        sut.driver.log.clear()
        self.session = sut.session_id("model")
        self.clients: dict[str, Client] = {name: sut.client(name) for name in NAMES}
        self.members: list[str] = []
        self.handlers: dict[str, list[str]] = {name: [] for name in NAMES}
        self.expected: dict[str, list[Delivery]] = {name: [] for name in NAMES}
        self.ringing = sut.has("ringing")
        self.calls: dict[str, dict[str, str]] = {}
        """sessionId → {"caller", "callee", "status"} for calls not over yet (the model's §F.5)."""
        if self.ringing:
            for name in NAMES:
                sut.user(name)
                self.clients[name].chat("login", uid=name)
                self.clients[name].chat("addCallListener", listenerId="app")

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
        self.reached["members"] = max(self.reached["members"], len(self.members))
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

    # --- ringing (§F.3, §F.4): calls between clients with no call of their own --------------------

    def _busy(self) -> set[str]:
        return {c[role] for c in self.calls.values() for role in ("caller", "callee")}

    def _chat(self, name: str, callback: str) -> None:
        self.expected[name].append(("chat:app", callback))

    def _ringing_step(self) -> None:
        self.reached["ringing"] += 1
        self.settle()

    @precondition(lambda self: self.ringing and len(set(NAMES) - self._busy()) >= 2)
    @rule(data=st.data())
    def initiate_call(self, data: st.DataObject) -> None:
        free = sorted(set(NAMES) - self._busy())
        caller = data.draw(st.sampled_from(free))
        callee = data.draw(st.sampled_from([n for n in free if n != caller]))
        call = self.clients[caller].chat(
            "initiateCall", receiverId=callee, callType="audio", receiverType="user", timeout=RINGING_TIMEOUT
        )
        self.calls[call["sessionId"]] = {"caller": caller, "callee": callee, "status": "initiated"}
        self._chat(callee, "onIncomingCallReceived")
        self._ringing_step()

    def _ringing_calls(self) -> list[str]:
        return sorted(s for s, c in self.calls.items() if c["status"] == "initiated")

    @precondition(lambda self: self.ringing and bool(self._ringing_calls()))
    @rule(data=st.data(), answer=st.sampled_from(["accept", "rejected", "busy", "cancelled"]))
    def answer_call(self, data: st.DataObject, answer: str) -> None:
        session_id = data.draw(st.sampled_from(self._ringing_calls()))
        call = self.calls[session_id]
        if answer == "accept":
            self.clients[call["callee"]].chat("acceptCall", sessionId=session_id)
            call["status"] = "ongoing"
            self._chat(call["caller"], "onOutgoingCallAccepted")
        elif answer == "cancelled":
            self.clients[call["caller"]].chat("rejectCall", sessionId=session_id, status="cancelled")
            del self.calls[session_id]
            self._chat(call["callee"], "onIncomingCallCancelled")
        else:
            self.clients[call["callee"]].chat("rejectCall", sessionId=session_id, status=answer)
            del self.calls[session_id]
            self._chat(call["caller"], "onOutgoingCallRejected")
        self._ringing_step()

    @precondition(lambda self: self.ringing and any(c["status"] == "ongoing" for c in self.calls.values()))
    @rule(data=st.data(), by_caller=st.booleans())
    def end_call(self, data: st.DataObject, by_caller: bool) -> None:
        session_id = data.draw(
            st.sampled_from(sorted(s for s, c in self.calls.items() if c["status"] == "ongoing"))
        )
        call = self.calls.pop(session_id)
        ender, other = (call["caller"], call["callee"]) if by_caller else (call["callee"], call["caller"])
        self.clients[ender].chat("endCall", sessionId=session_id)
        self._chat(other, "onCallEndedMessageReceived")
        self._ringing_step()

    @invariant()
    def each_client_has_the_active_call_the_model_says(self) -> None:
        if not self.ringing:
            return
        for name in NAMES:
            mine = [s for s, c in self.calls.items() if name in (c["caller"], c["callee"])]
            active = self.clients[name].chat("getActiveCall")
            if not mine or (
                self.calls[mine[0]]["status"] == "initiated" and self.calls[mine[0]]["callee"] == name
            ):
                assert active is None, f"{name}: active call {active}"  # a ringing callee has none yet
            else:
                assert active is not None and active["sessionId"] == mine[0], f"{name}: active call {active}"

    # --- the comparison ---------------------------------------------------------------------------

    @invariant()
    def every_client_received_exactly_what_the_model_predicts(self) -> None:
        for name in NAMES:
            assert self.observed(name) == self.expected[name], f"{name}: histories differ"


# An in-process implementation runs on another thread of this process, and its libraries
# (aioice) use the global ``random`` module; hypothesis would take that for a strategy
# using ``random`` during a draw. Nothing here draws from ``random``.
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
@check("D", MUST, "callView", optional=["virtualClock", "ringing"], items=("C", "D"), closes=(10,))
@pytest.mark.timeout(600)  # a browser SDK takes about a second a join
def test_the_implementation_follows_the_model(sut: Sut, pytestconfig: pytest.Config) -> None:
    reached = {"members": 0, "ringing": 0}
    ringing = sut.has("ringing")
    run_state_machine_as_test(
        lambda: ContractModel(sut, reached),  # type: ignore[arg-type]  # a factory is what hypothesis calls
        settings=settings(
            max_examples=int(pytestconfig.getoption("model_examples")),
            stateful_step_count=15,
            # The same runs every time unless a seed was asked for (the suite's header says which),
            # and no replay of an earlier run's failure: the seed alone decides.
            derandomize=hypothesis_seed(pytestconfig) is None,
            database=None,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    # The model's width, measured: its runs put three in one session and, with ringing, rang.
    assert reached["members"] >= 3, f"the model's runs never had three in the session: {reached}"
    assert reached["ringing"] > 0 or not ringing, f"the model's runs never took a ringing step: {reached}"
