"""Metrics for Prometheus: a registry served at ``http://HOST:PORT/metrics``.

``callsim serve --metrics`` and ``callsim run --metrics`` each put collectors in a registry of
their own (the backend's: :mod:`simulator.server.metrics`; the run's:
:mod:`simulator.crowd.prometheus`) and serve it with :func:`metrics_endpoint`. The exposition is
``prometheus_client``'s, in the format the scraper asks for (OpenMetrics or the text format):
collectors read live state at scrape time, nothing is sampled in between.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from simulator.serving import serving

__all__ = ["metrics_endpoint", "parse_address"]

DEFAULT_HOST = "127.0.0.1"


def parse_address(text: str) -> tuple[str, int]:
    """``[HOST:]PORT`` (loopback when no host is given); ValueError says what is wrong."""
    host, _, port = text.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"{text!r} is not [HOST:]PORT") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"{text!r}: the port must be 0–65535")
    return (host.strip("[]") or DEFAULT_HOST), number


@contextlib.asynccontextmanager
async def metrics_endpoint(registry: CollectorRegistry, host: str, port: int) -> AsyncIterator[str]:
    """Serve ``registry`` at ``/metrics`` while the block runs; yields the URL (OSError if the
    address cannot be bound)."""

    async def scrape(request: web.Request) -> web.Response:
        encode, content_type = choose_encoder(request.headers.get("Accept", ""))
        return web.Response(body=encode(registry), headers={"Content-Type": content_type})

    app = web.Application()
    app.router.add_get("/metrics", scrape)
    async with serving(app, host, port) as base:
        yield f"{base}/metrics"
