"""From a scenario to a plan: who joins when, and every action each participant takes.

The plan is a pure function of the scenario (STYLE rule 11): one root seed, a derived
seed per participant (its Faker identity, its behaviour draws), so the same seed gives
the same identities and the same schedule on any machine. A :class:`Shard` — some
participants, their actions, nothing shared — is what one worker process runs, and is
plain data so that the same shards can later be sent to Ray workers.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Literal

from faker import Faker

from simulator.crowd.scenario import Door, Interval, Scenario
from simulator.media import MediaPath
from simulator.media.impairment import Schedule
from simulator.media.tones import tone_for
from simulator.protocol import Transport

__all__ = ["Action", "ActionKind", "Identity", "Plan", "PlannedParticipant", "Shard", "make_plan"]

ActionKind = Literal[
    "join",
    "leave",
    "mute",
    "unmute",
    "pause",
    "resume",
    "share-start",
    "share-stop",
    "switch-to-video",
    "plug-device",
    "unplug-device",
    "press-mute",
    "ring",
    "answer",
    "snapshot",
]
REJOIN_GAP = 2.0
"""Seconds a churning participant stays away before it rejoins."""
END_MARGIN = 0.01
"""Every action but the final leave happens at least this long before the end."""
QUIET = 4.0
"""No join or leave in the last seconds of a run: user lists must have converged by then."""
SNAPSHOT_BEFORE_END = 1.5
"""When each participant records the user list it believes in (checked against the plan)."""
RING_TIMEOUT = 6
"""Seconds a planned call rings before it is unanswered (short, so runs stay short)."""
CALL_OUTCOME_TIMEOUT = RING_TIMEOUT + 20.0
"""Seconds a caller waits for a planned call's outcome: by then every outcome is known."""


@dataclass(frozen=True, slots=True)
class Identity:
    uid: str
    name: str
    avatar: str


@dataclass(frozen=True, slots=True)
class PlannedParticipant:
    index: int
    identity: Identity
    session_id: str
    profile: str
    media_path: MediaPath
    join_at: float
    seed: int
    network_name: str = ""
    """The participant's network by name ("" or "clean": loopback as it is)."""
    network: Schedule | None = None
    transport: Transport = "bundled"
    door: Door = "native"
    """How it speaks to the backend (:data:`~simulator.crowd.scenario.Door`)."""
    simulcast: bool = False
    """Its camera sends simulcast layers (the Jitsi door's)."""
    canary: bool = False
    """It is the published SDK in Chromium (run by the runner, not a worker): it joins, stays,
    leaves, and is measured; it takes no other action."""

    @property
    def tone_hz(self) -> int:
        """The tone its microphone carries (workers encode it ahead for pre-encoded paths)."""
        return tone_for(self.index)


@dataclass(frozen=True, slots=True, order=True)
class Action:
    at: float
    uid: str
    kind: ActionKind
    target: str = ""
    """For ``ring``: the callee's uid; the answer is in ``detail``."""
    detail: str = ""


@dataclass(frozen=True)
class Shard:
    """What one worker runs: its participants and their actions only."""

    number: int
    seed: int
    participants: tuple[PlannedParticipant, ...]
    actions: tuple[Action, ...]


@dataclass(frozen=True)
class Plan:
    scenario: Scenario
    participants: tuple[PlannedParticipant, ...]
    actions: tuple[Action, ...] = field(default=())

    def without(self, uids: set[str]) -> Plan:
        """This plan but for ``uids`` (the participants of a worker that never reported)."""
        if not uids:
            return self
        return Plan(
            self.scenario,
            tuple(p for p in self.participants if p.identity.uid not in uids),
            tuple(a for a in self.actions if a.uid not in uids and a.target not in uids),
        )

    def shards(self, workers: int) -> list[Shard]:
        """Split by session, whole sessions per worker where possible, balanced by count."""
        workers = max(1, min(workers, sum(not p.canary for p in self.participants)))
        buckets: list[list[PlannedParticipant]] = [[] for _ in range(workers)]
        by_session: dict[str, list[PlannedParticipant]] = {}
        for p in self.participants:
            if p.canary:
                continue  # the runner runs it, in Chromium
            by_session.setdefault(p.session_id, []).append(p)
        for members in sorted(by_session.values(), key=len, reverse=True):
            min(buckets, key=len).extend(members)
        shards = []
        for number, bucket in enumerate(buckets):
            uids = {p.identity.uid for p in bucket}
            actions = tuple(a for a in self.actions if a.uid in uids)
            shards.append(Shard(number, self.scenario.scenario.seed * 1000 + number, tuple(bucket), actions))
        return [s for s in shards if s.participants]


def _draws(rng: random.Random, interval: Interval, start: float, end: float) -> list[tuple[float, float]]:
    """(time, hold) of each occurrence of ``interval`` between ``start`` and ``end``."""
    out: list[tuple[float, float]] = []
    at = start
    while True:
        at += rng.uniform(*interval.every)
        if at >= end:
            return out
        hold = rng.uniform(*interval.hold) if interval.hold else 0.0
        out.append((at, hold))


