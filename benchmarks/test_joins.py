"""Joins at scale, split against bundled, in the same run (see :mod:`benchmarks.joins`)."""

from __future__ import annotations

import os
from typing import Any

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from benchmarks.joins import (
    RATES,
    SIZES,
    TRANSPORTS,
    churn_descriptions,
    join_into_a_full_room,
    measure_joins_apart,
)
from simulator import eventloop
from simulator.protocol import Transport

needs_two_cores = pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="the generator and the backend need a core each (Linux, 2 cores or more)",
)


@needs_two_cores
@pytest.mark.parametrize("transport", TRANSPORTS)  # the outermost varies fastest: pairs run side by side
@pytest.mark.parametrize("rate", RATES, ids=lambda rate: f"{rate:g}-per-s")
@pytest.mark.parametrize("participants", SIZES)
def test_joins(benchmark: BenchmarkFixture, transport: Transport, participants: int, rate: float) -> None:
    benchmark.group = f"joins: {participants} at {rate:g}/s"
    outcome: dict[str, Any] = benchmark.pedantic(
        measure_joins_apart, args=(transport, participants, rate), rounds=1, iterations=1
    )
    benchmark.extra_info.update(outcome)
    assert outcome["connect_count"] > 0, f"nobody connected: {outcome['errors']}"


@needs_two_cores
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_join_into_a_full_room(benchmark: BenchmarkFixture, transport: Transport) -> None:
    benchmark.group = "join cost: into a room of 3, one at a time"
    outcome: dict[str, Any] = benchmark.pedantic(
        lambda: eventloop.run(join_into_a_full_room(transport)), rounds=1, iterations=1
    )
    benchmark.extra_info.update(outcome)
    assert outcome["backend_cpu_per_join_ms"] > 0
    assert outcome["client_cpu_per_join_ms"] > 0


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_description_under_churn(benchmark: BenchmarkFixture, transport: Transport) -> None:
    benchmark.group = "description under churn"
    sizes: list[int] = benchmark.pedantic(
        lambda: eventloop.run(churn_descriptions(transport)), rounds=1, iterations=1
    )
    benchmark.extra_info.update({"transport": transport, "description_bytes": sizes})
    assert len(sizes) > 1
    assert all(size > 0 for size in sizes)
    if transport == "bundled":
        assert len(set(sizes)) == 1, f"the bundled description changed under churn: {sizes}"
