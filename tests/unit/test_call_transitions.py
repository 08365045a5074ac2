"""§F.5 on the backend: every status change by every party, allowed or refused precisely."""

from __future__ import annotations

import itertools

import pytest

from simulator import protocol
from simulator.chat.client import normalise_timeout
from simulator.chat.errors import call_error
from simulator.server.admission import Admission, Limits
from simulator.server.calls import CALL_STATUSES, CallService
from simulator.server.chat import ChatHub
from simulator.server.errors import ApiError, Codes
from simulator.server.store import Store, UserRecord

ALICE, BOB, CAROL, MALLORY = (UserRecord(u, u.title(), "") for u in ("alice", "bob", "carol", "mallory"))


class Hub(ChatHub):
    """Records deliveries instead of sending them (the socket is tested end to end)."""

    def __init__(self, store: Store) -> None:
        super().__init__(store, Admission(Limits()))
        self.sent: list[tuple[list[str], str]] = []

    def deliver(self, uids, message) -> int:  # type: ignore[no-untyped-def, override]
        assert isinstance(message, protocol.CallMessage)
        self.sent.append((list(uids), message.call.status))
        return 0


@pytest.fixture
def service() -> tuple[CallService, Hub, Store]:
    store = Store()
    for user in (ALICE, BOB, CAROL, MALLORY):
        store.create_user(user.uid, user.name)
    store.create_group("team", "Team", ["alice", "bob", "carol"])
    hub = Hub(store)
    return CallService(store, hub), hub, store


def reach(service: CallService, state: str, *, group: bool = False) -> str:
    """A call from alice in ``state`` (reached by legal steps)."""
    receiver = ("team", "group") if group else ("bob", "user")
    call = service.create(ALICE, receiver[0], receiver[1], "video")
    steps = {
        "initiated": [],
        "ongoing": [(BOB, "ongoing")],
        "rejected": [(BOB, "rejected")],
        "busy": [(BOB, "busy")],
        "cancelled": [(ALICE, "cancelled")],
        "unanswered": [(ALICE, "unanswered")],
        "ended": [(BOB, "ongoing"), (ALICE, "ended")],
    }[state]
    for actor, status in steps:
        service.update(actor, call.session_id, status)
    return call.session_id


# (from, to, by) → allowed, for a 1:1 call; everything not listed is refused.
ALLOWED_1TO1 = {
    ("initiated", "ongoing", "bob"),
    ("initiated", "rejected", "bob"),
    ("initiated", "busy", "bob"),
    ("initiated", "cancelled", "alice"),
    ("initiated", "unanswered", "alice"),
    ("ongoing", "ended", "alice"),
    ("ongoing", "ended", "bob"),
}
STATES = ["initiated", "ongoing", "rejected", "busy", "cancelled", "unanswered", "ended"]
TARGETS = sorted(CALL_STATUSES - {"initiated"})


@pytest.mark.parametrize(
    ("state", "status", "actor"), list(itertools.product(STATES, TARGETS, ["alice", "bob"]))
)
def test_one_to_one_transitions(service, state: str, status: str, actor: str) -> None:  # type: ignore[no-untyped-def]
    calls, _, store = service
    session_id = reach(calls, state)
    before = store.get_call(session_id)
    user = ALICE if actor == "alice" else BOB
    if (state, status, actor) in ALLOWED_1TO1:
        entity = calls.update(user, session_id, status)
        assert entity.status == status
        stored = store.get_call(session_id)
        assert stored is not None and stored.status == status
        assert (stored.ended_at is not None) == (status != "ongoing")
    else:
        with pytest.raises(ApiError) as caught:
            calls.update(user, session_id, status)
        assert caught.value.code == Codes.CALL_INVALID_TRANSITION
        assert store.get_call(session_id) == before  # nothing changed