def _identity(index: int, seed: int) -> Identity:
    faker = Faker()
    faker.seed_instance(seed)
    first = faker.first_name()
    return Identity(f"{first.lower()}-{index}", f"{first} {faker.last_name()}", faker.image_url())


def _network(scenario: Scenario, names: tuple[str, ...], place: int) -> dict[str, Any]:
    """The network of the ``place``-th participant of a session (names are cycled)."""
    if not names:
        return {}
    name = names[place % len(names)]
    schedule = scenario.network(name)
    return {"network_name": name, "network": None if schedule == Schedule() else schedule}


def make_plan(scenario: Scenario) -> Plan:
    """The deterministic plan of ``scenario``."""
    header = scenario.scenario
    end = header.duration
    participants: list[PlannedParticipant] = []
    index = 0
    for group_number, group in enumerate(scenario.sessions):
        for session in range(group.count):
            session_id = f"{header.name}-{group_number}-{session}"
            for place in range(group.participants):
                seed = random.Random(f"{header.seed}/{index}").getrandbits(32)
                participants.append(
                    PlannedParticipant(
                        index=index,
                        identity=_identity(index, seed),
                        session_id=session_id,
                        profile=group.profile,
                        media_path="full" if place < group.full_sample else group.media,
                        join_at=round(min(index / header.join_rate, max(0.0, end / 2 - QUIET)), 3),
                        seed=seed,
                        transport=group.transport,
                        door="jitsi" if place < group.browsers else group.door_of(place),
                        simulcast=group.simulcast and group.door_of(place) == "jitsi",
                        canary=place < group.browsers,
                        **_network(scenario, group.networks, place),
                    )
                )
                index += 1

    actions: list[Action] = []
    behaviours = scenario.behaviours
    for p in participants:
        rng = random.Random(p.seed)
        uid = p.identity.uid
        actions.append(Action(p.join_at, uid, "join"))
        if p.canary:  # the published SDK: it joins, stays, says whom it sees, and leaves
            actions.append(Action(round(end - SNAPSHOT_BEFORE_END, 3), uid, "snapshot"))
            actions.append(Action(end, uid, "leave"))
            continue
        paired: list[tuple[Interval | None, ActionKind, ActionKind]] = [
            (behaviours.mute, "mute", "unmute"),
            (behaviours.pause, "pause", "resume"),
            (behaviours.screen_share if p.profile == "screen-sharer" else None, "share-start", "share-stop"),
            (behaviours.hotplug, "plug-device", "unplug-device"),
        ]
        for interval, on, off in paired:
            if interval is None:
                continue
            for at, hold in _draws(rng, interval, p.join_at, end - 2 * END_MARGIN):
                actions.append(Action(round(at, 3), uid, on))
                # The "off" half lands strictly before the final leave, never with it.
                off_at = min(at + (hold or interval.every[0] / 2), end - END_MARGIN)
                actions.append(Action(round(max(off_at, at), 3), uid, off))
        if behaviours.churn is not None:
            for at, _ in _draws(rng, behaviours.churn, p.join_at, end - QUIET - REJOIN_GAP):
                actions.append(Action(round(at, 3), uid, "leave"))
                actions.append(Action(round(at + REJOIN_GAP, 3), uid, "join"))
        if behaviours.buttons:
            for at, _ in _draws(rng, Interval(every=(10.0, 20.0)), p.join_at, end):
                actions.append(Action(round(at, 3), uid, "press-mute"))
        if behaviours.switch_to_video and p.profile == "audio-only":
            everyone_in = max(q.join_at for q in participants if q.session_id == p.session_id)
            if p == next(q for q in participants if q.session_id == p.session_id):
                actions.append(Action(round(everyone_in + rng.uniform(1.0, 3.0), 3), uid, "switch-to-video"))
        actions.append(Action(round(end - SNAPSHOT_BEFORE_END, 3), uid, "snapshot"))
        actions.append(Action(end, uid, "leave"))

    rng = random.Random(f"{header.seed}/ringing")
    callable_ = [p for p in participants if not p.canary]  # the SDK in Chromium has no Chat SDK here
    ringing = behaviours.ringing
    busy_until: dict[str, float] = {}
    placed = 0
    for _ in range(ringing.calls * 10):  # bounded retries: a pair may be busy or join too late
        if placed == ringing.calls or len(callable_) < 2:
            break
        caller, callee = rng.sample(callable_, 2)
        latest = max(caller.join_at, callee.join_at) + 1.0
        at = round(min(latest + rng.uniform(0.0, max(0.0, end / 2)), end - QUIET - RING_TIMEOUT - 2), 3)
        uids = (caller.identity.uid, callee.identity.uid)
        if at < latest or any(busy_until.get(uid, -1.0) > at - RING_TIMEOUT - 6 for uid in uids):
            continue  # too late to ring out before the end, or a party is in another call
        for uid in uids:
            busy_until[uid] = at
        answer = ringing.answers[placed % len(ringing.answers)]
        placed += 1
        actions.append(Action(at, caller.identity.uid, "ring", callee.identity.uid, answer))
        # The callee learns its planned answer from its own shard (it may run elsewhere).
        actions.append(Action(at, callee.identity.uid, "answer", caller.identity.uid, answer))
    return Plan(scenario, tuple(participants), tuple(sorted(actions)))
