"""The idle timeout of a call session (contract §E), on an injected clock.

States: ``OFF`` (not alone, or not started) → ``ARMED`` (alone; the prompt timer of
``T − 60`` s runs) → ``PROMPT`` (the "Are you still there?" prompt with its fixed
60 s countdown) → ``EXPIRED`` (the "meeting ended" screen). ``STOPPED`` is final.

K resolutions followed: a join cancels the prompt timer *and* a visible countdown
(K15); Stay restarts the cycle from zero (K17); the timer arms at join when alone and
whenever the count returns to one (K18); only real participants count (K19).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable

from simulator.clock import Clock, Timer
from simulator.sdk.constants import IDLE_PROMPT_LEAD

__all__ = ["IdleState", "IdleTimer"]


class IdleState(enum.Enum):
    OFF = "off"
    ARMED = "armed"
    PROMPT = "prompt"
    EXPIRED = "expired"
    STOPPED = "stopped"


class IdleTimer:
    """Drives the prompt, the countdown and expiry; the session supplies the effects.

    ``on_change`` runs after every state or countdown change (the call view redraws);
    ``on_expired`` runs when the countdown reaches zero (§E.6); ``on_leave_now`` runs
    when Leave now is pressed, with ``after_expiry`` telling §E.5 from §E.7.
    """

    def __init__(
        self,
        clock: Clock,
        period: float,
        *,
        on_expired: Callable[[], None],
        on_leave_now: Callable[[bool], None],
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self._clock = clock
        self.period = period
        self._on_expired = on_expired
        self._on_leave_now = on_leave_now
        self._on_change = on_change
        self.state = IdleState.OFF
        self.seconds_left: int | None = None
        """While the prompt shows: whole seconds until expiry (60 … 1)."""
        self._timer: Timer | None = None
        self._alone = False

    @property
    def prompt_delay(self) -> float:
        """``T − 60`` seconds of being alone before the prompt (§E.1)."""
        return max(0.0, self.period - IDLE_PROMPT_LEAD)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _set(self, state: IdleState, seconds_left: int | None = None) -> None:
        self.state = state
        self.seconds_left = seconds_left
        self._on_change()

    def _arm(self) -> None:
        self._cancel_timer()
        self._timer = self._clock.call_later(self.prompt_delay, self._show_prompt)
        self._set(IdleState.ARMED)

    def set_alone(self, alone: bool) -> None:
        """Tell the timer whether the local user is the only participant."""
        if self.state in (IdleState.STOPPED, IdleState.EXPIRED):
            return
        self._alone = alone
        if alone and self.state is IdleState.OFF:
            self._arm()
        elif not alone and self.state in (IdleState.ARMED, IdleState.PROMPT):
            self._cancel_timer()  # K15: the countdown goes too, not only the timer
            self._set(IdleState.OFF)

    def _show_prompt(self) -> None:
        self._timer = None
        self._tick(math.ceil(IDLE_PROMPT_LEAD))

    def _tick(self, seconds_left: int) -> None:
        if seconds_left <= 0:
            self._timer = None
            self._set(IdleState.EXPIRED)
            self._on_expired()
            return
        self._set(IdleState.PROMPT, seconds_left)
        self._timer = self._clock.call_later(1.0, lambda: self._tick(seconds_left - 1))

    def stay(self) -> None:
        """The prompt's "Stay in the call": hide it and restart the cycle (K17)."""
        if self.state is not IdleState.PROMPT:
            return
        self._cancel_timer()
        if self._alone:
            self._arm()
        else:
            self._set(IdleState.OFF)

    def leave_now(self) -> None:
        """The prompt's (or the ended screen's) "Leave now" (§E.5, §E.7)."""
        if self.state is IdleState.PROMPT:
            self.stop()
            self._on_leave_now(False)
        elif self.state is IdleState.EXPIRED:
            self.stop()
            self._on_leave_now(True)

    def stop(self) -> None:
        """Final: cancel everything (the session is leaving)."""
        self._cancel_timer()
        if self.state is not IdleState.STOPPED:
            self._set(IdleState.STOPPED)
