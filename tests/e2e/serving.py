"""``callsim serve`` as a real child process, for the tests that need one."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

API_KEY = "k3y"


@dataclass(frozen=True)
class Served:
    url: str
    process: asyncio.subprocess.Process


@asynccontextmanager
async def serve(db: Path, *options: str) -> AsyncIterator[Served]:
    """Start ``callsim serve`` on a free port (apiKey :data:`API_KEY`); stop it with SIGTERM
    and require a clean exit."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulator.cli", "serve", "--port", "0", "--db", str(db), "--api-key", API_KEY,
        "--https-port", "0",  # with Prosody installed the XMPP door opens too; 443 is not needed here
        *options, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        match = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        assert match, line
        assert "appId callsim, region us" in line  # what a shim's init needs (PROTOCOL.md §6)
        yield Served(match.group(1), process)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
