"""Judging a run: the scenario's expectations, each a pass or a fail with the evidence.

SLOs read the merged histograms (p95 of all samples) and counters. The correctness
invariants read the observations the participants recorded, against the plan:

* user lists converge: just before the end, every participant's last user list equals
  the members the plan puts in its session;
* every leave produces the contract's events: each planned mid-run leave is seen as
  ``on_user_left`` by every other member present around it;
* nobody hears a muted participant: no sample, taken a second or more into a mute,
  has the muted participant among those heard;
* every ringing call ends in the status its planned answer implies.

Each result has one of four verdicts. An expectation whose evidence never arose (no mute
in the scenario, no leave before the end) is *not exercised*, never a silent pass. When a
run is interrupted, only what could be decided by then is judged: the rest is *not judged*.
Neither of those two fails a run.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np

from simulator.crowd.metrics import Metrics
from simulator.crowd.plan import CALL_OUTCOME_TIMEOUT, Plan
from simulator.crowd.scenario import NetworkExpectations

__all__ = ["ExpectationResult", "Verdict", "evaluate"]

MUTE_GRACE: Final = 1.0
"""Seconds after a mute during which audio already on its way may still be heard."""
LEAVE_WINDOW: Final = 5.0
"""Seconds within which the others must hear of a leave."""
OUTCOME_OF_ANSWER: Final = {"accept": "ended", "reject": "rejected", "ring-out": "unanswered"}
RING_WINDOW: Final = CALL_OUTCOME_TIMEOUT
"""Seconds after a ring by which its outcome is known (the participant stops waiting then)."""

Verdict = Literal["pass", "fail", "not exercised", "not judged"]
MARKS: Final[dict[Verdict, str]] = {"pass": "✔", "fail": "✘", "not exercised": "–", "not judged": "…"}


@dataclass(frozen=True)
class ExpectationResult:
    """One expectation's verdict with the evidence: what was observed against the limit."""

    name: str
    verdict: Verdict
    observed: str
    limit: str
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.verdict == "fail"

    @property
    def mark(self) -> str:
        """A one-character verdict for tables: ✔ ✘ – (not exercised) … (not judged)."""
        return MARKS[self.verdict]


def _judged(name: str, ok: bool, observed: str, limit: str, detail: str = "") -> ExpectationResult:
    return ExpectationResult(name, "pass" if ok else "fail", observed, limit, detail)


def _slo(
    metrics: Metrics, name: str, histogram: str, limit: float | None, *, interrupted: bool
) -> ExpectationResult | None:
    if limit is None:
        return None
    summary = metrics.summary(histogram)
    if not summary["count"]:
        if interrupted:
            return ExpectationResult(name, "not judged", "no samples", f"p95 ≤ {limit:g} ms", "interrupted")
        return _judged(name, False, "no samples", f"p95 ≤ {limit:g} ms", "nothing was measured")
    p95 = summary["p95"]
    return _judged(name, p95 <= limit, f"p95 {p95:g} ms ({summary['count']} samples)", f"p95 ≤ {limit:g} ms")


def _presence(plan: Plan) -> dict[str, list[tuple[float, float]]]:
    """uid → the (join, leave) intervals the plan gives it."""
    out: dict[str, list[tuple[float, float]]] = defaultdict(list)
    joined: dict[str, float] = {}
    for action in plan.actions:
        if action.kind == "join":
            joined[action.uid] = action.at
        elif action.kind == "leave" and action.uid in joined:
            out[action.uid].append((joined.pop(action.uid), action.at))
    return out


def _present(intervals: list[tuple[float, float]], start: float, end: float) -> bool:
    return any(a <= start and end <= b for a, b in intervals)


def _lists_converge(plan: Plan, metrics: Metrics, until: float) -> ExpectationResult:
    name = "user_lists_converge"
    snapshots_due = max((a.at for a in plan.actions if a.kind == "snapshot"), default=0.0)
    if snapshots_due > until:
        return ExpectationResult(name, "not judged", "no final lists", "all", "interrupted before the end")
    members: dict[str, set[str]] = defaultdict(set)
    for p in plan.participants:
        members[p.session_id].add(p.identity.uid)
    snapshots = metrics.of("list")
    wrong = [s for s in snapshots if set(s["members"]) != members[s["session"]]]
    detail = "; ".join(f"{s['uid']} saw {s['members']}" for s in wrong[:5])
    expected = len(plan.participants)
    passed = not wrong and len(snapshots) == expected
    return _judged(name, passed, f"{len(snapshots) - len(wrong)}/{expected} lists right", "all", detail)


