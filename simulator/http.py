"""The HTTP session a client uses: made on first use and owned, or lent by the caller.

Many virtual participants in one process may share one ``aiohttp.ClientSession``; a
lent session is never closed here.
"""

from __future__ import annotations

import aiohttp

__all__ = ["HttpSession"]


class HttpSession:
    """Owns an ``aiohttp.ClientSession`` it made, or borrows the one it was given."""

    def __init__(self, lent: aiohttp.ClientSession | None = None) -> None:
        self._session = lent
        self._owned = lent is None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def aclose(self) -> None:
        """Close the session if it is ours (idempotent)."""
        if self._owned and self._session is not None:
            await self._session.close()
            self._session = None
