"""``callsim demo``: a few virtual participants in one call session on the embedded backend.

Each participant is a :class:`CallsClient` with a Faker identity, fake devices and
synthetic media. The demo joins them, waits until everyone hears and sees everyone,
exercises mute (API and button), screen share and the session-only end flow. Then the
first rings the second (the ringing flow, §F), both join the call's session, and the
caller ends it with the end-call choreography of §F.7. It prints what each one
received, heard and saw — measured from the media, not assumed.
"""

from __future__ import annotations

import asyncio
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from faker import Faker
from rich.console import Console
from rich.table import Table

from simulator.chat import Call, ChatClient
from simulator.chat.listeners import CALL_CALLBACKS
from simulator.media.analysers import MediaEvidence
from simulator.sdk import (
    CallAppSettings,
    CallAppSettingsBuilder,
    CallsClient,
    CallSettingsBuilder,
    CallView,
    MediaProfile,
    to_wire,
)
from simulator.sdk.recorder import EventRecorder
from simulator.server import Backend

__all__ = ["DemoResult", "run_demo"]

MEDIA_TIMEOUT = 30.0


@dataclass
class _Participant:
    uid: str
    name: str
    client: CallsClient
    recorder: EventRecorder
    view: CallView
    join_seconds: float = 0.0


@dataclass
class DemoResult:
    """What the demo measured (also returned to tests)."""

    join_seconds: list[float] = field(default_factory=list)
    heard: dict[str, set[str]] = field(default_factory=dict)
    heard_after_mute: dict[str, set[str]] = field(default_factory=dict)
    screen_frames: dict[str, int] = field(default_factory=dict)
    events: dict[str, list[str]] = field(default_factory=dict)
    ringing_events: dict[str, list[str]] = field(default_factory=dict)
    ringing_in_media: float = 0.0
    ringing_status: str = ""
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    max_rss_mib: float = 0.0


def _hears_and_sees(evidence: MediaEvidence, others: set[str]) -> Callable[[], bool]:
    return lambda: set(evidence.heard()) == others and all(evidence.frames_from(o) >= 5 for o in others)


def _not_hearing(evidence: MediaEvidence, uid: str) -> Callable[[], bool]:
    return lambda: uid not in evidence.heard()


def _screen_frames(evidence: MediaEvidence, uid: str, count: int) -> Callable[[], bool]:
    return lambda: evidence.frames_from(uid, "screen") >= count


def _summary(name: str, args: tuple[Any, ...]) -> str:
    if not args:
        return name
    wire = to_wire(args[0])
    if name in ("on_user_joined", "on_user_left") and isinstance(wire, dict):
        return f"{name}({wire.get('name')})"
    if name == "on_user_list_updated" and isinstance(wire, list):
        return f"{name}([{', '.join(str(u.get('name')) for u in wire)}])"
    if name == "on_media_device_list_updated" and isinstance(wire, dict):
        counts = "/".join(str(len(v)) for v in wire.values())
        return f"{name}({counts} devices)"
    if name == "on_error":
        return f"{name}({getattr(args[0], 'code', args[0])})"
    return f"{name}(…)"


