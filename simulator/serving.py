"""A small aiohttp application served on ``HOST:PORT`` for as long as a block runs: what the
metrics endpoint and the dashboard are served by."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

__all__ = ["serving"]


@contextlib.asynccontextmanager
async def serving(app: web.Application, host: str, port: int, *, shutdown: float = 1.0) -> AsyncIterator[str]:
    """Serve ``app`` while the block runs; yields its base URL (``http://host:port``, the port
    bound when 0 was asked). OSError if the address cannot be bound."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        bound = runner.addresses[0][1] if runner.addresses else port
        shown = f"[{host}]" if ":" in host else host
        yield f"http://{shown}:{bound}"
    finally:
        await runner.cleanup()
