"""The capacity benchmark's search: it finds the largest size that holds from any start,
going down as well as up, says "below" when nothing holds, and explains every failure."""

from __future__ import annotations

import math
from typing import Any

import pytest

from benchmarks.capacity import FIRST_TRY, LADDERS, search, shortfalls
from simulator.crowd.steady import SteadyState
from simulator.media import MediaPath


def _fake(threshold: int, runs: list[int]) -> Any:
    """A machine on which every size up to ``threshold`` holds."""

    def measure(path: MediaPath, size: int) -> dict[str, Any]:
        runs.append(size)
        holds = size <= threshold
        steady = {"generator_per_core": size / 0.5, "backend_per_core": 10.0, "rss_per_participant_mib": 1.0}
        return {
            "participants": size, "holds": holds, "why": "" if holds else "loop lag p99 30 ms ≥ 20 ms",
            "steady": steady if holds else None, "cpu_us_per_packet": 9.0,
            "connect_ms": {"p95": 50}, "join_ms": {"p95": 60},
        }  # fmt: skip

    return measure


@pytest.mark.parametrize("path", list(LADDERS))
def test_the_search_finds_the_largest_size_that_holds_wherever_it_lies(path: MediaPath) -> None:
    ladder = LADDERS[path]
    for threshold in [0, *ladder]:
        runs: list[int] = []
        outcome = search(path, _fake(threshold, runs))
        held = [size for size in ladder if size <= threshold]
        assert outcome["largest_held"] == (held[-1] if held else None)
        assert outcome["below"] == (None if held else ladder[0])
        assert runs[0] == FIRST_TRY[path]
        assert len(runs) <= 1 + math.ceil(math.log2(len(ladder)))  # a bisection, not a walk
        assert outcome["generator_per_core"] is None or outcome["generator_per_core"] > 0
        if threshold < ladder[-1]:
            assert outcome["boundary_failure"].endswith("loop lag p99 30 ms ≥ 20 ms")
            smallest_failed = next(size for size in ladder if size > threshold)
            assert outcome["boundary_failure"].startswith(f"{smallest_failed}: ")


def test_each_shortfall_is_named_with_its_figure() -> None:
    state = SteadyState(
        participants=100, seconds=10.0, delivery=0.95, packet_loss=0.0, generator_cpu_share=0.95,
        generator_lag_p99_ms=25.0, generator_lag_max_ms=40.0, backend_cpu_share=0.5,
        rss_per_participant_mib=1.0, received_packets_per_second=1000.0, jitter_ms=1.0,
    )  # fmt: skip
    assert shortfalls(state, []) == [
        "delivery 95.0 % < 99 %", "loop lag p99 25 ms ≥ 20 ms", "generator CPU 95 % > 90 %"
    ]  # fmt: skip
    assert shortfalls(None, []) == ["no steady window (not everyone joined)"]
    assert shortfalls(state, ["boom"]) == ["worker error: boom"]
