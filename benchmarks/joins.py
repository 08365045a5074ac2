"""Joins at scale: how fast a crowd comes in, split against bundled.

Each measurement is a real ``callsim run`` like :mod:`benchmarks.capacity` (rooms of 4,
lean participants sending and receiving media, the backend pinned to one core and the
generator to the other), with every participant on one transport:

* ``split`` — a publish and a subscribe connection per participant; every join renegotiates
  the subscribe connection of each room-mate (the earlier design);
* ``bundled`` — one connection with receive slots; a join costs the room-mates a ``slots``
  message.

Per run: createOffer → connected (p95), the join time (p95), the generator's event-loop lag
(p99) while people join and once everyone is in, the **backend's CPU per join**, and the
share of a core each side uses once everyone is in, beside its media floor
(:mod:`benchmarks.floor`, measured in the run's process just before it). What
the backend spends while people join also pays for the media of those already in; the SFU
times its RTP handlers, and :func:`join_cost_ms` leaves that time out.

:func:`churn_descriptions` measures the description a subscriber holds as others come and
go: in-process, one observer and waves of others joining and leaving.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import multiprocessing
import os
import secrets
import time
from typing import Any, Final

import aiohttp

from benchmarks.floor import measure_floor
from benchmarks.served import served_backend
from simulator import eventloop
from simulator.crowd.metrics import CONNECT_PHASES
from simulator.crowd.plan import QUIET
from simulator.crowd.runner import RunResult, run_scenario
from simulator.crowd.scenario import Header, Scenario, Sessions
from simulator.crowd.steady import SteadyState
from simulator.media import library
from simulator.media.tones import TONES_HZ
from simulator.protocol import Transport
from simulator.sdk import CallAppSettings, CallAppSettingsBuilder, CallsClient, CallSettingsBuilder, CallView
from simulator.server import Backend
from simulator.server.sfu import SfuPeer

__all__ = [
    "RATES",
    "SIZES",
    "TRANSPORTS",
    "churn_descriptions",
    "join_cost_ms",
    "join_into_a_full_room",
    "measure_joins",
    "measure_joins_apart",
]

TRANSPORTS: Final[tuple[Transport, ...]] = ("split", "bundled")
SIZES: Final = (100, 200, 400)
RATES: Final = (50.0, 100.0)
SHORT_LADDER: Final = {(100, 50.0), (200, 50.0)}
"""The ramps ``--ladder short`` keeps (the default run's): the goal's row and the one below it.
The 400-participant ramps no longer fit a 2-core machine once all are in (docs/media.md), and
100 joins/s repeats what 50/s shows; ``tox -e bench`` runs the whole ladder."""
STEADY_SECONDS: Final = 10.0
"""Run time after the last join, at least: settling, then a steady window of a few samples."""


BACKGROUND_SECONDS: Final = 3.0
"""The last seconds of a run (everyone in, before the final leaves): the backend's work then,
media aside, is its background per participant in the call."""


def join_cost_ms(result: RunResult) -> float | None:
    """The backend's CPU per join in ms, its media left out (see above).

    The runner reads the backend's CPU and the time its SFU spent in RTP handlers (its media)
    every quarter second; the rest is its control plane: the joins (HTTP, tokens, negotiation,
    ICE, DTLS, the room-mates' renegotiations or slot messages) and a background per
    participant in the call (consent checks, reports, slot reviews). The background comes from
    the run's last :data:`BACKGROUND_SECONDS` before the leaves; what the control plane spent
    from the first join until then, less that background for the participants present, is the
    joins'. None when that leaves nothing: the backend was overloaded, its joins still running
    when the background was read.
    """
    media = dict(result.backend_media)
    control = sorted((at, cpu - media.get(at, 0.0)) for at, cpu in result.backend_cpu if at >= 0.0)
    joins = sorted(p.join_at for p in result.plan.participants)
    if not joins or not control:
        return None
    end = result.plan.scenario.scenario.duration - 0.5  # everyone leaves at the end
    settled = end - BACKGROUND_SECONDS
    ramp = [(at, c) for at, c in control if at <= settled]
    background = [(at, c) for at, c in control if settled <= at <= end]
    if len(ramp) < 2 or len(background) < 2 or joins[-1] >= settled:
        return None
    (start, at_start), (stop, at_stop) = ramp[0], ramp[-1]
    (first, bg_first), (last, bg_last) = background[0], background[-1]
    if last <= first:
        return None
    per_participant_second = (bg_last - bg_first) / (last - first) / len(joins)
    present = sum(max(0.0, stop - max(start, at)) for at in joins)
    joined = sum(1 for at in joins if at >= start)
    if not joined:
        return None
    spent = at_stop - at_start - per_participant_second * present
    if spent <= 0:
        # An overloaded backend: its join work ran on past the ramp into the background
        # window, which then takes it for background. No figure rather than a wrong one.
        return None
    return round(spent / joined * 1000, 2)


def _ramp_lag_p99(result: RunResult) -> float:
    participants = len(result.plan.participants)
    lags = sorted(lag for s in result.metrics.series if s["joined"] < participants for lag in s["lags_ms"])
    return round(lags[min(len(lags) - 1, int(len(lags) * 0.99))], 1) if lags else 0.0


def measure_joins(transport: Transport, participants: int, rate: float) -> dict[str, Any]:
    """One pinned run of ``participants`` lean participants joining at ``rate`` on ``transport``."""
    joining = participants / rate
    floor = measure_floor()
    scenario = Scenario(
        scenario=Header(
            name=f"joins-{transport}-{participants}-{rate:g}",
            seed=17,
            # Joins must fit in the first half of a run less its quiet end (simulator.crowd.plan).
            duration=max(2 * (joining + QUIET), joining + STEADY_SECONDS),
            join_rate=rate,
        ),
        sessions=(Sessions(count=participants // 4, participants=4, media="lean", transport=transport),),
    )
    result = eventloop.run(run_scenario(scenario, workers=1, pin=True))
    state: SteadyState | None = result.steady
    connect = result.metrics.summary("connect_ms")
    joins = result.metrics.summary("join_ms")
    return {
        "transport": transport,
        "participants": participants,
        "rate": rate,
        "connect_p95_ms": connect.get("p95"),
        "connect_count": connect.get("count", 0),
        "connect_phases_p95_ms": {
            phase: result.metrics.summary(f"connect_{phase}_ms").get("p95") for phase in CONNECT_PHASES
        },
        "join_p95_ms": joins.get("p95"),
        "backend_cpu_per_join_ms": join_cost_ms(result),
        "backend_steady_share": None if state is None else state.backend_cpu_share,
        "generator_steady_share": None if state is None else round(state.generator_cpu_share, 3),
        "media_floor": floor.to_data(),
        "floor_share": {
            "sfu": round(participants * floor.sfu_share, 3),
            "sfu_waking": round(participants * floor.sfu_waking_share, 3),
            "generator": round(participants * floor.generator_share, 3),
        },
        "ramp_lag_p99_ms": _ramp_lag_p99(result),
        "steady_lag_p99_ms": None if state is None else state.generator_lag_p99_ms,
        "delivery": None if state is None else state.delivery,
        "errors": result.worker_errors[:3],
    }


def measure_joins_apart(transport: Transport, participants: int, rate: float) -> dict[str, Any]:
    """:func:`measure_joins` in a fresh process: what one run leaves behind (garbage, caches,
    the allocator's state, a hot core) must not weigh on the next, so that neither transport
    is favoured by the order the runs come in."""
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(measure_joins, transport, participants, rate).result()


ROOM_MATES: Final = 3
CYCLES: Final = 60
QUIET_SECONDS: Final = 3.0
"""How long the backend's background (the room-mates' media) is read before the cycles."""


async def _enter(
    stack: contextlib.AsyncExitStack, app: CallAppSettings, transport: Transport, uid: str, auth_token: str
) -> CallsClient:
    """A lean participant in the session ``joins``, its media connected."""
    client = CallsClient(name=uid, media_path="lean", transport=transport)
    await stack.enter_async_context(client)
    await client.init(app)
    token = await client.generate_token("joins", auth_token)
    await client.start_session(token.token, CallSettingsBuilder().build(), CallView())
    assert client.session is not None
    async with asyncio.timeout(30):
        await client.session.media_connected.wait()
    return client


async def _leave(client: CallsClient) -> None:
    session = client.session
    assert session is not None
    client.end_session()
    async with asyncio.timeout(30):
        await session.closed.wait()


async def join_into_a_full_room(transport: Transport, cycles: int = CYCLES) -> dict[str, Any]:
    """One participant joins a room of :data:`ROOM_MATES` and leaves, ``cycles`` times in a
    row: what a join and its leave cost the backend (its own process, on its own core: its CPU
    less the room-mates' media as read before), the client (this process) and the wait
    (createOffer → connected), with nothing else going on. The figure churn pays per join."""
    # What the participants send is encoded once per process (a tone each, 18 of them): done
    # first, as a worker does, or the first cycles would charge it to their joins.
    library.prepare(TONES_HZ)
    key = secrets.token_hex(8)
    cores = sorted(os.sched_getaffinity(0))
    previous = set(cores)
    async with served_backend(":memory:", key) as served, contextlib.AsyncExitStack() as stack:
        served.process.cpu_affinity([cores[-1]])
        os.sched_setaffinity(0, set(cores[:-1]))
        try:
            uids = [f"mate-{n}" for n in range(ROOM_MATES)] + [f"joiner-{n}" for n in range(cycles)]
            async with aiohttp.ClientSession(headers={"apiKey": key}) as http:
                tokens = {uid: await _provision(http, served.url, uid) for uid in uids}
            app = CallAppSettingsBuilder().set_app_id("callsim").set_region("us").set_host(served.url).build()
            for uid in uids[:ROOM_MATES]:
                await _enter(stack, app, transport, uid, tokens[uid])
            cpu = lambda: sum(served.process.cpu_times()[:2])  # noqa: E731 - user + system
            start, at = cpu(), time.monotonic()
            await asyncio.sleep(QUIET_SECONDS)  # a measurement window, not a synchronisation
            background = (cpu() - start) / (time.monotonic() - at)
            connects: list[float] = []
            start, at, mine = cpu(), time.monotonic(), time.process_time()
            for uid in uids[ROOM_MATES:]:
                async with contextlib.AsyncExitStack() as one:
                    client = await _enter(one, app, transport, uid, tokens[uid])
                    session = client.session
                    assert session is not None
                    assert session.connect_ms is not None
                    connects.append(session.connect_ms)
                    await _leave(client)
            spent, wall, mine = cpu() - start, time.monotonic() - at, time.process_time() - mine
        finally:
            os.sched_setaffinity(0, previous)
    connects.sort()
    return {
        "transport": transport,
        "cycles": cycles,
        "backend_cpu_per_join_ms": round((spent - background * wall) / cycles * 1000, 2),
        "client_cpu_per_join_ms": round(mine / cycles * 1000, 2),
        "connect_p50_ms": round(connects[len(connects) // 2], 1),
        "connect_p95_ms": round(connects[min(len(connects) - 1, int(len(connects) * 0.95))], 1),
    }


async def _provision(http: aiohttp.ClientSession, url: str, uid: str) -> str:
    await (await http.post(f"{url}users", json={"uid": uid, "name": uid})).release()
    async with http.post(f"{url}users/{uid}/auth_tokens") as response:
        return str((await response.json())["data"]["authToken"])


async def churn_descriptions(transport: Transport, *, waves: int = 6, at_once: int = 3) -> list[int]:
    """The observer's description size (bytes, every connection) after each wave of ``at_once``
    others joining and leaving again, in-process on the lean path."""
    async with Backend() as backend, contextlib.AsyncExitStack() as stack:
        app = CallAppSettingsBuilder().set_app_id("callsim").set_region("us").set_host(backend.url).build()

        async def enter(uid: str) -> CallsClient:
            return await _enter(stack, app, transport, uid, backend.provision_user(uid, uid))

        observer = await enter("observer")
        assert observer.session is not None
        assert observer.session.me is not None
        room = backend.rooms.get("joins")
        assert room is not None
        peer = room.participants[observer.session.me.participant_id].sfu
        assert isinstance(peer, SfuPeer)
        sizes = []
        for wave in range(waves):
            others = [await enter(f"p{wave}-{n}") for n in range(at_once)]
            uids = {c.name for c in others}

            def all_heard(uids: set[str] = uids) -> bool:
                return uids <= set(observer.evidence.heard())

            await observer.evidence.wait_for(all_heard, 30)
            for client in others:
                await _leave(client)
            sizes.append(peer.description_bytes)
        return sizes