@pytest.mark.parametrize("status", TARGETS)
def test_a_stranger_cannot_touch_a_call(service, status: str) -> None:  # type: ignore[no-untyped-def]
    calls, _, store = service
    session_id = reach(calls, "initiated")
    with pytest.raises(ApiError) as caught:
        calls.update(MALLORY, session_id, status)
    assert caught.value.code == Codes.CALL_NOT_A_PARTICIPANT
    assert store.get_call(session_id).status == "initiated"  # type: ignore[union-attr]


@pytest.mark.parametrize("status", ["initiated", "missed", "", "ONGOING"])
def test_unknown_or_initial_statuses_are_refused(service, status: str) -> None:  # type: ignore[no-untyped-def]
    calls, _, _ = service
    with pytest.raises(ApiError) as caught:
        calls.update(BOB, reach(calls, "initiated"), status)
    assert caught.value.code == Codes.CALL_INVALID_STATUS


def test_unknown_call_and_bad_creation(service) -> None:  # type: ignore[no-untyped-def]
    calls, _, _ = service
    with pytest.raises(ApiError, match="no call"):
        calls.update(BOB, "nope", "ongoing")
    for args, code in [
        (("nobody", "user", "video"), Codes.UID_NOT_FOUND),
        (("alice", "user", "video"), Codes.INVALID_ARGUMENT),
        (("bob", "user", "hologram"), Codes.INVALID_ARGUMENT),
        (("bob", "channel", "video"), Codes.INVALID_ARGUMENT),
        (("nogroup", "group", "audio"), Codes.GUID_NOT_FOUND),
    ]:
        with pytest.raises(ApiError) as caught:
            calls.create(ALICE, *args)
        assert caught.value.code == code
    with pytest.raises(ApiError) as caught:
        calls.create(MALLORY, "team", "group", "audio")
    assert caught.value.code == Codes.CALL_NOT_A_PARTICIPANT


def test_routing_follows_f4_and_never_echoes_the_sender(service) -> None:  # type: ignore[no-untyped-def]
    calls, hub, _ = service
    session_id = reach(calls, "ended")
    assert hub.sent == [(["bob"], "initiated"), (["alice"], "ongoing"), (["bob"], "ended")]
    hub.sent.clear()
    reach(calls, "cancelled")
    assert hub.sent == [(["bob"], "initiated"), (["bob"], "cancelled")]
    assert session_id


def test_group_calls_many_accept_one_rejection_does_not_end(service) -> None:  # type: ignore[no-untyped-def]
    calls, hub, store = service
    session_id = reach(calls, "initiated", group=True)
    assert hub.sent[-1] == (["bob", "carol"], "initiated")
    assert calls.update(CAROL, session_id, "rejected").status == "rejected"
    assert store.get_call(session_id).status == "initiated"  # type: ignore[union-attr]
    assert hub.sent[-1] == (["alice"], "rejected")
    calls.update(BOB, session_id, "ongoing")
    calls.update(CAROL, session_id, "ongoing")  # changed her mind: a second accept is fine
    assert store.get_call(session_id).status == "ongoing"  # type: ignore[union-attr]
    assert store.answers(session_id) == {"bob": "ongoing", "carol": "ongoing"}
    calls.update(BOB, session_id, "ended")
    assert hub.sent[-1] == (["alice", "carol"], "ended")


@pytest.mark.parametrize(
    ("given", "seconds"),
    [(None, 45), (0, 45), (-3, 45), (10.7, 10), ("30", 45), (float("nan"), 45), (True, 45), (1, 1)],
)
def test_ringing_timeout_normalisation_k31(given: object, seconds: int) -> None:
    assert normalise_timeout(given) == seconds


def test_call_error_table_h2() -> None:
    error = call_error("ERROR_IN_CALLING")
    assert (error.code, error.name, error.message, error.details) == (
        "CALL_IN_PROGRESS",
        "CALL_ALREADY_INITIATED",
        "There is already call in progress",
        {},
    )
    invalid = call_error("ERROR_INVALID_TYPE")
    assert invalid.details == ""
    assert invalid.message == "The provided type cannot be null or empty. Please provide a valid type."