def _leaves_seen(plan: Plan, metrics: Metrics, until: float) -> ExpectationResult:
    presence = _presence(plan)
    session_of = {p.identity.uid: p.session_id for p in plan.participants}
    end = plan.scenario.scenario.duration
    seen = {(o["observer"], o["left"]) for o in metrics.of("left")}
    due = missing = 0
    examples = []
    for action in plan.actions:
        if action.kind != "leave" or action.at >= end or action.at + LEAVE_WINDOW > until:
            continue
        for other in plan.participants:
            uid = other.identity.uid
            if uid == action.uid or session_of[uid] != session_of[action.uid]:
                continue
            if not _present(presence[uid], action.at - 1.0, action.at + LEAVE_WINDOW):
                continue
            due += 1
            if (uid, action.uid) not in seen:
                missing += 1
                examples.append(f"{uid} never heard {action.uid} leave at {action.at:.1f}s")
    if not due:
        return ExpectationResult("leaves_produce_events", "not exercised", "no leave to see", "all")
    return _judged(
        "leaves_produce_events",
        missing == 0,
        f"{due - missing}/{due} leaves seen",
        "all",
        "; ".join(examples[:5]),
    )


def _muted_silent(metrics: Metrics) -> ExpectationResult:
    muted_since: dict[str, float | None] = {}
    violations = []
    samples = 0  # samples taken while someone had been muted past the grace: the ones that test it
    for o in metrics.observations:  # in time order
        if o["kind"] == "mute":
            muted_since[o["uid"]] = o["at"] if o["muted"] else None
        elif o["kind"] == "joined":
            muted_since[o["uid"]] = None  # a fresh session starts unmuted here
        elif o["kind"] == "heard":
            muted = {
                uid
                for uid, since in muted_since.items()
                if since is not None and o["at"] - since >= MUTE_GRACE
            }
            samples += bool(muted) and o["uid"] not in muted
            for speaker in set(o["heard"]) & muted:
                since = muted_since[speaker]
                assert since is not None
                violations.append(f"{o['uid']} heard {speaker} {o['at'] - since:.1f}s into a mute")
    if not samples:
        return ExpectationResult("muted_are_silent", "not exercised", "no sample during a mute", "0")
    return _judged(
        "muted_are_silent", not violations, f"{len(violations)} violations in {samples} samples", "0",
        "; ".join(violations[:5]),
    )  # fmt: skip


def _ringing(plan: Plan, metrics: Metrics, until: float) -> ExpectationResult:
    # A ring whose outcome could not be known by ``until`` is not judged (an interrupted run).
    rings = [a for a in plan.actions if a.kind == "ring"]
    if not rings:
        return ExpectationResult("ringing_ends_correctly", "not exercised", "no call planned", "all")
    planned = sum(1 for a in rings if a.at + RING_WINDOW <= until)
    outcomes = [o for o in metrics.of("ring") if o["at"] + RING_WINDOW <= until]
    wrong = [o for o in outcomes if OUTCOME_OF_ANSWER.get(o["planned"]) != o["outcome"]]
    detail = "; ".join(f"{o['caller']}→{o['callee']} {o['planned']}: {o['outcome']}" for o in wrong[:5])
    right = len(outcomes) - len(wrong)
    if not planned:
        return ExpectationResult(
            "ringing_ends_correctly", "not judged", "no call completed", "all", "interrupted"
        )
    complete = not wrong and len(outcomes) == planned
    return _judged("ringing_ends_correctly", complete, f"{right}/{planned} calls", "all", detail)


