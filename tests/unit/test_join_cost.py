"""The join benchmark's split of the backend's CPU into media and joins (benchmarks.joins)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from benchmarks.joins import join_cost_ms


def _run(per_second: float, per_join: float, participants: int = 40, rate: float = 10.0) -> SimpleNamespace:
    """A run whose backend spends ``per_second`` per participant in the call and ``per_join``
    per join, read every 2 s like the runner's progress samples."""
    joins = [round(i / rate, 3) for i in range(participants)]
    readings, cpu = [(0.0, 5.0)], 5.0
    for end in range(2, 14, 2):
        start = end - 2
        present = sum(max(0.0, end - max(start, at)) for at in joins if at < end)
        joined = sum(1 for at in joins if start <= at < end)
        cpu += per_second * present + per_join * joined
        readings.append((float(end), cpu))
    plan = SimpleNamespace(participants=[SimpleNamespace(join_at=at) for at in joins])
    return SimpleNamespace(plan=plan, backend_cpu=[(-1.5, 4.0), *readings])  # before the run: left out


@pytest.mark.parametrize(("per_second", "per_join"), [(0.004, 0.003), (0.008, 0.0005), (0.0, 0.01)])
def test_a_joins_cost_is_told_apart_from_the_media_of_those_in(per_second: float, per_join: float) -> None:
    assert join_cost_ms(_run(per_second, per_join)) == pytest.approx(per_join * 1000, abs=0.01)  # type: ignore[arg-type]


def test_too_few_readings_give_no_figure() -> None:
    run = _run(0.004, 0.003)
    run.backend_cpu = run.backend_cpu[:3]  # two intervals: two unknowns need more
    assert join_cost_ms(run) is None  # type: ignore[arg-type]
