"""``callsim run --dashboard``: a page that shows a run as it goes, pushed to the browser.

The page (``page.html``, charts by the vendored uPlot) opens ``/events``, a stream of
server-sent events: a snapshot of the run (:meth:`~simulator.crowd.live.LiveRun.snapshot`)
each time a worker reports, at most :data:`MIN_GAP` apart, and a last one with the verdict.
Its stop button posts ``/stop``: the run stops as at Ctrl-C (everyone leaves; reported as
interrupted). The stop needs the page's own token in a header, so another site's page in the
same browser cannot stop the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

from aiohttp import web

from simulator.crowd.live import LiveRun
from simulator.serving import serving

__all__ = ["MIN_GAP", "dashboard"]

HERE: Final = Path(__file__).parent
MIN_GAP: Final = 0.5
"""Seconds between two pushed snapshots at least (a page need not redraw faster)."""
KEEPALIVE: Final = 15.0
DRAIN: Final = 3.0
"""Seconds a finished run's dashboard waits for its pages to get the verdict."""
TOKEN_HEADER: Final = "X-Callsim-Stop"


@contextlib.asynccontextmanager
async def dashboard(live: LiveRun, host: str, port: int) -> AsyncIterator[str]:
    """Serve the dashboard of ``live`` while the block runs; yields its URL (OSError if the
    address cannot be bound). Open streams end with the block."""
    token = secrets.token_urlsafe(16)
    page = (HERE / "page.html").read_text().replace("{{STOP_TOKEN}}", token)
    closing = asyncio.Event()
    streams: set[web.StreamResponse] = set()
    drained = asyncio.Event()
    drained.set()

    async def index(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html", headers={"Cache-Control": "no-store"})

    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        streams.add(response)
        drained.clear()
        seen = -1
        try:
            while not closing.is_set():
                seen = await live.changed(seen, KEEPALIVE)
                if live.plan is None:
                    await response.write(b": waiting for the run to start\n\n")
                    continue
                finished = live.result is not None
                event = "end" if finished else "snapshot"
                data = json.dumps(live.snapshot())
                await response.write(f"event: {event}\ndata: {data}\n\n".encode())
                if finished:
                    break
                await asyncio.sleep(MIN_GAP)  # the push rate's bound, not a synchronisation
        except ConnectionError:
            pass  # the page went away
        finally:
            streams.discard(response)
            if not streams:
                drained.set()
        return response

    async def stop(request: web.Request) -> web.Response:
        if request.headers.get(TOKEN_HEADER) != token:
            raise web.HTTPForbidden(text="the stop needs the dashboard page's token")
        live.stop()
        return web.Response(status=202, text="stopping: everyone leaves, then the run is reported")

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/events", events)
    app.router.add_post("/stop", stop)
    app.router.add_static("/vendor/", HERE / "vendor")
    async with serving(app, host, port) as base:
        try:
            yield f"{base}/"
        finally:
            # A finished run's last snapshot (the verdict) reaches the open pages before they close.
            if live.result is not None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(DRAIN):
                        await drained.wait()
            closing.set()
