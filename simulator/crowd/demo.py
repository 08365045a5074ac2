"""``callsim demo``: a few virtual participants in one call session on the embedded backend.

Each participant is a :class:`CallsClient` with a Faker identity, fake devices and
synthetic media. The demo joins them, waits until everyone hears and sees everyone,
exercises mute (API and button), screen share and the session-only end flow, and
prints what each one received, heard and saw — measured from the media, not assumed.
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

from simulator.media.analysers import MediaEvidence
from simulator.sdk import (
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
        finally:
            for p in people:
                await p.client.aclose()
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    result.cpu_seconds = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    result.wall_seconds = time.monotonic() - started
    result.max_rss_mib = usage1.ru_maxrss / 1024
    result.events = {p.uid: p.recorder.names() for p in people}
    if console is not None:
        _print_events(console, people)
        console.print(
            f"[bold]{participants} participants[/]: join (start_session → media connected) "
            f"median {statistics.median(result.join_seconds) * 1000:.0f} ms; "
            f"CPU {result.cpu_seconds:.1f} s over {result.wall_seconds:.1f} s wall; "
            f"peak RSS {result.max_rss_mib:.0f} MiB"
        )
    return result


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
