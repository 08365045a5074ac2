"""Network impairment does what it says: measured loss, bursts, delay, jitter,
duplication and bandwidth within tolerance of the setting, a schedule, and the same drops
for the same seed. On a virtual clock: deterministic and instant."""

from __future__ import annotations

import heapq
import itertools
import random
import statistics
from collections.abc import Callable

import pytest

from simulator.media.impairment import PROFILES, Direction, Impairment, NetworkShaper, Schedule, Step


class VirtualNetwork:
    """A clock and a timer queue for one shaper: datagrams are sent at set times, delivered when due."""

    def __init__(self, impairment: Impairment | Callable[[], Impairment], seed: int = 1) -> None:
        self.now = 0.0
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        current = impairment if callable(impairment) else (lambda: impairment)
        self.shaper = NetworkShaper(current, random.Random(seed), lambda: self.now, self._call_later)
        self.delivered: list[tuple[float, int]] = []

    def _call_later(self, delay: float, callback: Callable[[], None]) -> None:
        heapq.heappush(self._timers, (self.now + delay, next(self._order), callback))

    def _run_until(self, when: float) -> None:
        while self._timers and self._timers[0][0] <= when:
            at, _, callback = heapq.heappop(self._timers)
            self.now = at
            callback()
        self.now = when

    def send(self, count: int, every: float, size: int = 1200) -> None:
        start = self.now
        for n in range(count):
            self._run_until(start + n * every)
            number = n
            self.shaper.send(bytes(size), lambda _d, number=number: self.delivered.append((self.now, number)))
        self._run_until(start + count * every + 10.0)


def _bursts(delivered: list[int], sent: int) -> list[int]:
    got = set(delivered)
    lengths, run = [], 0
    for n in range(sent):
        if n in got:
            if run:
                lengths.append(run)
            run = 0
        else:
            run += 1
    return lengths


def test_random_loss_is_the_setting() -> None:
    net = VirtualNetwork(Impairment(loss=0.10))
    net.send(20_000, 0.001)
    assert 1 - len(net.delivered) / 20_000 == pytest.approx(0.10, abs=0.006)
    assert statistics.mean(_bursts([n for _, n in net.delivered], 20_000)) < 1.3  # independent


def test_bursty_loss_keeps_its_rate_and_comes_in_bursts() -> None:
    net = VirtualNetwork(Impairment(loss=0.05, burst=4))
    net.send(40_000, 0.001)
    assert 1 - len(net.delivered) / 40_000 == pytest.approx(0.05, abs=0.01)
    assert statistics.mean(_bursts([n for _, n in net.delivered], 40_000)) == pytest.approx(4, rel=0.15)


def test_delay_and_jitter_and_the_reordering_jitter_brings() -> None:
    net = VirtualNetwork(Impairment(delay_ms=50, jitter_ms=20))
    net.send(5_000, 0.005)
    delays = [(at - n * 0.005) * 1000 for at, n in net.delivered]
    assert statistics.mean(delays) == pytest.approx(50, abs=1.5)
    assert min(delays) >= 30 - 1e-6 and max(delays) <= 70 + 1e-6
    order = [n for _, n in net.delivered]
    assert order != sorted(order)  # datagrams overtook each other


def test_a_bandwidth_cap_holds_and_its_queue_drops_the_excess() -> None:
    net = VirtualNetwork(Impairment(rate_kbps=500, queue_ms=100))
    net.send(400, 0.01, size=1250)  # 1 Mb/s offered for 4 s
    span = net.delivered[-1][0] - net.delivered[0][0]
    rate = (len(net.delivered) - 1) * 1250 * 8 / span
    assert rate == pytest.approx(500_000, rel=0.03)
    assert net.shaper.queue_dropped == pytest.approx(200, abs=15)  # half the offer did not fit
    waits = [(at - n * 0.01) * 1000 for at, n in net.delivered]
    assert max(waits) <= 100 + 20 + 1e-6  # the queue's bound, plus one datagram's serialisation


def test_duplication() -> None:
    net = VirtualNetwork(Impairment(duplicate=0.1))
    net.send(10_000, 0.001)
    assert len(net.delivered) / 10_000 - 1 == pytest.approx(0.1, abs=0.01)


def test_a_schedule_changes_the_network_and_changes_it_back() -> None:
    bad = Direction(Impairment(loss=0.5), Impairment())
    schedule = Schedule(steps=(Step(at=1.0, hold=1.0, network=bad),))
    net = VirtualNetwork(lambda: schedule.at(net.now).up)
    net.send(3_000, 0.001)
    got = [n for _, n in net.delivered]
    assert sum(1 for n in got if n < 1000) == 1000
    assert sum(1 for n in got if 1000 <= n < 2000) == pytest.approx(500, abs=60)
    assert sum(1 for n in got if n >= 2000) == 1000


def test_the_same_seed_drops_the_same_packets() -> None:
    runs = []
    for _ in range(2):
        net = VirtualNetwork(PROFILES["lossy-wifi"].base.up, seed=7)
        net.send(2_000, 0.002)
        runs.append(sorted(n for _, n in net.delivered))
    assert runs[0] == runs[1]
    other = VirtualNetwork(PROFILES["lossy-wifi"].base.up, seed=8)
    other.send(2_000, 0.002)
    assert sorted(n for _, n in other.delivered) != runs[0]


def test_out_of_range_settings_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"loss=1\.5"):
        Impairment(loss=1.5)
    with pytest.raises(ValueError, match=r"burst=0\.5"):
        Impairment(burst=0.5)
