"""Participants per core on each media path, measured the way a load test runs.

Each measurement is a real ``callsim run``: rooms of 4, every participant sending
VP8 320×240 @ 15 fps + Opus 20 ms and receiving 3 + 3 streams through the reference
SFU, joining at 50 joins/s. The backend and SFU run in this process pinned to one core,
the generator in one worker process pinned to the other (``run_scenario(pin=True)``).
Figures come from the steady window (:mod:`simulator.crowd.steady`): everyone in,
joins over.

A size *holds* when ≥ 99 % of the frames due arrive, the generator's event-loop
lag p99 stays under 20 ms and it uses at most 90 % of its core. Each path climbs its
ladder of sizes until one does not hold; its figure is the largest size that held,
as participants per core (size / the generator's share of its core), and the same for
the SFU. All three paths run in the same session, so their ratio compares like with like.
"""

from __future__ import annotations

import os
from typing import Any, Final

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from simulator import eventloop
from simulator.crowd.runner import run_scenario
from simulator.crowd.scenario import Header, Scenario, Sessions
from simulator.crowd.steady import SteadyState
from simulator.media import MediaPath

LADDERS: Final[dict[MediaPath, tuple[int, ...]]] = {
    "full": (4, 8, 12),
    "passthrough": (16, 32, 48, 64),
    "lean": (100, 200, 300),
}
JOIN_RATE: Final = 50.0
MIN_DELIVERY: Final = 0.99
MAX_LAG_MS: Final = 20.0
MAX_CPU_SHARE: Final = 0.9

pytestmark = pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="the generator and the SFU need a core each (Linux, 2 cores or more)",
)


def holds(state: SteadyState) -> bool:
    return (
        state.delivery >= MIN_DELIVERY
        and state.generator_lag_p99_ms < MAX_LAG_MS
        and state.generator_cpu_share <= MAX_CPU_SHARE
    )


def measure(path: MediaPath, participants: int) -> dict[str, Any]:
    """One pinned run of ``participants`` on ``path``; its steady state and join times."""
    joining = participants / JOIN_RATE
    scenario = Scenario(
        scenario=Header(
            name=f"capacity-{path}-{participants}",
            seed=6,
            duration=max(18.0, 2 * (joining + 4.0) + 4.0),
            join_rate=JOIN_RATE,
        ),
        sessions=(Sessions(count=participants // 4, participants=4, media=path),),
    )
    result = eventloop.run(run_scenario(scenario, workers=1, pin=True))
    state = result.steady
    # Rooms of 4: each packet sent is received three times, so the generator handles 4/3 of
    # what it receives; CPU per packet is over packets sent and received alike.
    handled = state.received_packets_per_second * 4 / 3 if state else 0.0
    return {
        "cpu_us_per_packet": round(state.generator_cpu_share * 1e6 / handled, 1)
        if state and handled
        else None,
        "participants": participants,
        "steady": None if state is None else state.to_data(),
        "holds": state is not None and holds(state) and not result.worker_errors,
        "join_ms": result.metrics.summary("join_ms"),
        "connect_ms": result.metrics.summary("connect_ms"),
        "errors": result.worker_errors,
    }


def climb(path: MediaPath) -> dict[str, Any]:
    """Climb ``path``'s ladder; the largest size that held and every step taken."""
    steps = []
    for size in LADDERS[path]:
        step = measure(path, size)
        steps.append(step)
        if not step["holds"]:
            break
    held = [s for s in steps if s["holds"]]
    best = held[-1] if held else None
    steady = best["steady"] if best else None
    return {
        "path": path,
        "steps": steps,
        "largest_held": best["participants"] if best else 0,
        "generator_per_core": steady["generator_per_core"] if steady else 0.0,
        "sfu_per_core": steady["backend_per_core"] if steady else None,
        "rss_per_participant_mib": steady["rss_per_participant_mib"] if steady else None,
        "cpu_us_per_packet": best["cpu_us_per_packet"] if best else None,
        "connect_p95_ms": best["connect_ms"].get("p95") if best else None,
        "first_size": steps[0]["participants"],
        "first_connect_p95_ms": steps[0]["connect_ms"].get("p95"),
        "join_p95_ms": best["join_ms"].get("p95") if best else None,
    }


@pytest.mark.parametrize("path", list(LADDERS))
def test_participants_per_core(benchmark: BenchmarkFixture, path: MediaPath) -> None:
    benchmark.group = "participants per core"
    outcome: dict[str, Any] = benchmark.pedantic(climb, args=(path,), rounds=1, iterations=1)
    benchmark.extra_info.update(outcome)
    assert outcome["steps"], "no size was measured"
