"""A fake clock for the published SDK that its XMPP connection survives.

Playwright's clock (``page.clock``) fires a page's timers as fast as it is told to, but
the answers to what those timers send still take real time to come back. lib-jitsi-meet
pings its XMPP server every 10 s and drops the connection after two pings unanswered
within 5 s each; one long jump fires every ping *and* every timeout before a single answer
can arrive. So :class:`SteppedClock` jumps in steps shorter than the ping timeout and,
after each step, waits until the traffic has settled: every ping the SDK sent has been
answered by the server and every frame the door relayed has reached its page. While a
step settles, only the page's clock moves; see below.

Playwright's installed clock also flows with real time between the jumps it is told to make
(pausing it would stall the SDK's own timers while it joins). Settling after each of the 45
steps of a 180 s jump took real seconds, which the page's clock added on top: an idle timeout
due at 180 s fired before 179.5 s of the suite's time on a slow machine. So the clock keeps
each page's *intended* time (where its last jump ended, plus the new one) and each step runs
only what the page still lacks of it, read from the page's own ``Date.now()``. A page's time
is first held at its join (:meth:`SteppedClock.anchor`), where its idle timer starts.

The evidence comes from both ends of the socket: the door's taps (``XmppDoor.taps``) see
each stanza relayed, and a counter wrapped around the page's ``WebSocket`` (observation
only: the SDK's socket is the browser's own) reports each frame the page received.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections import Counter
from collections.abc import Iterable
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

__all__ = ["FRAME_COUNTER", "STEP", "SteppedClock"]

STEP: Final = 4.0
"""Seconds of virtual time a step may take: under lib-jitsi-meet's 5 s ping timeout."""
SETTLE_TIMEOUT: Final = 5.0
"""Real seconds a step's traffic may take to settle before the clock moves on regardless."""

FRAME_COUNTER: Final = """
(() => {
  const Native = window.WebSocket;
  class Counted extends Native {
    constructor(url, ...rest) {
      super(url, ...rest);
      if (String(url).includes("/xmpp-websocket")) {
        this.addEventListener("message", () => window.callsimXmppFrame(String(url), "frame"));
        this.addEventListener("close", () => window.callsimXmppFrame(String(url), "closed"));
      }
    }
  }
  window.WebSocket = Counted;
})();
"""
"""An init script: each frame a page's XMPP socket receives is reported to the shim."""

_IQ: Final = re.compile(r"<iq\b[^>]*>")
_ATTRIBUTE: Final = re.compile(r"""\b(id|type)\s*=\s*(["'])(.*?)\2""")


def _iq(text: str) -> tuple[str, str] | None:
    """``(type, id)`` of the IQ stanza ``text`` opens with, or None."""
    match = _IQ.match(text.lstrip())
    if match is None:
        return None
    attributes = {name: value for name, _, value in _ATTRIBUTE.findall(match.group(0))}
    return attributes.get("type", ""), attributes.get("id", "")


def token_of(url: str) -> str:
    """The call token in an XMPP socket's URL (``?token=``), or ``""``."""
    return parse_qs(urlsplit(url).query).get("token", [""])[0]


class SteppedClock:
    """Advances the pages' fake clocks in settled steps (the module's docstring says why)."""

    def __init__(self) -> None:
        self._pings: dict[str, set[str]] = {}
        """Per call token: the ids of the SDK's pings the server has not answered yet."""
        self._sent: Counter[str] = Counter()
        self._received: Counter[str] = Counter()
        self._changed = asyncio.Event()
        self._intended: dict[int, float] = {}
        """Per page (by ``id``): the fake time, in ms, its last jump was to end at."""

    def forget(self) -> None:
        """Drop every socket's accounting and every page's time (the pages are gone)."""
        self._pings.clear()
        self._sent.clear()
        self._received.clear()
        self._intended.clear()

    # --- evidence -----------------------------------------------------------------------------

    def relayed(self, token: str, toward: str, text: str) -> None:
        """A door tap: one stanza relayed toward ``"server"`` or ``"client"``."""
        iq = _iq(text)
        if toward == "server":
            if iq is not None and iq[0] == "get" and "urn:xmpp:ping" in text:
                self._pings.setdefault(token, set()).add(iq[1])
        else:
            self._sent[token] += 1
            if iq is not None and iq[0] in ("result", "error"):
                self._pings.get(token, set()).discard(iq[1])
        self._changed.set()

    def page_reported(self, url: str, what: str) -> None:
        """A page binding: its XMPP socket at ``url`` received a frame, or closed."""
        token = token_of(url)
        if what == "closed":
            self._pings.pop(token, None)
            self._sent.pop(token, None)
            self._received.pop(token, None)
        else:
            self._received[token] += 1
        self._changed.set()

    def settled(self) -> bool:
        """Every ping answered, every relayed frame received by its page."""
        if any(self._pings.values()):
            return False
        return all(self._received[token] >= sent for token, sent in self._sent.items())

    # --- moving -------------------------------------------------------------------------------

    async def anchor(self, page: Any) -> None:
        """Hold ``page``'s time now as where the suite's time stands for it (at its join), unless
        a jump already set it: what its clock runs by itself from here on is taken out of the
        next jump."""
        if id(page) not in self._intended:
            self._intended[id(page)] = (await _now([page]))[0]

    async def advance(self, pages: Iterable[Any], seconds: float) -> None:
        """Run every page's clock ``seconds`` past where its last jump ended (from now, for a
        page never moved), firing each timer due on the way, in settled steps."""
        pages = list(pages)
        for page, at in zip(pages, await _now(pages), strict=True):
            self._intended[id(page)] = self._intended.get(id(page), at) + max(0.0, seconds) * 1000
        while True:
            now = await _now(pages)
            lacking = [(page, self._intended[id(page)] - at) for page, at in zip(pages, now, strict=True)]
            lacking = [(page, ms) for page, ms in lacking if ms >= 1]
            if not lacking:
                return
            await asyncio.gather(*(page.clock.run_for(round(min(STEP * 1000, ms))) for page, ms in lacking))
            await self._settle()
            pages = [page for page, _ in lacking]

    async def _settle(self) -> None:
        try:
            async with asyncio.timeout(SETTLE_TIMEOUT):
                while not self.settled():
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            print(
                f"callsim shim: XMPP traffic unsettled after {SETTLE_TIMEOUT:g} s "
                f"(pings {dict(self._pings)}, sent {dict(self._sent)}, received {dict(self._received)})",
                file=sys.stderr,
                flush=True,
            )


async def _now(pages: list[Any]) -> list[float]:
    """Each page's fake time, in ms (its clock's ``Date.now()``)."""
    return [float(at) for at in await asyncio.gather(*(page.evaluate("Date.now()") for page in pages))]
