"""Participants per core on each media path: one search per path (see :mod:`capacity`)."""

from __future__ import annotations

import os
from typing import Any

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from benchmarks.capacity import LADDERS, search
from simulator.media import MediaPath

pytestmark = pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="the generator and the SFU need a core each (Linux, 2 cores or more)",
)


@pytest.mark.parametrize("path", list(LADDERS))
def test_participants_per_core(benchmark: BenchmarkFixture, path: MediaPath) -> None:
    benchmark.group = "participants per core"
    outcome: dict[str, Any] = benchmark.pedantic(search, args=(path,), rounds=1, iterations=1)
    benchmark.extra_info.update(outcome)
    assert outcome["steps"], "no size was measured"
    # A result, never a silent zero: a size that held, or "below" the smallest with the reason.
    assert (outcome["largest_held"] is None) == (outcome["below"] is not None)
    assert outcome["generator_per_core"] is None or outcome["generator_per_core"] > 0
