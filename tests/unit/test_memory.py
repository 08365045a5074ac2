"""The memory keeper: departures lead to one release; a steady call costs nothing."""

from __future__ import annotations

import gc
import weakref

from simulator.memory import MemoryKeeper, release_memory
from simulator.tasks import TaskSet


class _Cycle:
    def __init__(self) -> None:
        self.me = self
        self.payload = bytearray(1 << 20)


def test_a_release_frees_what_only_a_full_collection_can() -> None:
    gc.disable()  # as a rarely-collecting loop would leave it (simulator.eventloop)
    try:
        cycle = _Cycle()
        gone = weakref.ref(cycle)
        del cycle
        assert gone() is not None  # a cycle: reference counting alone cannot free it
        assert release_memory() >= 0
        assert gone() is None
    finally:
        gc.enable()


async def test_departures_lead_to_one_release_and_quiet_to_none() -> None:
    tasks = TaskSet("test")
    keeper = MemoryKeeper(tasks, every=0.0)
    await keeper.settled()
    assert keeper.releases == 0
    for _ in range(5):  # a burst of leavers: one release
        keeper.departed()
    await keeper.settled()
    assert keeper.releases == 1
    keeper.departed()
    await keeper.settled()
    assert keeper.releases == 2
    await tasks.aclose()
