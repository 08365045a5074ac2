"""One worker: a shard's participants on one event loop, bounded in time.

:func:`run_shard` takes plain data (a :class:`WorkerJob`) and returns plain data (the
metrics), so it runs the same in a local process pool or, later, as a Ray task. It
measures itself — CPU and event-loop lag — so a run can tell when the generator, not
the backend, was the limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import queue
import resource
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp
import psutil

from simulator import eventloop
from simulator.crowd.jitsi import JitsiProtocolParticipant, JitsiTarget
from simulator.crowd.live import LIVE_HISTOGRAMS
from simulator.crowd.metrics import Metrics
from simulator.crowd.participant import NativeParticipant, VirtualParticipant
from simulator.crowd.plan import Action, PlannedParticipant, Shard
from simulator.media import library
from simulator.sdk import CallAppSettings
from simulator.sdk.jitsi.media import SIMULCAST

__all__ = ["WorkerJob", "run_shard", "worker_main"]

logger = logging.getLogger(__name__)

GRACE: Final = 30.0
"""Seconds past the scenario's end a worker may take to leave and close."""
LAG_PROBE: Final = 0.1
STATS_EVERY: Final = 2.0
GENERATOR_CPU_LIMIT: Final = 0.7
"""Above 70 % of a core a worker's own delays distort what it measures (docs/media.md pitfall 8)."""
GENERATOR_LAG_LIMIT_MS: Final = 50.0


class LogTally(logging.Handler):
    """Counts what the worker's libraries log, so the summary tells what the terminal would
    have scrolled past: records at ERROR and above as ``logged_errors``, and a decoder's
    "failed to decode" warnings (a sampled full-path participant receiving mid-stream,
    before its first keyframe) as ``decode_failures``, which are then not printed one by one.
    """

    DECODER_LOGGER: Final = "aiortc.rtcrtpreceiver"

    def __init__(self, metrics: Metrics) -> None:
        super().__init__(logging.WARNING)
        self._metrics = metrics

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            self._metrics.count("logged_errors")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == self.DECODER_LOGGER and "failed to decode" in str(record.msg):
            self._metrics.count("decode_failures")
            return False
        return True

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Count on the root logger, and silence decoder warnings at their source."""
        root, decoder = logging.getLogger(), logging.getLogger(self.DECODER_LOGGER)
        root.addHandler(self)
        decoder.addFilter(self)
        try:
            yield
        finally:
            decoder.removeFilter(self)
            root.removeHandler(self)


@dataclass(frozen=True)
class WorkerJob:
    shard: Shard
    host: str
    app_id: str
    api_key: str
    auth_tokens: dict[str, str]
    start_wall: float
    """``time.time()`` at which the run's t = 0 falls (shared by every worker)."""
    duration: float
    ringing: bool
    networks: dict[str, str] = field(default_factory=dict)
    """uid → network name of every planned participant that has one (any shard's: what the
    others saw *of* a network's participants is counted where they are received)."""
    jitsi: JitsiTarget | None = None
    """Where the Jitsi door's participants join (None: the plan has none)."""