def evaluate(
    plan: Plan,
    metrics: Metrics,
    interrupted_at: float | None = None,
    canaries: list[dict[str, Any]] | None = None,
) -> list[ExpectationResult]:
    """Every expectation the scenario sets, in a stable order; ``canaries`` are the canaries'
    figures (:class:`~simulator.crowd.canary.CanaryFigures`), judged by ``[expectations.canaries]``.

    ``interrupted_at`` (seconds of run time) is when Ctrl-C stopped the run: an expectation
    whose window had not completed by then is *not judged* rather than failed.
    """
    expect = plan.scenario.expectations
    interrupted = interrupted_at is not None
    # A complete run waited for every window (the workers' grace covers the last ones).
    until = math.inf if interrupted_at is None else interrupted_at
    results = [
        _slo(metrics, "join_time_p95_ms", "join_ms", expect.join_time_p95_ms, interrupted=interrupted),
        _slo(
            metrics,
            "first_audio_p95_ms",
            "first_audio_ms",
            expect.first_audio_p95_ms,
            interrupted=interrupted,
        ),
        _slo(
            metrics,
            "first_video_p95_ms",
            "first_video_ms",
            expect.first_video_p95_ms,
            interrupted=interrupted,
        ),
        _slo(metrics, "latency_p95_ms", "latency_ms", expect.latency_p95_ms, interrupted=interrupted),
    ]
    out = [r for r in results if r is not None]
    if expect.loss_max_percent is not None:
        loss = loss_percent(metrics)
        limit = f"≤ {expect.loss_max_percent:g} %"
        if metrics.counters["packets_received"] + metrics.counters["packets_lost"]:
            out.append(_judged("loss_max_percent", loss <= expect.loss_max_percent, f"{loss:.2f} %", limit))
        else:
            out.append(ExpectationResult("loss_max_percent", "not exercised", "no RTP received", limit))
    if expect.freezes_max is not None:
        freezes = metrics.counters["freezes"]
        out.append(
            _judged("freezes_max", freezes <= expect.freezes_max, str(freezes), f"≤ {expect.freezes_max}")
        )
    for network, limits in expect.networks.items():
        out.extend(_network_expectations(plan, metrics, network, limits))
    if expect.user_lists_converge:
        out.append(_lists_converge(plan, metrics, until))
    if expect.leaves_produce_events:
        out.append(_leaves_seen(plan, metrics, until))
    if expect.muted_are_silent:
        out.append(_muted_silent(metrics))
    if expect.ringing_ends_correctly and plan.scenario.behaviours.ringing.calls:
        out.append(_ringing(plan, metrics, until))
    if canaries:
        out.extend(_canary_expectations(plan, canaries, interrupted=interrupted))
    return out


def _canary_expectations(
    plan: Plan, canaries: list[dict[str, Any]], *, interrupted: bool
) -> list[ExpectationResult]:
    """The published SDK's view of the run: each canary joined, then what it saw."""
    expect = plan.scenario.expectations.canaries
    failed = [
        f"{c['uid']}: {c['error'] or 'never started its session'}"
        for c in canaries
        if not c["joined"] or c["error"]
    ]
    out = [
        _judged(
            "canaries.joined",
            not failed,
            f"{len(canaries) - len(failed)}/{len(canaries)} canaries in",
            "all",
            "; ".join(failed),
        )
    ]
    firsts = [c["first_frame_ms"] for c in canaries if c["first_frame_ms"] is not None]
    if expect.first_frame_p95_ms is not None:
        limit = f"p95 ≤ {expect.first_frame_p95_ms:g} ms"
        if firsts:
            p95 = float(np.percentile(firsts, 95))
            out.append(
                _judged(
                    "canaries.first_frame_p95_ms",
                    p95 <= expect.first_frame_p95_ms,
                    f"p95 {p95:.0f} ms",
                    limit,
                )
            )
        else:
            verdict: Verdict = "not judged" if interrupted else "fail"
            out.append(
                ExpectationResult("canaries.first_frame_p95_ms", verdict, "no remote frame decoded", limit)
            )
    if expect.freezes_per_minute_max is not None:
        rates = [c["freezes"] / c["minutes"] for c in canaries if c["minutes"] > 0]
        worst = max(rates, default=0.0)
        out.append(
            _judged(
                "canaries.freezes_per_minute_max",
                worst <= expect.freezes_per_minute_max,
                f"{worst:.2f} a minute (the worst canary)",
                f"≤ {expect.freezes_per_minute_max:g}",
            )
        )
    if expect.audio_from_everyone:
        short = [
            f"{c['uid']} heard {c['audible']} of {c['others']}"
            for c in canaries
            if c["audible"] < c["others"]
        ]
        out.append(
            _judged(
                "canaries.audio_from_everyone",
                not short,
                f"{len(canaries) - len(short)}/{len(canaries)} heard everyone",
                "all",
                "; ".join(short),
            )
        )
    return out


