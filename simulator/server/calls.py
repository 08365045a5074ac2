"""Calls of the ringing flow on the backend (contract §F): create, change status, route.

Transitions are checked here (§F.5), so an illegal one — ending a call that was never
accepted, accepting a cancelled one, a stranger touching someone else's call — gets a
precise error and changes nothing. Every accepted change is stored first and then
delivered over the chat socket to the users §F.4 names, never to its sender.

Group calls: several members may accept; one member's rejection or busy is told to
the initiator and recorded as that member's answer, and does not end the call.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Final

from simulator import protocol
from simulator.server.chat import ChatHub
from simulator.server.errors import ApiError, Codes
from simulator.server.store import CallRow, Store, UserRecord

__all__ = ["CALL_STATUSES", "CallService"]

INITIATED, ONGOING, ENDED = "initiated", "ongoing", "ended"
REJECTED, BUSY, CANCELLED, UNANSWERED = "rejected", "busy", "cancelled", "unanswered"
CALL_STATUSES: Final = frozenset({INITIATED, ONGOING, REJECTED, BUSY, CANCELLED, UNANSWERED, ENDED})
TERMINAL: Final = frozenset({REJECTED, BUSY, CANCELLED, UNANSWERED, ENDED})


class CallService:
    """Creates calls, applies status changes and delivers them."""

    def __init__(self, store: Store, hub: ChatHub, wall_clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._hub = hub
        self._now = wall_clock

    # --- who is who -----------------------------------------------------------------------

    def _receivers(self, call: CallRow) -> list[str]:
        """The users a call rings: the receiver, or the group's members but the initiator."""
        if call.receiver_type == "user":
            return [call.receiver_id]
        group = self._store.get_group(call.receiver_id)
        return [uid for uid in (group.members if group else ()) if uid != call.initiator]

    def _party(self, uid: str) -> protocol.Party:
        user = self._store.get_user(uid)
        return protocol.Party(id=uid, name=user.name if user else uid, avatar=user.avatar if user else "")

    def _receiver_party(self, call: CallRow) -> protocol.Party:
        if call.receiver_type == "user":
            return self._party(call.receiver_id)
        group = self._store.get_group(call.receiver_id)
        return protocol.Party(
            id=call.receiver_id, name=group.name if group else call.receiver_id, kind="group"
        )

    def entity(self, call: CallRow, sender: str, status: str | None = None) -> protocol.CallEntity:
        """The call as the wire shows it, as changed by ``sender`` (to ``status``)."""
        return protocol.CallEntity(
            session_id=call.session_id,
            status=status or call.status,
            type=call.type,
            receiver_type=call.receiver_type,
            receiver_id=call.receiver_id,
            initiator=self._party(call.initiator),
            receiver=self._receiver_party(call),
            sender=self._party(sender),
            initiated_at=call.initiated_at,
            joined_at=call.joined_at,
            ended_at=call.ended_at,
            updated_at=call.updated_at,
        )

    # --- changes ----------------------------------------------------------------------------

    def create(
        self, initiator: UserRecord, receiver_id: str, receiver_type: str, call_type: str
    ) -> protocol.CallEntity:
        """A new call, ``initiated``, with a fresh session id; rings its receivers."""
        if call_type not in ("audio", "video"):
            raise ApiError(Codes.INVALID_ARGUMENT, f"type must be audio or video, not {call_type!r}")
        if receiver_type == "user":
            if self._store.get_user(receiver_id) is None:
                raise ApiError(Codes.UID_NOT_FOUND, f"no user with uid {receiver_id!r}", 404)
            if receiver_id == initiator.uid:
                raise ApiError(Codes.INVALID_ARGUMENT, "a user cannot call itself")
        elif receiver_type == "group":
            group = self._store.get_group(receiver_id)
            if group is None:
                raise ApiError(Codes.GUID_NOT_FOUND, f"no group with guid {receiver_id!r}", 404)
            if initiator.uid not in group.members:
                raise ApiError(
                    Codes.CALL_NOT_A_PARTICIPANT, f"{initiator.uid!r} is not a member of {receiver_id!r}", 403
                )
        else:
            raise ApiError(
                Codes.INVALID_ARGUMENT, f"receiverType must be user or group, not {receiver_type!r}"
            )
        now = self._now()
        call = CallRow(
            session_id=f"v1.{secrets.token_hex(12)}",
            initiator=initiator.uid,
            receiver_type=receiver_type,
            receiver_id=receiver_id,
            type=call_type,
            status=INITIATED,
            initiated_at=now,
            joined_at=None,
            ended_at=None,
            updated_at=now,
        )
        self._store.insert_call(call)
        entity = self.entity(call, initiator.uid)
        self._hub.deliver(self._receivers(call), protocol.CallMessage(call=entity))
        return entity

    def _get(self, session_id: str) -> CallRow:
        call = self._store.get_call(session_id)
        if call is None:
            raise ApiError(Codes.CALL_NOT_FOUND, f"no call with session id {session_id!r}", 404)
        return call

    def update(self, actor: UserRecord, session_id: str, status: str) -> protocol.CallEntity:
        """Apply ``actor``'s change to ``status``, or refuse it without changing anything."""
        if status not in CALL_STATUSES or status == INITIATED:
            raise ApiError(Codes.CALL_INVALID_STATUS, f"{status!r} is not a status a call can be set to")
        call = self._get(session_id)
        receivers = self._receivers(call)
        is_initiator = actor.uid == call.initiator
        is_receiver = actor.uid in receivers
        if not (is_initiator or is_receiver):
            raise ApiError(Codes.CALL_NOT_A_PARTICIPANT, f"{actor.uid!r} is not a party to this call", 403)
        group = call.receiver_type == "group"
        self._check_transition(call, status, is_initiator=is_initiator, group=group)

        now = self._now()
        stored = status
        if group and status in (REJECTED, BUSY):
            stored = call.status  # one member's answer does not end a group call (§F.5)
        changed = CallRow(
            session_id=call.session_id,
            initiator=call.initiator,
            receiver_type=call.receiver_type,
            receiver_id=call.receiver_id,
            type=call.type,
            status=stored,
            initiated_at=call.initiated_at,
            joined_at=call.joined_at if call.joined_at is not None or status != ONGOING else now,
            ended_at=now if stored in TERMINAL else None,
            updated_at=now,
        )
        self._store.update_call(changed)
        if is_receiver and status in (ONGOING, REJECTED, BUSY):
            self._store.record_answer(call.session_id, actor.uid, status)
        entity = self.entity(changed, actor.uid, status)
        self._hub.deliver(
            self._route(changed, status, actor.uid, receivers), protocol.CallMessage(call=entity)
        )
        return entity

    @staticmethod
    def _check_transition(call: CallRow, status: str, *, is_initiator: bool, group: bool) -> None:
        def refuse(why: str) -> ApiError:
            return ApiError(
                Codes.CALL_INVALID_TRANSITION, f"cannot set a {call.status} call to {status}: {why}", 409
            )

        if call.status in TERMINAL:
            raise refuse("the call is over")
        if status in (ONGOING, REJECTED, BUSY):
            if is_initiator:
                raise refuse("only a receiver answers a call")
            if call.status == ONGOING and not group:
                raise refuse("the call was already answered")
        elif status in (CANCELLED, UNANSWERED):
            if not is_initiator:
                raise refuse("only the initiator cancels or gives up ringing")
            if call.status != INITIATED:
                raise refuse("the call was already answered")
        elif status == ENDED and call.status != ONGOING:
            raise refuse("a call that was never accepted cannot end; cancel or reject it")

    def _route(self, call: CallRow, status: str, sender: str, receivers: list[str]) -> list[str]:
        """§F.4: who is told of this change (never its sender)."""
        if status in (ONGOING, REJECTED, BUSY):
            targets = [call.initiator]
        elif status in (CANCELLED, UNANSWERED):
            targets = receivers
        else:  # ended: everyone in the call
            targets = [call.initiator, *receivers]
        return [uid for uid in targets if uid != sender]

    # --- presence and details -----------------------------------------------------------------

    def participant_joined(self, session_id: str, uid: str) -> None:
        """Record that ``uid`` joined the call's media session (no-op for session-only calls)."""
        if self._store.get_call(session_id) is not None:
            self._store.participant_joined(session_id, uid, self._now())

    def participant_left(self, session_id: str, uid: str) -> None:
        if self._store.get_call(session_id) is not None:
            self._store.participant_left(session_id, uid, self._now())

    def recover(self) -> int:
        """At start, nothing is live yet: every call and presence a previous process left open
        (a crash, a kill, a restart) is closed now. Ongoing calls end, ringing ones were not
        answered, and whoever was in a session left it. The number of records closed."""
        return self._store.close_interrupted(
            self._now(), ongoing=ONGOING, ended=ENDED, ringing=INITIATED, unanswered=UNANSWERED
        )

    def exists(self, session_id: str) -> bool:
        return self._store.get_call(session_id) is not None

    def details(self, session_id: str, viewer: str) -> dict[str, object]:
        """The call with its answers and who was in its session when (``getCallDetails``),
        for one of its parties or someone who was in its session; ERR_CALL_NOT_A_PARTICIPANT
        for anyone else."""
        call = self._get(session_id)
        present = {p.uid for p in self._store.presence(session_id)}
        if viewer != call.initiator and viewer not in self._receivers(call) and viewer not in present:
            raise ApiError(Codes.CALL_NOT_A_PARTICIPANT, f"{viewer!r} is not a party to this call", 403)
        data = protocol.to_json_data(self.entity(call, call.initiator))
        assert isinstance(data, dict)
        data.pop("sender", None)
        data["answers"] = self._store.answers(session_id)
        data["participants"] = [
            {
                "uid": p.uid,
                "name": self._party(p.uid).name,
                "joinedAt": p.joined_at,
                "leftAt": p.left_at,
            }
            for p in self._store.presence(session_id)
        ]
        return data
