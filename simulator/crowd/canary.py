"""Canaries: the unmodified published Calls SDK in headless Chromium, inside a crowd.

The plan's canaries (``[[sessions]] browsers = N``) are run by the runner itself, not by a
worker: each is a page of the SDK (the backend's ``/sdk/`` page, the interop machinery) in one
Chromium, opened at its planned join and closed at the end. Every second the page's
``getStats`` (:data:`~simulator.crowd.browser_demo.WATCH_PEER_CONNECTIONS`) and the SDK's
callbacks are read; at the end each canary's figures (time to the first remote frame, freezes,
jitter, loss, audio energy from each other participant, the outgoing bitrate estimate) go into
the run's result, and what its callbacks said (who left, the final user list) into the
invariants, beside the virtual participants' own.

A canary needs Chromium and Playwright; on the embedded backend also the SDK's bundle, Prosody
and the TLS listener on port 443 (``tools/in-private-network``); a running backend (``callsim
run --backend``) serves its own SDK page. :func:`canaries_missing` says what is missing before
the run starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import shutil
import socket
import statistics
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from simulator.crowd.metrics import Metrics
from simulator.crowd.plan import Plan, PlannedParticipant
from simulator.published_sdk import DOMAIN, SDK_INSTALL, WATCH_PEER_CONNECTIONS, chromium_flags

__all__ = ["SAMPLE_EVERY", "CanaryFigures", "CanaryRun", "canaries_missing"]

SAMPLE_EVERY: Final = 1.0
"""Seconds between two readings of a canary's page (``getStats`` and callbacks)."""
OPEN_TIMEOUT: Final = 30.0


def canaries_missing(bundle: Path, *, local: bool = True) -> str | None:
    """Why canaries cannot run here (None when they can): one line, said before the run.
    ``local``: on the embedded backend, which then serves the SDK (its bundle, Prosody, 443)."""
    if shutil.which("chromium") is None and shutil.which("chromium-browser") is None:
        return "canaries need Chromium: bash tools/system-packages chromium"
    if not bundle.exists():
        return f"canaries need the published SDK's bundle at {bundle}: {SDK_INSTALL}"
    try:
        import playwright  # noqa: F401, PLC0415 - an optional extra
    except ImportError:
        return "canaries need Playwright: pip install 'callsim[interop]'"
    if not local:
        return None
    if shutil.which("prosody") is None:
        return "canaries need Prosody for the XMPP door: bash tools/system-packages prosody"
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", 443))
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EADDRINUSE):
                return "canaries need port 443 for the SDK: run under tools/in-private-network (or as root)"
            raise
    return None


@dataclass
class CanaryFigures:
    """What one canary saw (plain data: it goes into the report as it is)."""

    uid: str
    session: str
    joined: bool = False
    error: str = ""
    first_frame_ms: float | None = None
    """Its session's start → the first remote video frame Chromium decoded."""
    freezes: int = 0
    """Video freezes Chromium counted (``freezeCount``), over every remote video."""
    minutes: float = 0.0
    """Minutes it was in the session (freezes are judged per minute)."""
    jitter_ms: float = 0.0
    """Mean interarrival jitter over the remote streams, at the last reading."""
    loss_percent: float = 0.0
    remote_audio: int = 0
    """Remote audio streams it got."""
    audible: int = 0
    """Of those, the ones that carried sound (audio energy)."""
    others: int = 0
    """The other participants of its session: whom it should hear."""
    outgoing_bitrate: float = 0.0
    """Chromium's estimate of what it may send, bits per second (the highest it reached)."""
    callbacks: int = 0