def doors_seen(plan: Plan, metrics: Metrics) -> list[dict[str, Any]]:
    """Per door: its participants, joins, leaves, errors and join-time p95 (canaries apart)."""
    rows = []
    for door in sorted({p.door for p in plan.participants if not p.canary}):
        people = [p.identity.uid for p in plan.participants if p.door == door and not p.canary]
        errors = sum(
            int(metrics.by_participant[uid]["errors"]) for uid in people if uid in metrics.by_participant
        )
        rows.append(
            {
                "door": door,
                "participants": len(people),
                "joins": metrics.counters[f"joins@door={door}"],
                "leaves": metrics.counters[f"leaves@door={door}"],
                "errors": errors,
                "join_p95_ms": metrics.summary(f"join_ms@{door}").get("p95"),
            }
        )
    return rows


def loss_percent(metrics: Metrics) -> float:
    """RTP packets lost over expected, summed over every receiving connection of the run."""
    lost, received = metrics.counters["packets_lost"], metrics.counters["packets_received"]
    return 100.0 * lost / (lost + received) if lost + received else 0.0


def _network_expectations(
    plan: Plan, metrics: Metrics, network: str, limits: NetworkExpectations
) -> list[ExpectationResult]:
    """The expectations on one network's participants, each named ``<network>.<expectation>``."""
    c, out = metrics.counters, []
    if limits.loss_max_percent is not None:
        received, lost = c[f"packets_received@{network}"], c[f"packets_lost@{network}"]
        limit = f"≤ {limits.loss_max_percent:g} %"
        if received + lost:
            loss = lost / (received + lost) * 100
            out.append(
                _judged(
                    f"{network}.loss_max_percent", loss <= limits.loss_max_percent, f"{loss:.2f} %", limit
                )
            )
        else:
            out.append(
                ExpectationResult(f"{network}.loss_max_percent", "not exercised", "no RTP received", limit)
            )
    if limits.freezes_per_minute_max is not None:
        people = sum(1 for p in plan.participants if p.network_name == network)
        minutes = people * plan.scenario.scenario.duration / 60
        rate = c[f"freezes@{network}"] / minutes if minutes else 0.0
        out.append(
            _judged(
                f"{network}.freezes_per_minute_max", rate <= limits.freezes_per_minute_max,
                f"{rate:.2f} a minute", f"≤ {limits.freezes_per_minute_max:g}",
            )
        )  # fmt: skip
    if limits.latency_p95_ms is not None:
        name = f"latency_ms@{network}"
        result = _slo(metrics, f"{network}.latency_p95_ms", name, limits.latency_p95_ms, interrupted=False)
        if result is not None:
            out.append(result)
    return out


def networks_seen(plan: Plan, metrics: Metrics) -> dict[str, str]:
    """Per network of the scenario: what its participants' shapers did and what they received."""
    rows: dict[str, str] = {}
    names = sorted({p.network_name for p in plan.participants if p.network_name})
    for name in names:
        c = metrics.counters
        people = sum(1 for p in plan.participants if p.network_name == name)
        received, lost = c[f"packets_received@{name}"], c[f"packets_lost@{name}"]
        loss = f"{lost / (received + lost) * 100:.1f} %" if received + lost else "—"
        shaped = [
            f"{d} {c[f'net_{d}_dropped@{name}'] / c[f'net_{d}_sent@{name}'] * 100:.1f} % dropped"
            for d in ("up", "down")
            if c[f"net_{d}_sent@{name}"]
        ]
        latency = metrics.summary(f"latency_ms@{name}")
        p95 = f"latency p95 {latency['p95']:g} ms" if latency["count"] else "no latency samples"
        sfu = (
            f"; SFU: NACKed {c[f'sfu_nacked@{name}']}, resent {c[f'sfu_resent@{name}']}, PLIs sent "
            f"{c[f'sfu_plis_sent@{name}']}, keyframes asked of them {c[f'sfu_keyframes_asked@{name}']}"
            if any(key.startswith("sfu_") and key.endswith(f"@{name}") for key in c)
            else ""
        )
        shaper = f"; shaper {', '.join(shaped)}" if shaped else ""
        seen_latency = metrics.summary(f"seen_latency_ms_from@{name}")
        others = (
            f"; the others saw of them {c[f'seen_frames_from@{name}']} frames, "
            f"{c[f'seen_freezes_from@{name}']} freezes"
            + (f", latency p95 {seen_latency['p95']:g} ms" if seen_latency["count"] else "")
            if f"seen_frames_from@{name}" in c
            else ""
        )
        freezes = c[f"freezes@{name}"]
        rows[name] = (
            f"{people} participants; RTP loss seen {loss}; freezes {freezes}; {p95}{shaper}{sfu}{others}"
        )
    return rows