async def run_demo(participants: int = 3, seed: int = 7, console: Console | None = None) -> DemoResult:
    """Run the demo; prints to ``console`` (if given) and returns the measurements."""
    if participants < 2:
        raise ValueError("the demo needs at least two participants")
    fake = Faker()
    fake.seed_instance(seed)
    result = DemoResult()
    started = time.monotonic()
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    session_id = f"demo-{fake.uuid4()[:8]}"
    people: list[_Participant] = []
    async with Backend() as backend:
        app = (
            CallAppSettingsBuilder().set_app_id(backend.app_id).set_region("us").set_host(backend.url).build()
        )
        try:
            for index in range(participants):
                name = fake.name()
                uid = f"{name.split()[0].lower()}{index}"
                auth_token = backend.provision_user(uid, name, fake.image_url())
                client = CallsClient(name=uid, media=MediaProfile(450 + 150 * index, index + 1))
                recorder = EventRecorder(uid)
                person = _Participant(uid, name, client, recorder, CallView())
                people.append(person)
                await client.init(app)
                token = await client.generate_token(session_id, auth_token)
                listener = recorder.listener()
                settings = CallSettingsBuilder().set_call_listener(listener).build()
                t0 = time.monotonic()
                await client.start_session(token.token, settings, person.view)
                await client.wait_joined()
                if client.session is not None:
                    await client.session.media_connected.wait()
                person.join_seconds = time.monotonic() - t0
                result.join_seconds.append(person.join_seconds)

            everyone = {p.uid for p in people}
            for p in people:
                others = everyone - {p.uid}
                ev = p.client.evidence
                await ev.wait_for(_hears_and_sees(ev, others), MEDIA_TIMEOUT)
                result.heard[p.uid] = set(ev.heard())

            # Mute through the API: nobody hears that participant any more.
            muted = people[1]
            muted.client.mute_audio(True)
            for p in people:
                if p is not muted:
                    ev = p.client.evidence
                    await ev.wait_for(_not_hearing(ev, muted.uid), MEDIA_TIMEOUT)
                    result.heard_after_mute[p.uid] = set(ev.heard())
            # The mute button emits on_user_muted locally (K13).
            people[0].view.press("mute_audio")
            people[0].view.press("mute_audio")
            # Screen share: a second video stream reaches the others.
            sharer = people[-1]
            sharer.client.start_screen_share()
            for p in people:
                if p is not sharer:
                    ev = p.client.evidence
                    await ev.wait_for(_screen_frames(ev, sharer.uid, 3), MEDIA_TIMEOUT)
                    result.screen_frames[p.uid] = ev.frames_from(sharer.uid, "screen")
            sharer.client.stop_screen_share()

            if console is not None:
                _print_media(console, people)

            # Session-only end flow (§F.7): the first presses the end button and its app
            # calls end_session(); the others follow as the app would on their events.
            people[0].view.press("end_call")
            people[0].client.end_session()
            await people[0].client.wait_closed()
            for p in people[1:-1]:
                p.client.end_session()
                await p.client.wait_closed()
            last = people[-1]
            await last.recorder.wait_for("on_call_ended")
            last.client.end_session()
            await last.client.wait_closed()
            result.events = {p.uid: p.recorder.names() for p in people}
            if console is not None:
                _print_events(console, people)

            await _ringing_call(
                backend, app, caller=people[0], callee=people[1], result=result, console=console
            )
        finally:
            for p in people:
                await p.client.aclose()
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    result.cpu_seconds = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    result.wall_seconds = time.monotonic() - started
    result.max_rss_mib = usage1.ru_maxrss / 1024
    if console is not None:
        console.print(
            f"[bold]Ringing call[/]: initiate → both in media {result.ringing_in_media * 1000:.0f} ms; "
            f"the stored call says {result.ringing_status!r}"
        )
        console.print(
            f"[bold]{participants} participants[/]: join (start_session → media connected) "
            f"median {statistics.median(result.join_seconds) * 1000:.0f} ms; "
            f"CPU {result.cpu_seconds:.1f} s over {result.wall_seconds:.1f} s wall; "
            f"peak RSS {result.max_rss_mib:.0f} MiB"
        )
    return result


