"""The published-js shim's stepped clock: when the SDK's XMPP traffic counts as settled, and
that a jump goes in steps shorter than lib-jitsi-meet's ping timeout, each one settled."""

from __future__ import annotations

import asyncio
from typing import Any

from conformance.shims.published_js.clock import STEP, SteppedClock, token_of

URL = "wss://xmpp.callsim.test/xmpp-websocket?room=s1&token=tok-a"
PING = "<iq xmlns='jabber:client' type='get' id='p1' to='callsim.test'><ping xmlns='urn:xmpp:ping'/></iq>"
PONG = "<iq xmlns='jabber:client' type='result' id='p1' from='callsim.test'/>"


def test_a_socket_url_names_its_call_token() -> None:
    assert token_of(URL) == "tok-a"
    assert token_of("wss://xmpp.callsim.test/xmpp-websocket") == ""


def test_settled_once_the_ping_is_answered_and_every_frame_reached_the_page() -> None:
    clock = SteppedClock()
    assert clock.settled()
    clock.relayed("tok-a", "server", PING)
    assert not clock.settled()  # the ping is out
    clock.relayed("tok-a", "client", PONG)
    assert not clock.settled()  # answered, but not yet in the page
    clock.page_reported(URL, "frame")
    assert clock.settled()


def test_only_pings_are_waited_for_and_a_closed_socket_is_forgotten() -> None:
    clock = SteppedClock()
    clock.relayed(
        "tok-a", "server", "<iq type='set' id='j1'><conference xmlns='http://jitsi.org/protocol/focus'/></iq>"
    )
    assert clock.settled()  # an IQ to the focus may take its time: only pings have a 5 s fuse
    clock.relayed("tok-a", "server", PING.replace("'", '"'))  # either quoting
    clock.relayed("tok-a", "client", "<presence/>")
    assert not clock.settled()
    clock.page_reported(URL, "closed")
    assert clock.settled()


class _Page:
    """A page whose clock records each run and answers the ping the SDK sends during it. Its
    fake time also moves by ``drift`` ms while each answer comes back, as Playwright's installed
    clock flows with real time between the jumps it is told to make."""

    def __init__(self, clock: SteppedClock, drift: float = 0.0) -> None:
        self.runs: list[int] = []
        self.answers: list[asyncio.Task[None]] = []
        self.clock = self
        self.now = 1_000_000.0
        self._drift = drift
        self._shim_clock = clock

    async def evaluate(self, expression: str) -> float:
        assert expression == "Date.now()"
        return self.now

    async def run_for(self, milliseconds: int) -> None:
        self.runs.append(milliseconds)
        self.now += milliseconds
        self._shim_clock.relayed("tok-a", "server", PING)

        async def answer() -> None:
            await asyncio.sleep(0)  # the server answers later, on its own
            self.now += self._drift
            self._shim_clock.relayed("tok-a", "client", PONG)
            self._shim_clock.page_reported(URL, "frame")

        self.answers.append(asyncio.get_running_loop().create_task(answer()))


async def test_a_long_jump_goes_in_settled_steps_under_the_ping_timeout() -> None:
    clock = SteppedClock()
    page: Any = _Page(clock)
    await asyncio.wait_for(clock.advance([page], 10.0), timeout=5)
    assert sum(page.runs) == 10_000
    assert max(page.runs) <= STEP * 1000 < 5_000
    assert clock.settled()
    await asyncio.gather(*page.answers)


async def test_the_time_a_page_drifts_while_steps_settle_is_not_added_on_top() -> None:
    """A 180 s jump in 45 settled steps, each settling letting the page's clock run 40 ms of
    real time: the page lands at 180 s, not 181.8 s (an idle timeout due at 180 s fired before
    179.5 s of the suite's time that way); and the next jump starts where this one was to end."""
    clock = SteppedClock()
    page: Any = _Page(clock, drift=40.0)
    start = page.now
    await asyncio.wait_for(clock.advance([page], 180.0), timeout=5)
    assert 180_000 <= page.now - start < 180_000 + 40 + 1
    assert sum(page.runs) < 180_000  # the drift was taken out of the steps
    page.now += 5_000  # five real seconds pass between two jumps (a join, say)
    await asyncio.wait_for(clock.advance([page], 60.0), timeout=5)
    assert 240_000 <= page.now - start < 240_000 + 40 + 1
    await asyncio.gather(*page.answers)


async def test_a_page_anchored_at_its_join_has_its_own_running_taken_out_of_the_first_jump() -> None:
    clock = SteppedClock()
    page: Any = _Page(clock)
    joined = page.now
    await clock.anchor(page)
    page.now += 700  # the clock runs on by itself between the join and the first jump
    await asyncio.wait_for(clock.advance([page], 90.0), timeout=5)
    assert page.now - joined == 90_000
    assert sum(page.runs) == 90_000 - 700
    await asyncio.gather(*page.answers)
