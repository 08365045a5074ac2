"""The reference backend: embedded (an async context manager on a free loopback port)
or standalone (``callsim serve``)."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import Counter, deque
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Final, Self

import psutil
from aiohttp import web

from simulator import protocol
from simulator.media.ortc import TransportPool
from simulator.memory import MemoryKeeper, release_memory
from simulator.server.admission import Admission, Limits
from simulator.server.calls import CallService
from simulator.server.chat import ChatHub
from simulator.server.jitsi.door import XmppDoor
from simulator.server.rest import ADMISSION, WEBRTC_HOST, errors_and_cors, routes
from simulator.server.rooms import Participant, Room, Rooms
from simulator.server.signalling import SignallingHandler
from simulator.server.store import Store, UserRecord
from simulator.server.tls import server_context
from simulator.server.tokens import DEFAULT_TTL, CallTokenAuthority
from simulator.tasks import TaskSet

__all__ = ["Backend"]

MEDIA_COUNTS_KEPT: Final = 10_000

logger = logging.getLogger(__name__)


class Backend:
    """REST + WebSocket signalling + SFU, with SQLite for what must persist.

    ``async with Backend() as backend:`` serves on ``backend.url`` until the block ends.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        db: str | Path = ":memory:",
        app_id: str = "callsim",
        region: str = "us",
        api_key: str | None = None,
        token_ttl: float = DEFAULT_TTL,
        wall_clock: Callable[[], float] = time.time,
        webrtc_host: str = "callsim.test",
        https_port: int | None = None,
        xmpp: bool = False,
        xmpp_media: bool = True,
        sdk_bundle: Path | None = None,
        limits: Limits | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host = host
        self.webrtc_host = webrtc_host
        """The bare host name the published SDK derives its XMPP addresses from (docs/jitsi.md)."""
        self.analytics: deque[dict[str, object]] = deque(maxlen=1000)
        """The published SDK's analytics pings, newest last (bounded)."""
        self.https_port = https_port
        """A TLS listener besides ``port`` (443 for the published SDK: docs/jitsi.md), or None."""
        self.tasks = TaskSet("backend")
        self.memory = MemoryKeeper(self.tasks)
        self.media_by_uid: dict[str, Counter[str]] = {}
        """uid → what the SFU did for its departed sessions (:meth:`SfuPeer.media_counts`), the
        most recent :data:`MEDIA_COUNTS_KEPT` users (a load run reads its participants')."""
        """Gives departed participants' memory back (docs/reliability.md: the soak)."""
        self._departed_media: Counter[str] = Counter()
        self.port = port
        self.app_id = app_id
        self.region = region
        self.api_key = api_key or secrets.token_hex(16)
        self.admission = Admission(limits or Limits(), monotonic)
        self.store = Store(db, auth_token_ttl=self.admission.limits.auth_token_ttl, wall_clock=wall_clock)
        self.tokens = CallTokenAuthority(
            self.store.secret(), app_id=app_id, region=region, ttl=token_ttl, wall_clock=wall_clock
        )
        self.rooms = Rooms()
        self.transports = TransportPool(controlling=False)
        """Gathered transports for bundled participants' answers (the SFU is the controlled side)."""
        self.chat = ChatHub(self.store, self.admission)
        self.calls = CallService(self.store, self.chat, wall_clock)
        self.signalling = SignallingHandler(self)
        self.xmpp: XmppDoor | None = (
            XmppDoor(self, webrtc_host, sdk_bundle=sdk_bundle, media=xmpp_media) if xmpp else None
        )
        """The published SDK's door (Prosody and the focus), when asked for; ``xmpp_media=False``
        keeps it to signalling (no Jingle: members without streams, as before the bridge)."""
        self._runner: web.AppRunner | None = None
        self._listeners: list[asyncio.Server] = []
        self._closed = False

    @property
    def url(self) -> str:
        """The REST base (the SDK's ``host`` setting), ending in ``/``."""
        return f"http://{self.host}:{self.port}/"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws"

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[errors_and_cors], client_max_size=1024 * 1024)
        app[WEBRTC_HOST] = self.webrtc_host
        app[ADMISSION] = self.admission
        app.add_routes(routes(self))
        if self.xmpp is not None:
            app.add_routes(self.xmpp.routes())

        async def close_sockets(_: web.Application) -> None:
            await self.signalling.close_all()
            await self.chat.close_all()

        app.on_shutdown.append(close_sockets)
        return app

    async def start(self) -> None:
        """Listen on ``host:port``; an ``OSError`` (a busy port) leaves nothing open."""
        if closed := self.calls.recover():
            logger.warning("closed %d call and presence records left open by a previous run", closed)
        runner = web.AppRunner(self.make_app(), handle_signals=False, access_log=None)
        await runner.setup()
        self._runner = runner
        # Listeners of our own rather than aiohttp's sites: every connection passes admission
        # (docs: simulator/server/admission.py) before aiohttp sees it.
        assert runner.server is not None
        factory = self.admission.guard(runner.server)
        loop = asyncio.get_running_loop()
        try:
            plain = await loop.create_server(factory, self.host, self.port)
            self._listeners.append(plain)
            if self.port == 0:
                self.port = int(plain.sockets[0].getsockname()[1])
            if self.https_port is not None:
                secure = await loop.create_server(
                    factory,
                    self.host,
                    self.https_port,
                    ssl=server_context(self.webrtc_host),
                    ssl_handshake_timeout=self.admission.limits.handshake_timeout,
                )
                self._listeners.append(secure)
                if self.https_port == 0:
                    self.https_port = int(secure.sockets[0].getsockname()[1])
            if self.xmpp is not None:
                await self.xmpp.start()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Close every session and socket, stop serving, close the database (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self.xmpp is not None:
            await self.xmpp.close()
        for listener in self._listeners:
            listener.close()  # no new connections; the runner closes the open ones
        if self._runner is not None:
            await self._runner.cleanup()
        for listener in self._listeners:
            await listener.wait_closed()
        await self.transports.close()
        await self.tasks.aclose()
        self.store.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def depart(self, room: Room, participant: Participant) -> None:
        """A member leaves through either door: out of the room and the call record first,
        then ``participant-left`` to everyone, its media closed, the others' media resynced."""
        if not self.rooms.leave(room, participant):
            return
        self.calls.participant_left(room.session_id, participant.record.uid)
        room.broadcast(protocol.ParticipantLeft(participant=participant.record))
        if participant.sfu is not None:
            counts = participant.sfu.media_counts()  # before closing: its outlets still count
            await participant.sfu.close()
            self._keep_media_counts(participant.record.uid, counts)
        if not self._closed:
            self.memory.departed()
        for p in room:
            if p.sfu is not None:
                p.sfu.resync()

    def media_totals(self) -> Counter[str]:
        """What the SFU has done since the backend started, for everyone (departed and present)."""
        totals = Counter(self._departed_media)
        for room in self.rooms:
            for participant in room:
                if participant.sfu is not None:
                    totals.update(participant.sfu.media_counts())
        return totals

    def _keep_media_counts(self, uid: str, counts: dict[str, int]) -> None:
        self._departed_media.update(counts)
        kept = self.media_by_uid.setdefault(uid, Counter())
        kept.update(counts)
        while len(self.media_by_uid) > MEDIA_COUNTS_KEPT:  # the oldest users first (dicts keep order)
            del self.media_by_uid[next(iter(self.media_by_uid))]

    def stats(self, *, collect: bool = False) -> dict[str, float]:
        """What this process holds now: memory, descriptors, threads, tasks, rooms, people;
        with ``collect``, after a full garbage collection and a heap trim (garbage, or held?)."""
        if collect:
            release_memory()
        process = psutil.Process()
        return {
            "rss_mib": process.memory_info().rss / 2**20,
            "fds": process.num_fds(),
            "threads": process.num_threads(),
            "tasks": len(asyncio.all_tasks()),
            "rooms": sum(1 for _ in self.rooms),
            "participants": sum(len(room.participants) for room in self.rooms),
            "memory_releases": self.memory.releases,
            "last_release_ms": self.memory.last_release_ms,
        }

    def provision_user(self, uid: str, name: str, avatar: str = "") -> str:
        """Create a user (if new) and return a fresh auth token (in-process shortcut)."""
        if self.store.get_user(uid) is None:
            self.store.create_user(uid, name, avatar)
        return self.store.issue_auth_token(uid)

    def user(self, uid: str) -> UserRecord | None:
        return self.store.get_user(uid)

    def direct_room_prefix(self) -> str:
        """§F.3: a session-only ("direct") session's media room is ``v1.{region}.{appId}.{sessionId}``."""
        return f"v1.{self.region}.{self.app_id}.".lower()

    def room_size(self, room: str) -> int:
        """Participants in a media room named either way §F.3 names it (one room per session here)."""
        prefix = self.direct_room_prefix()
        if room.lower().startswith(prefix):
            wanted = room[len(prefix) :].lower()
            return sum(len(r.participants) for r in self.rooms if r.session_id.lower() == wanted)
        return self.rooms.participant_count(room)
