"""Shared fixtures: the leak check, an embedded backend, and ready-made participants."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import psutil
import pytest
from hypothesis import settings

from simulator.chat import ChatClient
from simulator.chat.listeners import CALL_CALLBACKS
from simulator.clock import Clock, VirtualClock
from simulator.media.devices import FakeDevices
from simulator.media.impairment import Schedule
from simulator.media.paths import MediaPath
from simulator.media.tones import TONES_HZ
from simulator.protocol import ReceiveSlots, Transport
from simulator.sdk import (
    CallAppSettingsBuilder,
    CallsClient,
    CallSettingsBuilder,
    CallView,
    MediaProfile,
)
from simulator.sdk.recorder import EventRecorder
from simulator.sdk.settings import CallSettings
from simulator.server import Backend

T = TypeVar("T")

# STYLE rule 11: dev explores, ci is derandomised (replayable), nightly digs deeper.
settings.register_profile("dev", max_examples=100)
settings.register_profile("ci", derandomize=True, max_examples=100, print_blob=True)
settings.register_profile("nightly", max_examples=2_000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def pytest_report_header() -> str:
    return f"hypothesis profile: {settings._current_profile}"


def _threads() -> set[str]:
    # The loop's default executor threads ("asyncio_N") belong to the loop and go with it;
    # pycares (aiodns, which slixmpp brings and aiohttp then resolves with) starts one
    # process-wide daemon thread for channel shutdowns, once, and keeps it.
    return {
        t.name
        for t in threading.enumerate()
        if not t.name.startswith("asyncio") and "_run_safe_shutdown_loop" not in t.name
    }


def _sockets() -> list[str]:
    return sorted(
        f"{c.type.name} {c.laddr} → {c.raddr or '-'} {c.status}"
        for c in psutil.Process().net_connections(kind="inet")
    )


@pytest.fixture(autouse=True)
async def no_leaks() -> AsyncIterator[None]:
    """Tasks, threads and sockets return to their baseline after every test (STYLE rule 7)."""
    threads, sockets = _threads(), _sockets()
    yield
    current = asyncio.current_task()
    leftover = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    if leftover:
        # Give finishing tasks a bounded chance to end on their own, then judge.
        await asyncio.wait(leftover, timeout=2.0)
    leftover = [t for t in leftover if not t.done()]
    assert not leftover, f"tasks left running: {[t.get_name() for t in leftover]}"
    extra_threads = _threads() - threads
    for _ in range(20):
        if not extra_threads:
            break
        await asyncio.sleep(0.05)  # threads report their end asynchronously; bounded wait
        extra_threads = _threads() - threads
    assert not extra_threads, f"threads left running: {extra_threads}"
    extra = [s for s in _sockets() if s not in sockets]
    assert len(_sockets()) <= len(sockets), f"sockets left open: {extra}"


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    async with Backend() as b:
        yield b


@contextlib.contextmanager
def in_a_thread(make: Callable[[], contextlib.AbstractAsyncContextManager[T]]) -> Iterator[T]:
    """What ``make()`` enters, kept open in a thread and an event loop of its own: for a test
    that runs the CLI in-process (which runs its own loop), a server to reach."""
    from simulator import eventloop

    ready, stop = threading.Event(), threading.Event()
    box: list[T] = []

    async def hold() -> None:
        async with make() as entered:
            box.append(entered)
            ready.set()
            while not stop.is_set():  # noqa: ASYNC110 - a thread's flag, no asyncio face
                await asyncio.sleep(0.1)

    thread = threading.Thread(target=eventloop.run, args=(hold(),), daemon=True)
    thread.start()
    try:
        assert ready.wait(60), "it did not start"
        yield box[0]
    finally:
        stop.set()
        thread.join(60)


def backend_in_a_thread(**options: Any) -> contextlib.AbstractContextManager[Backend]:
    """A backend (``Backend(**options)``) in a thread of its own (:func:`in_a_thread`)."""
    return in_a_thread(lambda: Backend(**options))


@dataclass
class Participant:
    """One virtual participant in a test: its client, view and recorder."""

    uid: str
    client: CallsClient
    view: CallView
    recorder: EventRecorder
    auth_token: str

    @property
    def evidence(self):  # type: ignore[no-untyped-def]
        return self.client.evidence


Join = Callable[..., Awaitable[Participant]]


@pytest.fixture
def media_path() -> MediaPath:
    """The media path ``join`` gives participants; a module overrides it to run on every path."""
    return "full"


@pytest.fixture
async def join(backend: Backend, media_path: MediaPath) -> AsyncIterator[Join]:
    """``await join("alice", session="s1", builder=..., clock=...)`` → a joined participant.

    Each participant gets its own :class:`VirtualClock` unless the test passes one.
    """
    made: list[Participant] = []

    async def _join(
        uid: str,
        *,
        session: str = "s1",
        builder: CallSettingsBuilder | None = None,
        clock: Clock | None = None,
        devices: FakeDevices | None = None,
        wait: bool = True,
        media: bool = True,
        path: MediaPath | None = None,
        network: Schedule | None = None,
        transport: Transport = "bundled",
        receive_slots: ReceiveSlots | None = None,
    ) -> Participant:
        auth_token = backend.provision_user(uid, uid.title(), f"https://avatars.test/{uid}.png")
        index = len(made)
        # Contract timers (idle, device-list debounce) fire only when a test advances
        # time, so event histories never depend on how loaded the machine is.
        client = CallsClient(
            name=uid,
            clock=clock or VirtualClock(),
            devices=devices,
            media=MediaProfile(TONES_HZ[index], index + 1),
            media_path=path or media_path,
            network=network,
            transport=transport,
            receive_slots=receive_slots,
        )
        recorder = EventRecorder(uid)
        participant = Participant(uid, client, CallView(), recorder, auth_token)
        made.append(participant)
        app = CallAppSettingsBuilder().set_app_id("callsim").set_region("us").set_host(backend.url).build()
        await client.init(app)
        token = await client.generate_token(session, auth_token)
        settings: CallSettings = (
            (builder or CallSettingsBuilder()).set_call_listener(recorder.listener()).build()
        )
        await client.start_session(token.token, settings, participant.view)
        if wait:
            await client.wait_joined()
            if media:
                assert client.session is not None
                async with asyncio.timeout(15):
                    await client.session.media_connected.wait()
        return participant

    yield _join
    for p in made:
        await p.client.aclose()


@dataclass
class ChatUser:
    """A logged-in Chat SDK user in a test, with a recorder on its CallListener."""

    uid: str
    chat: ChatClient
    recorder: EventRecorder


Chat = Callable[..., Awaitable[ChatUser]]


@pytest.fixture
async def chat(backend: Backend) -> AsyncIterator[Chat]:
    """``await chat("alice", clock=...)`` → a logged-in ChatClient recording its call callbacks."""
    made: list[ChatUser] = []

    async def _chat(uid: str, *, clock: Clock | None = None) -> ChatUser:
        if backend.store.get_user(uid) is None:
            backend.store.create_user(uid, uid.title(), f"https://avatars.test/{uid}.png")
        client = ChatClient(name=uid, clock=clock)
        user = ChatUser(uid, client, EventRecorder(uid, CALL_CALLBACKS))
        made.append(user)
        await client.init(
            CallAppSettingsBuilder().set_app_id("callsim").set_region("us").set_host(backend.url).build()
        )
        await client.login(uid, backend.api_key)
        client.add_call_listener("recorder", user.recorder.handlers())
        return user

    yield _chat
    for user in made:
        await user.chat.aclose()
