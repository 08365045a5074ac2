"""Capacity of a media path: participants per core, measured the way a load test runs.

Each measurement is a real ``callsim run``: rooms of 4, every participant sending
VP8 320×240 @ 15 fps + Opus 20 ms and receiving 3 + 3 streams through the reference
SFU, joining at 50 joins/s. The backend and SFU run in this process pinned to one core,
the generator in one worker process pinned to the other (``run_scenario(pin=True)``).
Figures come from the steady window (:mod:`simulator.crowd.steady`): everyone in,
joins over.

A size *holds* when ≥ 99 % of the frames due arrive, the generator's event-loop
lag p99 stays under 20 ms and it uses at most 90 % of its core. Each path *searches* its
ladder of sizes (a bisection that starts at the usual size, so it goes down on a busy
machine as well as up on a fast one); its figure is the largest size that held, as
participants per core (size / the generator's share of its core), and the same for the
SFU. When even the smallest size fails, the figure is "below" that size, never zero.
Every failed step says why. All three paths run in the same session, so their ratio
compares sizes that held on the same machine at the same time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from simulator import eventloop
from simulator.crowd.jitsi import XMPP_PHASES
from simulator.crowd.runner import run_scenario
from simulator.crowd.scenario import Door, Header, Scenario, Sessions
from simulator.crowd.steady import SteadyState
from simulator.media import MediaPath

LADDERS: Final[dict[MediaPath, tuple[int, ...]]] = {
    "full": (4, 8, 12),
    "passthrough": (8, 16, 32, 48, 64),
    "lean": (24, 48, 100, 200, 300),
}
"""Sizes per path (multiples of the room size, 4), smallest first."""
FIRST_TRY: Final[dict[MediaPath, int]] = {"full": 8, "passthrough": 16, "lean": 100}
"""Where each search starts: the size that held on the reference machine's busier runs."""
JOIN_RATE: Final = 50.0
MIN_DELIVERY: Final = 0.99
MAX_LAG_MS: Final = 20.0
MAX_CPU_SHARE: Final = 0.9


def shortfalls(state: SteadyState | None, errors: list[str]) -> list[str]:
    """Why a size did not hold (empty when it held), each reason with its figure."""
    if errors:
        return [f"worker error: {errors[0]}"]
    if state is None:
        return ["no steady window (not everyone joined)"]
    why = []
    if state.delivery < MIN_DELIVERY:
        why.append(f"delivery {state.delivery * 100:.1f} % < {MIN_DELIVERY * 100:g} %")
    if state.generator_lag_p99_ms >= MAX_LAG_MS:
        why.append(f"loop lag p99 {state.generator_lag_p99_ms:g} ms ≥ {MAX_LAG_MS:g} ms")
    if state.generator_cpu_share > MAX_CPU_SHARE:
        why.append(f"generator CPU {state.generator_cpu_share * 100:.0f} % > {MAX_CPU_SHARE * 100:g} %")
    return why


def measure(
    path: MediaPath, participants: int, door: Door = "native", join_rate: float = JOIN_RATE
) -> dict[str, Any]:
    """One pinned run of ``participants`` on ``path`` through ``door``; its steady state, join
    times and, through the Jitsi door, Prosody's CPU and where the joins went."""
    joining = participants / join_rate
    scenario = Scenario(
        scenario=Header(
            name=f"capacity-{door}-{path}-{participants}",
            seed=6,
            duration=max(18.0, 2 * (joining + 4.0) + 4.0),
            join_rate=join_rate,
        ),
        sessions=(Sessions(count=participants // 4, participants=4, media=path, door=door),),
    )
    result = eventloop.run(run_scenario(scenario, workers=1, pin=True))
    state = result.steady
    # Rooms of 4: each packet sent is received three times, so the generator handles 4/3 of
    # what it receives; CPU per packet is over packets sent and received alike.
    handled = state.received_packets_per_second * 4 / 3 if state else 0.0
    why = shortfalls(state, result.worker_errors)
    return {
        "cpu_us_per_packet": round(state.generator_cpu_share * 1e6 / handled, 1)
        if state and handled
        else None,
        "participants": participants,
        "steady": None if state is None else state.to_data(),
        "holds": not why,
        "why": "; ".join(why),
        "join_ms": result.metrics.summary("join_ms"),
        "connect_ms": result.metrics.summary("connect_ms"),
        "xmpp_phases_p95_ms": {
            phase: result.metrics.summary(f"xmpp_{phase}_ms").get("p95") for phase in XMPP_PHASES
        }
        if door == "jitsi"
        else None,
        "backend_cpu_share": result.backend_cpu_share,
        "prosody_cpu_share": result.prosody_cpu_share,
        "invariants_held": result.passed,
        "failed_expectations": [f"{e.name}: {e.observed}" for e in result.expectations if e.failed],
        "errors": result.worker_errors,
    }


def search(path: MediaPath, measure: Callable[[MediaPath, int], dict[str, Any]] = measure) -> dict[str, Any]:
    """The largest size on ``path``'s ladder that holds, by bisection from ``FIRST_TRY``.

    Holding is taken to be monotonic in size (more participants never make it easier),
    so each step halves the sizes still in doubt: at most ⌈log2(len + 1)⌉ runs per path.
    """
    ladder = LADDERS[path]
    held, failed = -1, len(ladder)  # indices: the largest known to hold, the smallest known to fail
    index = ladder.index(FIRST_TRY[path])
    steps = []
    while held + 1 < failed:
        step = measure(path, ladder[index])
        steps.append(step)
        if step["holds"]:
            held = index
        else:
            failed = index
        index = (held + failed) // 2  # strictly between the two while a size is in doubt
    best = next((s for s in steps if s["participants"] == ladder[held]), None) if held >= 0 else None
    steady = best["steady"] if best else None
    return {
        "path": path,
        "steps": steps,
        "largest_held": best["participants"] if best else None,
        "below": None if best else ladder[0],
        # The smallest size that failed: just above what held, or the "below" size itself.
        "boundary_failure": min(
            ((s["participants"], f"{s['participants']}: {s['why']}") for s in steps if not s["holds"]),
            default=(0, None),
        )[1],
        "generator_per_core": steady["generator_per_core"] if steady else None,
        "sfu_per_core": steady["backend_per_core"] if steady else None,
        "rss_per_participant_mib": steady["rss_per_participant_mib"] if steady else None,
        "cpu_us_per_packet": best["cpu_us_per_packet"] if best else None,
        "connect_p95_ms": best["connect_ms"].get("p95") if best else None,
        "join_p95_ms": best["join_ms"].get("p95") if best else None,
    }
