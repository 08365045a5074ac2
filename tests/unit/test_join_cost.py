"""The join benchmark's split of the backend's CPU: joins, background, media (benchmarks.joins)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from benchmarks.joins import join_cost_ms

DURATION = 14.0


def _run(per_second: float, per_join: float, participants: int = 40, rate: float = 10.0) -> SimpleNamespace:
    """A run whose backend spends ``per_second`` of control work per participant in the call,
    ``per_join`` per join, and on media an amount that grows with the square of those present
    (subscriptions), read every quarter second like the runner's readings."""
    joins = [round(i / rate, 3) for i in range(participants)]
    cpu_readings, media_readings = [(-1.5, 4.0)], [(-1.5, 0.0)]  # before the run: left out
    cpu, media, step = 5.0, 0.0, 0.25
    cpu_readings.append((0.0, cpu))
    media_readings.append((0.0, media))
    for tick in range(1, int(DURATION / step) + 1):
        end = tick * step
        start = end - step
        present = sum(max(0.0, end - max(start, at)) for at in joins if at < end)
        joined = sum(1 for at in joins if start <= at < end)
        spent_on_media = 0.0002 * present * sum(1 for at in joins if at < end)
        media += spent_on_media
        cpu += per_second * present + per_join * joined + spent_on_media
        cpu_readings.append((end, cpu))
        media_readings.append((end, media))
    participants = [SimpleNamespace(join_at=at) for at in joins]
    header = SimpleNamespace(duration=DURATION)
    plan = SimpleNamespace(participants=participants, scenario=SimpleNamespace(scenario=header))
    return SimpleNamespace(plan=plan, backend_cpu=cpu_readings, backend_media=media_readings)


@pytest.mark.parametrize(("per_second", "per_join"), [(0.004, 0.003), (0.008, 0.0005), (0.0, 0.01)])
def test_a_joins_cost_is_told_apart_from_media_and_background(per_second: float, per_join: float) -> None:
    assert join_cost_ms(_run(per_second, per_join)) == pytest.approx(per_join * 1000, abs=0.05)  # type: ignore[arg-type]


def test_a_run_that_is_still_joining_at_its_end_gives_no_figure() -> None:
    run = _run(0.004, 0.003, participants=130)  # the last joins at 12.9 s: no settled window
    assert join_cost_ms(run) is None  # type: ignore[arg-type]


def test_an_overloaded_run_gives_no_figure_rather_than_a_wrong_one() -> None:
    run = _run(0.004, 0.003)
    late = [(at, cpu + (2.0 if at >= 11.0 else 0.0)) for at, cpu in run.backend_cpu]  # joins spill over
    run.backend_cpu = late
    assert join_cost_ms(run) is None  # type: ignore[arg-type]


def test_too_few_readings_give_no_figure() -> None:
    run = _run(0.004, 0.003)
    run.backend_cpu = run.backend_cpu[:3]
    assert join_cost_ms(run) is None  # type: ignore[arg-type]