def worker_main(job: WorkerJob, progress: Any, results: Any, stop: Any) -> None:
    """Entry point of a worker process: Ctrl-C is the parent's to handle (it sets ``stop``)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING)
    try:
        data = run_shard(job, progress, stop)
    except Exception as exc:  # reported to the parent, which fails the run with it
        logger.exception("worker %s failed", job.shard.number)
        data = {"error": f"{type(exc).__name__}: {exc}", "worker": job.shard.number}
    results.put(data)


def run_shard(job: WorkerJob, progress: Any = None, stop: Any = None) -> dict[str, Any]:
    """Run one shard to the end of the scenario; its metrics as plain data."""
    return eventloop.run(_run(job, progress, stop))


async def _run(job: WorkerJob, progress: Any, stop: Any) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    origin = loop.time() + (job.start_wall - time.time())

    def clock() -> float:
        return loop.time() - origin

    preencoded = [p for p in job.shard.participants if p.media_path != "full"]
    if preencoded:
        library.prepare(p.tone_hz for p in preencoded)
    if any(p.simulcast for p in job.shard.participants):
        for profile in SIMULCAST:  # the layers' loops, read (or encoded) before anyone joins
            library.video_stream(profile)
    metrics = Metrics()
    with LogTally(metrics).installed():
        return await _run_participants(job, progress, stop, metrics, clock)


async def _run_participants(
    job: WorkerJob, progress: Any, stop: Any, metrics: Metrics, clock: Callable[[], float]
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    rss_start = _rss_mib()
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    wall0 = loop.time()
    app = CallAppSettings(job.app_id, "us", job.host)
    # Every participant holds a WebSocket on this session: aiohttp's default pool of 100
    # connections would make the 101st participant wait for a socket that never frees.
    tls = True if job.jitsi is None else job.jitsi.tls
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, ssl=tls)) as http:

        def seat(p: PlannedParticipant) -> VirtualParticipant:
            common: dict[str, Any] = {
                "app": app, "auth_token": _auth_token(job, p), "metrics": metrics,
                "clock": clock, "http": http, "ringing": job.ringing, "networks": job.networks,
            }  # fmt: skip
            if p.door == "jitsi":
                assert job.jitsi is not None, "a Jitsi-door participant needs the run's JitsiTarget"
                return JitsiProtocolParticipant(p, target=job.jitsi, **common)
            return NativeParticipant(p, **common)

        participants = {p.identity.uid: seat(p) for p in job.shard.participants}
        for participant in participants.values():
            await participant.start()
        queues: dict[str, asyncio.Queue[Action | None]] = {uid: asyncio.Queue() for uid in participants}
        try:
            async with (
                asyncio.timeout(max(0.0, job.duration - clock()) + GRACE),
                asyncio.TaskGroup() as group,
            ):
                for uid, participant in participants.items():
                    group.create_task(_act_in_order(participant, queues[uid]))
                lags: list[float] = []
                watchers = [
                    group.create_task(_probe_lag(metrics, lags)),
                    group.create_task(_report(job, metrics, participants, clock, progress, lags=lags)),
                ]
                await _dispatch(job.shard.actions, queues, clock, stop, job.duration)
                for q in queues.values():
                    q.put_nowait(None)
                for task in watchers:
                    task.cancel()
        except TimeoutError:
            metrics.count("errors")
            metrics.observe("error", clock(), uid="*", code="worker did not finish within the grace period")
        finally:
            for participant in participants.values():
                with contextlib.suppress(Exception):
                    await participant.aclose()
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    wall = loop.time() - wall0
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    lag = metrics.summary("loop_lag_ms")
    limited = cpu / max(wall, 1e-9) > GENERATOR_CPU_LIMIT or lag.get("p99", 0) > GENERATOR_LAG_LIMIT_MS
    # The steady state: the last sample with everyone in (before the final leaves).
    steady = [s for s in metrics.series if s["joined"] == len(participants)]
    last = steady[-1] if steady else {}
    metrics.workers.append(
        {
            "worker": job.shard.number,
            "participants": len(participants),
            "cpu_seconds": round(cpu, 3),
            "wall_seconds": round(wall, 3),
            "cpu_share": round(cpu / max(wall, 1e-9), 3),
            "loop_lag_p99_ms": lag.get("p99", 0),
            "max_rss_mib": round(usage1.ru_maxrss / 1024, 1),
            "rss_start_mib": round(rss_start, 1),
            "rss_steady_mib": last.get("rss_mib", 0.0),
            "frames_received": last.get("frames_received", 0),
            "frames_expected": last.get("frames_expected", 0),
            "packets_received": last.get("packets_received", 0),
            "packets_lost": last.get("packets_lost", 0),
            "generator_limited": limited,
        }
    )
    return metrics.to_data()


def _auth_token(job: WorkerJob, planned: PlannedParticipant) -> str:
    """Its auth token (KeyError, failing the shard, if the run gave none); a Jitsi deployment
    that hands out JWTs, or none, needs no auth token."""
    if planned.door == "jitsi" and job.jitsi is not None and job.jitsi.tokens != "rest":
        return ""
    return job.auth_tokens[planned.identity.uid]


def _rss_mib() -> float:
    return float(psutil.Process().memory_info().rss) / 2**20


async def _dispatch(
    actions: tuple[Action, ...],
    queues: dict[str, asyncio.Queue[Action | None]],
    clock: Any,
    stop: Any,
    end: float,
) -> None:
    """Hand each action to its participant at its time; stop early if asked."""
    for action in actions:
        while (wait := action.at - clock()) > 0:
            if stop is not None and stop.is_set():
                # Ctrl-C: everyone leaves now; nothing else is started.
                for uid, q in queues.items():
                    q.put_nowait(Action(clock(), uid, "leave"))
                return
            await asyncio.sleep(min(wait, 0.2))  # the schedule's own pacing, on the loop clock
        queues[action.uid].put_nowait(action)
    # ``stop`` is a process-shared event with no asyncio face: look at it every 0.2 s.
    while clock() < end and not (stop is not None and stop.is_set()):  # noqa: ASYNC110
        await asyncio.sleep(min(end - clock(), 0.2))


async def _act_in_order(participant: VirtualParticipant, actions: asyncio.Queue[Action | None]) -> None:
    while (action := await actions.get()) is not None:
        await participant.act(action)


async def _probe_lag(metrics: Metrics, lags: list[float]) -> None:
    loop = asyncio.get_running_loop()
    while True:
        before = loop.time()
        await asyncio.sleep(LAG_PROBE)
        lag = max(0.0, (loop.time() - before - LAG_PROBE) * 1000)
        metrics.record("loop_lag_ms", lag + 1)
        lags.append(lag)


async def _report(
    job: WorkerJob,
    metrics: Metrics,
    participants: dict[str, VirtualParticipant],
    clock: Any,
    progress: Any,
    *,
    lags: list[float],
) -> None:
    """Every few seconds: what arrived (frames against the nominal rates, RTP packets and
    loss), this process's CPU and its loop-lag probes since the last sample, and progress.

    Once everyone is in, the ramp's garbage is collected once and what survives (the
    connections and sessions, which live for the run) is frozen out of the collector's
    view: its full passes over them took 50–160 ms at 200 participants (measured with
    ``gc.callbacks``), each one a stall of every stream. That sample is skipped, so the
    steady window starts after the pause.
    """
    settled = False
    # Bytes received only ever grow: each connection adds what it received since the last
    # sample (a new one from zero), so a leave is not a drop in the rate (or a fake outage).
    last_octets: dict[str, tuple[object, int]] = {}
    received_total = 0
    while True:
        await asyncio.sleep(STATS_EVERY)  # a sampling period
        if not settled and all(p.in_session for p in participants.values()):
            settled = True
            gc.collect()
            gc.freeze()
            lags.clear()
            continue
        period_lags = [round(lag, 1) for lag in lags]
        lags.clear()
        received = lost = packets = frames = 0
        expected = 0.0
        jitters: list[float] = []
        for participant in participants.values():
            session = participant.session_key
            if session is None or not participant.in_session:
                continue
            participant.record_latencies()  # live, for the watchers (the rest at its leave)
            with contextlib.suppress(Exception):
                stats = await participant.receive_stats()
                assert stats is not None
                packets, lost, received = packets + stats.packets, lost + stats.lost, received + stats.octets
                jitters.append(stats.jitter_ms)
                before, octets = last_octets.get(participant.uid, (None, 0))
                grown = stats.octets - octets
                received_total += grown if before is session and grown >= 0 else stats.octets
                last_octets[participant.uid] = (session, stats.octets)
            delivered, due = participant.evidence.delivery()
            frames, expected = frames + delivered, expected + due
        joined = sum(p.in_session for p in participants.values())
        sample = {
            "at": round(clock(), 2), "worker": job.shard.number, "joined": joined, "bytes_received": received,
            "bytes_received_total": received_total,
            "packets_received": packets, "packets_lost": lost, "frames_received": frames,
            "frames_expected": round(expected), "rss_mib": round(_rss_mib(), 1),
            "cpu_s": round(time.process_time(), 3), "lags_ms": period_lags,
            "jitter_ms": round(sum(jitters) / len(jitters), 2) if jitters else 0.0,
            "events": metrics.counters["events"], "errors": metrics.counters["errors"],
            "counters": dict(metrics.counters),
            "histograms": {name: metrics.encoded(name) for name in LIVE_HISTOGRAMS},
        }  # fmt: skip
        metrics.series.append(sample)
        if progress is not None:
            with contextlib.suppress(queue.Full, ValueError, OSError):
                progress.put_nowait(sample)