class CanaryRun:
    """The canaries of a plan: ``async with CanaryRun.open(plan, tokens) as canaries``. Their
    pages are the backend's own SDK page (``https://callsim.test/sdk/``), Chromium resolving
    that name to where the backend is."""

    def __init__(self, plan: Plan, tokens: dict[str, str], browser: Any) -> None:
        self._plan = plan
        self._tokens = tokens
        self._browser = browser
        self.canaries = [p for p in plan.participants if p.canary]
        self.figures = {p.identity.uid: CanaryFigures(p.identity.uid, p.session_id) for p in self.canaries}
        self._observations: list[tuple[str, float, dict[str, Any]]] = []
        self._lists: dict[str, list[str]] = {}
        """Each canary's latest ``onUserListUpdated``, as uids."""
        sizes: dict[str, int] = {}
        for p in plan.participants:
            sizes[p.session_id] = sizes.get(p.session_id, 0) + 1
        for figures in self.figures.values():
            figures.others = sizes[figures.session] - 1

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls, plan: Plan, tokens: dict[str, str], *, resolve_to: str = "127.0.0.1"
    ) -> AsyncIterator[CanaryRun]:
        """Chromium started for the plan's canaries (closed with the block); ``resolve_to`` is
        the backend's address (the embedded backend's: loopback)."""
        from playwright.async_api import async_playwright  # noqa: PLC0415 - an optional extra

        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        async with async_playwright() as playwright:
            flags = list(chromium_flags(resolve_to))
            browser = await playwright.chromium.launch(executable_path=chromium, args=flags)
            try:
                yield cls(plan, tokens, browser)
            finally:
                await browser.close()

    async def run(self, start_wall: float, stop: asyncio.Event) -> None:
        """Every canary from its join to the end of the run (or a stop)."""
        async with asyncio.TaskGroup() as group:
            for planned in self.canaries:
                group.create_task(self._one(planned, start_wall, stop))

    async def _one(self, planned: PlannedParticipant, start_wall: float, stop: asyncio.Event) -> None:
        figures = self.figures[planned.identity.uid]
        end = self._plan.scenario.scenario.duration
        snapshot_at = max(
            a.at for a in self._plan.actions if a.uid == planned.identity.uid and a.kind == "snapshot"
        )
        if not await _until(start_wall + planned.join_at, stop):
            return
        context = await self._browser.new_context(ignore_https_errors=True)
        try:
            await context.add_init_script(WATCH_PEER_CONNECTIONS)
            page = await context.new_page()
            auth = self._tokens[planned.identity.uid]
            await page.goto(f"https://{DOMAIN}/sdk/?session={planned.session_id}&auth={auth}")
            entered = time.time()
            seen = 0
            snapshot_taken = False
            while time.time() - start_wall < end and not stop.is_set():
                state = await page.evaluate(
                    "({state: callsim.state, error: callsim.error, startedAt: callsim.startedAt || null,"
                    " events: callsim.events.length, stats: window.__callsim.latest,"
                    " firstFrameAt: window.__callsim.firstFrameAt})"
                )
                if state["state"] == "failed":
                    figures.error = f"the SDK failed: {state['error']}"
                    return
                events = await page.evaluate(f"callsim.events.slice({seen})")
                seen += len(events)
                self._read_events(planned, events, start_wall)
                self._read_stats(figures, state, entered)
                if not snapshot_taken and time.time() - start_wall >= snapshot_at:
                    snapshot_taken = True
                    self._snapshot(planned, start_wall)
                await _until(time.time() + SAMPLE_EVERY, stop)  # the reading period
            figures.minutes = (time.time() - entered) / 60
        finally:
            await context.close()  # the SDK's connection goes: its presence leaves the room

    def _read_stats(self, figures: CanaryFigures, state: dict[str, Any], entered: float) -> None:
        started = state.get("startedAt")
        if started is not None:
            figures.joined = True
        first = state.get("firstFrameAt")
        if first is not None and started is not None and figures.first_frame_ms is None:
            figures.first_frame_ms = float(max(0, first - started))
        stats = state.get("stats")
        if not stats:
            return
        received = stats.get("received", [])
        video = [r for r in received if r["kind"] == "video"]
        audio = [r for r in received if r["kind"] == "audio"]
        figures.freezes = sum(int(r.get("freezes", 0)) for r in video)
        figures.remote_audio = len(audio)
        figures.audible = sum(1 for r in audio if r.get("totalAudioEnergy", 0) > 0)
        packets = sum(int(r.get("packets") or 0) for r in received)
        lost = sum(max(0, int(r.get("lost") or 0)) for r in received)
        figures.loss_percent = round(100 * lost / (packets + lost), 3) if packets + lost else 0.0
        jitters = [float(r.get("jitter") or 0) * 1000 for r in received]
        figures.jitter_ms = round(statistics.fmean(jitters), 2) if jitters else 0.0
        figures.outgoing_bitrate = max(figures.outgoing_bitrate, float(stats.get("outgoingBitrate") or 0))
        figures.minutes = (time.time() - entered) / 60

    def _read_events(self, planned: PlannedParticipant, events: list[Any], start_wall: float) -> None:
        """The SDK's callbacks, as the invariants read the crowd's: who left, the user list."""
        figures = self.figures[planned.identity.uid]
        uid = planned.identity.uid
        for at_ms, callback, payload in events:
            figures.callbacks += 1
            at = at_ms / 1000 - start_wall
            if callback == "onUserLeft" and isinstance(payload, dict) and payload.get("uid"):
                self._observations.append(
                    ("left", at, {"observer": uid, "left": payload["uid"], "session": planned.session_id})
                )
            elif callback == "onUserListUpdated" and isinstance(payload, list):
                self._lists[uid] = sorted({str(u.get("uid")) for u in payload if isinstance(u, dict)})

    def _snapshot(self, planned: PlannedParticipant, start_wall: float) -> None:
        uid = planned.identity.uid
        members = self._lists.get(uid, [])
        self._observations.append(
            (
                "list",
                time.time() - start_wall,
                {"uid": uid, "session": planned.session_id, "members": members},
            )
        )

    def fold(self, metrics: Metrics) -> None:
        """Their callbacks into the run's observations (the invariants read them as the crowd's)."""
        for kind, at, facts in self._observations:
            metrics.observe(kind, at, **facts)
        metrics.observations.sort(key=lambda o: o["at"])

    def results(self) -> list[dict[str, Any]]:
        return [asdict(f) for f in self.figures.values()]


async def _until(wall: float, stop: asyncio.Event) -> bool:
    """Wait until ``time.time()`` reaches ``wall``; False if ``stop`` is set first."""
    delay = wall - time.time()
    if delay <= 0:
        return not stop.is_set()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(delay):
            await stop.wait()
    return not stop.is_set()
