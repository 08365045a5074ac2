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
    """A page whose clock records each run and answers the ping the SDK sends during it."""

    def __init__(self, clock: SteppedClock) -> None:
        self.runs: list[int] = []
        self.answers: list[asyncio.Task[None]] = []
        self.clock = self
        self._shim_clock = clock

    async def run_for(self, milliseconds: int) -> None:
        self.runs.append(milliseconds)
        self._shim_clock.relayed("tok-a", "server", PING)

        async def answer() -> None:
            await asyncio.sleep(0)  # the server answers later, on its own
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
