"""The reference backend as its own process (``callsim serve``), for benchmarks that must
read its CPU and memory apart from the clients'."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import psutil

__all__ = ["Served", "served_backend"]

START_TIMEOUT = 60.0


@dataclass(frozen=True)
class Served:
    url: str
    """``http://127.0.0.1:<port>/``."""
    process: psutil.Process


@asynccontextmanager
async def served_backend(db: str, api_key: str) -> AsyncIterator[Served]:
    """``callsim serve`` on a free loopback port (native signalling only), stopped on exit."""
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulator.cli", "serve", "--no-xmpp", "--port", "0",
        "--db", db, "--api-key", api_key,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        line = (await asyncio.wait_for(server.stdout.readline(), START_TIMEOUT)).decode()
        match = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        if match is None:
            raise RuntimeError(f"callsim serve did not start: {line!r}")
        yield Served(match.group(1), psutil.Process(server.pid))
    finally:
        if server.returncode is None:
            server.send_signal(signal.SIGTERM)
        await asyncio.wait_for(server.wait(), START_TIMEOUT)