async def _ringing_call(
    backend: Backend,
    app: CallAppSettings,
    *,
    caller: _Participant,
    callee: _Participant,
    result: DemoResult,
    console: Console | None,
) -> None:
    """§F.6 then §F.7: ring, accept, both join the call's session, the caller ends it."""
    chats = {p.uid: ChatClient(name=p.uid) for p in (caller, callee)}
    chat_events = {p.uid: EventRecorder(p.uid, CALL_CALLBACKS) for p in (caller, callee)}
    session_events = {p.uid: EventRecorder(p.uid) for p in (caller, callee)}
    try:
        for p in (caller, callee):
            await chats[p.uid].init(app)
            await chats[p.uid].login(p.uid, backend.api_key)
            chats[p.uid].add_call_listener("demo", chat_events[p.uid].handlers())
        a, b = chats[caller.uid], chats[callee.uid]
        started = time.monotonic()
        call = await a.initiate_call(Call(callee.uid, "video", "user"))
        incoming = (await chat_events[callee.uid].wait_for("on_incoming_call_received"))[0]
        await b.accept_call(incoming.get_session_id())
        await chat_events[caller.uid].wait_for("on_outgoing_call_accepted")
        session_id = call.get_session_id()
        assert session_id is not None
        for p in (caller, callee):
            user = chats[p.uid].get_logged_in_user()
            assert user is not None
            token = await p.client.generate_token(session_id, user.get_auth_token())
            settings = CallSettingsBuilder().set_call_listener(session_events[p.uid].listener()).build()
            await p.client.start_session(token.token, settings, p.view)
        for p, other in ((caller, callee), (callee, caller)):
            await p.client.wait_joined()
            await p.client.evidence.wait_for(_hears_and_sees(p.client.evidence, {other.uid}), MEDIA_TIMEOUT)
        result.ringing_in_media = time.monotonic() - started

        async with asyncio.TaskGroup() as apps:

            async def caller_ends() -> None:
                await a.end_call(session_id)
                a.clear_active_call()
                caller.client.end_session()

            def callee_ended() -> None:
                b.clear_active_call()
                callee.client.end_session()

            caller.client.add_call_event_listener(
                "app", {"on_call_end_button_pressed": lambda: apps.create_task(caller_ends())}
            )
            callee.client.add_call_event_listener("app", {"on_call_ended": callee_ended})
            caller.view.press("end_call")
            await chat_events[callee.uid].wait_for("on_call_ended_message_received")
            await callee.client.wait_closed()
            await caller.client.wait_closed()
        result.ringing_status = str(backend.calls.details(session_id, caller.uid)["status"])
    finally:
        for client in chats.values():
            await client.aclose()
    for p in (caller, callee):
        result.ringing_events[p.uid] = chat_events[p.uid].names() + session_events[p.uid].names()
    if console is not None:
        console.print("[bold]Ringing call[/] (chat callbacks, then the session's):")
        for p in (caller, callee):
            console.print(f"  {p.uid}: {', '.join(result.ringing_events[p.uid])}")


def _print_media(console: Console, people: list[_Participant]) -> None:
    table = Table(title="What each participant heard and saw (measured from the media)")
    for column in (
        "participant",
        "hears (uid: tone Hz)",
        "camera frames from",
        "screen frames",
        "latency p50",
    ):
        table.add_column(column)
    for p in people:
        ev = p.client.evidence
        heard = ", ".join(f"{uid}: {tone}" for uid, tone in sorted(ev.heard().items())) or "nobody"
        frames = ", ".join(f"{o.uid}: {ev.frames_from(o.uid)}" for o in people if o is not p)
        screens = ", ".join(
            f"{o.uid}: {n}" for o in people if o is not p and (n := ev.frames_from(o.uid, "screen"))
        )
        lat = ev.latencies_ms()
        table.add_row(
            p.uid, heard, frames, screens or "-", f"{statistics.median(lat):.0f} ms" if lat else "-"
        )
    console.print(table)


def _print_events(console: Console, people: list[_Participant]) -> None:
    for p in people:
        console.print(f"[bold]{p.name}[/] ({p.uid}) received:")
        for name, args in p.recorder.events:
            console.print(f"  {_summary(name, args)}")


def main(participants: int, seed: int) -> int:
    console = Console()
    asyncio.run(run_demo(participants, seed, console))
    return 0
