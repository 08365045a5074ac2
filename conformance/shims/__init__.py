"""Shims that put other implementations of the contract behind PROTOCOL.md."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Final

__all__ = ["SHIMS", "shim_command"]

_TOOLS: Final = Path(__file__).resolve().parent.parent.parent / "tools"
SHIMS: Final = {
    "published-js": "the published @cometchat/calls-sdk-javascript in headless Chromium "
    "(needs chromium, prosody, npm's bundle)",
}
"""Implementations the suite can drive by name (``--sut NAME``), and what each needs."""


def shim_command(name: str) -> str:
    """The command line that serves the shim ``name`` on stdio (PROTOCOL.md)."""
    if name == "published-js":
        # The SDK dials port 443: the shim gets a private network namespace of its own.
        return shlex.join(
            [
                "bash",
                str(_TOOLS / "in-private-network"),
                sys.executable,
                "-m",
                "conformance.shims.published_js",
            ]
        )
    raise KeyError(f"no shim named {name!r}; known: {', '.join(SHIMS)}")
