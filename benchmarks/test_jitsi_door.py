"""The Jitsi door's costs, beside the native door's, in the same run (see :mod:`benchmarks.capacity`).

* participants per core: the same rooms of 4, the same lean media, the same criteria, through
  each door (the generator's share of its core, and the SFU's; Prosody's, on its own process);
* the anchor: one headless Chromium participant of the published SDK (:mod:`benchmarks.browser_anchor`;
  only where it can run: Chromium, the SDK, port 443 under ``tools/in-private-network``);
* joins through the XMPP door: 100 participants at 20 and 50 joins/s, the join's p95 and its
  phases (login, the focus's ``conference``, the MUC, Jingle, ICE, DTLS), and whether every
  invariant of the run held.
"""

from __future__ import annotations

import os
import shutil
from typing import Any, Final

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from benchmarks.browser_anchor import anchor_missing, measure_browser_participant
from benchmarks.capacity import measure
from simulator import eventloop
from simulator.crowd.scenario import Door

SIZE: Final = 100
"""Participants per core are compared at one size both doors hold on the reference machine."""
XMPP_RATES: Final = (20.0, 50.0)

pytestmark = [
    pytest.mark.skipif(
        not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
        reason="the generator and the backend need a core each (Linux, 2 cores or more)",
    ),
    pytest.mark.skipif(shutil.which("prosody") is None, reason="the XMPP door needs Prosody"),
]


@pytest.mark.parametrize("door", ["native", "jitsi"])
def test_participants_per_core_by_door(benchmark: BenchmarkFixture, door: Door) -> None:
    benchmark.group = f"participants per core by door: {SIZE} lean in rooms of 4"
    outcome: dict[str, Any] = benchmark.pedantic(measure, args=("lean", SIZE, door), rounds=1, iterations=1)
    benchmark.extra_info.update(outcome)
    assert outcome["steady"] is not None, f"not everyone joined: {outcome['why']} {outcome['errors']}"


@pytest.mark.parametrize("rate", XMPP_RATES, ids=lambda rate: f"{rate:g}-per-s")
def test_joins_through_the_xmpp_door(benchmark: BenchmarkFixture, rate: float) -> None:
    benchmark.group = f"joins through the XMPP door: {SIZE} at {rate:g}/s"
    outcome: dict[str, Any] = benchmark.pedantic(
        measure, args=("lean", SIZE, "jitsi", rate), rounds=1, iterations=1
    )
    benchmark.extra_info.update(outcome)
    assert outcome["join_ms"]["count"] >= SIZE, f"not everyone joined: {outcome['errors']}"


@pytest.mark.skipif((missing := anchor_missing()) is not None, reason=f"the browser anchor: {missing}")
def test_one_browser_participant_of_the_published_sdk(benchmark: BenchmarkFixture) -> None:
    benchmark.group = "participants per core by door: the browser anchor"
    outcome: dict[str, Any] = benchmark.pedantic(
        lambda: eventloop.run(measure_browser_participant()), rounds=1, iterations=1
    )
    benchmark.extra_info.update(outcome)
    assert outcome["browser_cpu_share"] > 0
