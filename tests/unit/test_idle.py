"""§E: the idle timeout on the virtual clock."""

from __future__ import annotations

import pytest

from simulator.clock import VirtualClock
from simulator.sdk.idle import IdleState, IdleTimer


class Harness:
    def __init__(self, period: float = 180) -> None:
        self.clock = VirtualClock()
        self.log: list[str] = []
        self.timer = IdleTimer(
            self.clock,
            period,
            on_expired=lambda: self.log.append(f"expired@{self.clock.now():g}"),
            on_leave_now=lambda after: self.log.append(
                f"leave_now(after_expiry={after})@{self.clock.now():g}"
            ),
        )


@pytest.mark.parametrize("period", [120, 180, 300, 150.5])
def test_prompt_at_t_minus_60_and_expiry_at_t(period: float) -> None:
    h = Harness(period)
    h.timer.set_alone(True)
    h.clock.advance(period - 60 - 0.001)
    assert h.timer.state is IdleState.ARMED
    h.clock.advance(0.001)
    assert (h.timer.state, h.timer.seconds_left) == (IdleState.PROMPT, 60)
    h.clock.advance(59)
    assert h.timer.seconds_left == 1
    assert h.log == []
    h.clock.advance(1)
    assert h.timer.state is IdleState.EXPIRED
    assert h.log == [f"expired@{period:g}"]


def test_stay_restarts_the_cycle_from_zero_k17() -> None:
    h = Harness()
    h.timer.set_alone(True)
    h.clock.advance(150)  # prompt since 120
    h.timer.stay()
    assert h.timer.state is IdleState.ARMED
    h.clock.advance(119)
    assert h.timer.state is IdleState.ARMED
    h.clock.advance(1)
    assert h.timer.state is IdleState.PROMPT
    h.clock.advance(60)
    assert h.log == ["expired@330"]


def test_leave_now_during_the_countdown_is_not_a_timeout_e5() -> None:
    h = Harness()
    h.timer.set_alone(True)
    h.clock.advance(125)
    h.timer.leave_now()
    h.clock.advance(600)
    assert h.log == ["leave_now(after_expiry=False)@125"]
    assert h.timer.state is IdleState.STOPPED


def test_leave_now_after_expiry_e7() -> None:
    h = Harness()
    h.timer.set_alone(True)
    h.clock.advance(180)
    h.timer.leave_now()
    assert h.log == ["expired@180", "leave_now(after_expiry=True)@180"]


def test_a_join_cancels_the_timer_and_a_visible_countdown_k15() -> None:
    h = Harness()
    h.timer.set_alone(True)
    h.clock.advance(130)
    assert h.timer.state is IdleState.PROMPT
    h.timer.set_alone(False)
    assert h.timer.state is IdleState.OFF
    h.clock.advance(1000)
    assert h.log == []
    assert h.clock.pending() == 0


def test_alone_again_starts_a_fresh_full_timer_e2() -> None:
    h = Harness()
    h.timer.set_alone(True)
    h.clock.advance(100)
    h.timer.set_alone(False)
    h.clock.advance(10)
    h.timer.set_alone(True)
    h.clock.advance(119)
    assert h.timer.state is IdleState.ARMED
    h.clock.advance(1)
    assert h.timer.state is IdleState.PROMPT


def test_not_alone_never_prompts() -> None:
    h = Harness()
    h.timer.set_alone(False)
    h.clock.advance(10_000)
    assert h.timer.state is IdleState.OFF
    assert h.log == []


def test_stay_and_leave_now_without_a_prompt_do_nothing() -> None:
    h = Harness()
    h.timer.set_alone(True)
    h.timer.stay()
    h.timer.leave_now()
    assert h.timer.state is IdleState.ARMED
    assert h.log == []


def test_stop_is_final() -> None:
    h = Harness()
    h.timer.set_alone(True)
    h.timer.stop()
    h.timer.set_alone(True)
    h.clock.advance(1000)
    assert h.timer.state is IdleState.STOPPED
    assert h.clock.pending() == 0
