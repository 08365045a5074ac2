"""Admission: what one client may cost the backend.

* **Connections**: at most :attr:`Limits.connections_per_ip` open at once from one address,
  and each must send its first request head within :attr:`Limits.handshake_timeout` (TLS:
  finish its handshake within it too). A slowloris client holds nothing for long.
* **Guessing**: each address may fail authentication (a wrong API key, auth token or call
  token, over REST or a socket) :attr:`Limits.auth_failures_per_second` times a second;
  past that, every request from it is refused with 429 until the budget refills.
* **Rates per user**: call tokens issued (:attr:`Limits.call_tokens_per_second`) and
  signalling sockets held at once (:attr:`Limits.sockets_per_user`).
* **Auth tokens expire** after :attr:`Limits.auth_token_ttl` (the store checks it).

The defaults let a load test bring hundreds of participants from one loopback address; a
deployment facing strangers lowers them (``Backend(limits=...)``). A refusal has the API's
error shape, ``{"error": {"code": "ERR_TOO_MANY_REQUESTS", ...}}``, status 429 and
``Retry-After``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, cast

from simulator.server.budget import Budgets
from simulator.server.errors import ApiError, Codes

__all__ = ["Admission", "GuardedProtocol", "Limits"]

logger = logging.getLogger(__name__)

HEAD_END: Final = b"\r\n\r\n"


@dataclass(frozen=True, slots=True)
class Limits:
    """The backend's limits per client (see the module's docs for each)."""

    connections_per_ip: int = 4096
    handshake_timeout: float = 10.0
    auth_failures_per_second: float = 20.0
    call_tokens_per_second: float = 50.0
    sockets_per_user: int = 16
    auth_token_ttl: float = 30 * 86_400.0


class TooManyRequestsError(ApiError):
    """429, with how long to wait."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(Codes.TOO_MANY_REQUESTS, message, 429)
        self.retry_after = max(1, math.ceil(retry_after))


class Admission:
    """The backend's bookkeeping of what each client holds and spends."""

    def __init__(self, limits: Limits, now: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._failures = Budgets(
            limits.auth_failures_per_second, now, burst=2 * limits.auth_failures_per_second
        )
        self._call_tokens = Budgets(
            limits.call_tokens_per_second, now, burst=2 * limits.call_tokens_per_second
        )
        self.connections: dict[str, int] = {}
        self.sockets: dict[str, int] = {}
        self.refused = {"connections": 0, "handshakes": 0, "auth": 0, "call_tokens": 0, "sockets": 0}
        """What was refused, by kind (for logs and tests)."""

    # --- guessing ---------------------------------------------------------------------------

    def check_not_throttled(self, ip: str | None) -> None:
        """Refuse (429) an address that has failed authentication too often lately."""
        budget = self._failures.of(ip or "?")
        if budget.available() < 1:
            self.refused["auth"] += 1
            raise TooManyRequestsError(
                "too many failed authentications from this address", budget.seconds_until()
            )

    def auth_failed(self, ip: str | None) -> None:
        """Spend one of the address's failures."""
        self._failures.of(ip or "?").take(1)

    def judge(self, ip: str | None, error: ApiError) -> None:
        """Count ``error``, answered to ``ip``, against the address if it is a failed authentication."""
        if error.code.startswith("AUTH_ERR_"):
            self.auth_failed(ip)

    # --- per user ---------------------------------------------------------------------------

    def spend_call_token(self, uid: str) -> None:
        budget = self._call_tokens.of(uid)
        if not budget.take(1):
            self.refused["call_tokens"] += 1
            raise TooManyRequestsError(f"too many call tokens for user {uid!r}", budget.seconds_until())

    def open_socket(self, uid: str) -> None:
        """One more signalling socket of ``uid``'s (refused past the cap); pair with :meth:`close_socket`."""
        if not _hold(self.sockets, uid, self.limits.sockets_per_user):
            self.refused["sockets"] += 1
            raise TooManyRequestsError(f"user {uid!r} already holds {self.sockets[uid]} call sockets", 1.0)

    def close_socket(self, uid: str) -> None:
        _let_go(self.sockets, uid)

    # --- connections ------------------------------------------------------------------------

    def guard(self, factory: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """A protocol factory for ``loop.create_server`` that admits connections first."""
        return lambda: GuardedProtocol(factory(), self)

    def _admit(self, ip: str) -> bool:
        if _hold(self.connections, ip, self.limits.connections_per_ip):
            return True
        self.refused["connections"] += 1
        return False

    def _release(self, ip: str) -> None:
        _let_go(self.connections, ip)


def _hold(held: dict[str, int], key: str, cap: int) -> bool:
    """One more of ``key``'s, unless it already holds ``cap``."""
    if held.get(key, 0) >= cap:
        return False
    held[key] = held.get(key, 0) + 1
    return True


def _let_go(held: dict[str, int], key: str) -> None:
    """One fewer of ``key``'s (a key holding none is forgotten: the dict stays small)."""
    if held.get(key, 0) > 1:
        held[key] -= 1
    else:
        held.pop(key, None)


class GuardedProtocol(asyncio.Protocol):
    """aiohttp's protocol behind an admission check: the address's connection cap, and a
    deadline for the first request head (a client that trickles headers is cut off)."""

    def __init__(self, inner: asyncio.Protocol, admission: Admission) -> None:
        self._inner = inner
        self._admission = admission
        self._ip: str | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._head = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast("asyncio.Transport", transport)  # uvloop's is not an asyncio.Transport subclass
        peer = transport.get_extra_info("peername")
        ip = str(peer[0]) if peer else "?"
        if not self._admission._admit(ip):
            logger.warning(
                "connection from %s refused: %d open", ip, self._admission.limits.connections_per_ip
            )
            transport.abort()
            return
        self._ip = ip
        self._transport = transport
        timeout = self._admission.limits.handshake_timeout
        self._deadline = asyncio.get_running_loop().call_later(timeout, self._too_slow)
        self._inner.connection_made(transport)

    def _too_slow(self) -> None:
        self._admission.refused["handshakes"] += 1
        logger.warning(
            "connection from %s closed: no request within %.0f s",
            self._ip,
            self._admission.limits.handshake_timeout,
        )
        if self._transport is not None:
            self._transport.abort()

    def data_received(self, data: bytes) -> None:
        if self._ip is None:
            return
        if self._deadline is not None:
            # Only the first head is timed: look for its end across chunks.
            self._head = (self._head + data)[-(len(data) + len(HEAD_END)) :]
            if HEAD_END in self._head:
                self._deadline.cancel()
                self._deadline = None
                self._head = b""
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return None if self._ip is None else self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._ip is None:
            return
        if self._deadline is not None:
            self._deadline.cancel()
        self._admission._release(self._ip)
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def __getattr__(self, name: str) -> Any:
        # Anything else aiohttp asks of its protocol (it keeps its own reference mostly).
        return getattr(self._inner, name)
