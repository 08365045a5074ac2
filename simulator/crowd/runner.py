"""``callsim run``: a scenario's shards on worker processes, against the embedded backend
(default) or a running one, with a live display, then judged and reported.

The runner provisions the plan's users, starts one process per shard (spawned: each
has its own event loop), shows progress while they run, and always stops: at the
scenario's end plus a grace period, or at Ctrl-C (every participant leaves, every
process is joined or, failing that, terminated).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import aiohttp
import psutil
from rich.console import Console
from rich.live import Live
from rich.table import Table
from yarl import URL

from simulator.crowd.canary import CanaryRun, canaries_missing
from simulator.crowd.engines import Engine, LocalEngine
from simulator.crowd.expectations import ExpectationResult, doors_seen, evaluate, loss_percent, networks_seen
from simulator.crowd.jitsi import XMPP_PHASES, JitsiTarget, TargetError, probe
from simulator.crowd.live import LiveRun
from simulator.crowd.metrics import CONNECT_PHASES, Metrics
from simulator.crowd.plan import Plan, make_plan
from simulator.crowd.scenario import Scenario
from simulator.crowd.steady import SteadyState, steady_state
from simulator.crowd.worker import GRACE, WorkerJob
from simulator.media import library
from simulator.media.rtp import handler_time
from simulator.published_sdk import DOMAIN, SDK_BUNDLE
from simulator.sdk.jitsi.media import SIMULCAST
from simulator.server import Backend
from simulator.server.jitsi.prosody import ProsodyError

__all__ = ["RunResult", "RunSetupError", "run_scenario"]

JOIN_PROCESS_TIMEOUT: Final = 20.0
PROGRESS_EVERY: Final = 2.0


class RunSetupError(RuntimeError):
    """The run could not start: the backend refused provisioning, or options conflict."""


@dataclass
class RunResult:
    plan: Plan
    metrics: Metrics
    expectations: list[ExpectationResult]
    wall_seconds: float
    interrupted_at: float | None = None
    """Run time (seconds since t = 0) at which Ctrl-C stopped the run, or None."""
    worker_errors: list[str] = field(default_factory=list)
    backend_cpu_share: float | None = None
    """CPU of the embedded backend and SFU (this process), as a share of one core."""
    prosody_cpu_share: float | None = None
    """CPU of the embedded XMPP door's Prosody (its own process), as a share of one core; None
    without the door. The focus and the bridge are in ``backend_cpu_share``."""
    backend_cpu: list[tuple[float, float]] = field(default_factory=list)
    """(run time, this process's CPU seconds then), read every quarter second or so."""
    backend_media: list[tuple[float, float]] = field(default_factory=list)
    """(run time, the embedded SFU's seconds in RTP handlers then), read with ``backend_cpu``: its
    media, told apart from the rest of its work (:class:`~simulator.media.rtp.HandlerTime`)."""
    steady: SteadyState | None = None
    """The steady window (everyone in): delivery, CPU per core, memory (see :mod:`steady`)."""
    canaries: list[dict[str, Any]] = field(default_factory=list)
    """What each canary (the published SDK in Chromium) saw (:class:`.canary.CanaryFigures`)."""

    @property
    def interrupted(self) -> bool:
        return self.interrupted_at is not None

    @property
    def passed(self) -> bool:
        """No expectation failed and every worker finished (an interrupted run can pass so far)."""
        return not any(e.failed for e in self.expectations) and not self.worker_errors

    @property
    def verdict(self) -> str:
        """PASS, FAIL or INTERRUPTED: the one word every output leads with."""
        if self.interrupted:
            return "INTERRUPTED"
        return "PASS" if self.passed else "FAIL"

    @property
    def heading(self) -> str:
        """The verdict with what it covers: an interrupted run says when it was stopped."""
        name = self.plan.scenario.scenario.name
        if self.interrupted_at is None:
            return f"callsim run — {name}: {self.verdict}"
        return (
            f"callsim run — {name}: INTERRUPTED at {max(0.0, self.interrupted_at):.1f} s of "
            f"{self.plan.scenario.scenario.duration:g} s (judged up to then)"
        )

    @property
    def generator_limited(self) -> bool:
        return any(w["generator_limited"] for w in self.metrics.workers)


async def _provision_remote(url: str, api_key: str, plan: Plan, *, tls: bool = True) -> dict[str, str]:
    tokens = {}
    connector = aiohttp.TCPConnector(ssl=tls)
    async with aiohttp.ClientSession(headers={"apiKey": api_key}, connector=connector) as http:
        for p in plan.participants:
            uid = p.identity.uid
            await (await http.post(f"{url}users", json={"uid": uid, "name": p.identity.name})).release()
            async with http.post(f"{url}users/{uid}/auth_tokens") as response:
                body = await response.json()
                if "data" not in body:
                    error = body.get("error", {})
                    why = f"{error.get('code')}: {error.get('message')}"
                    raise RunSetupError(f"the backend at {url} refused to provision {uid}: {why}")
                tokens[uid] = body["data"]["authToken"]
    return tokens


def _progress_line(plan: Plan, latest: dict[int, dict[str, Any]], start_wall: float) -> str:
    joined = sum(s["joined"] for s in latest.values())
    events = sum(s["events"] for s in latest.values())
    errors = sum(s["errors"] for s in latest.values())
    return (
        f"progress: {_run_time(plan, start_wall)}, joined {joined}/{len(plan.participants)}, "
        f"callbacks {events}, errors {errors}"
    )


def _run_time(plan: Plan, start_wall: float) -> str:
    """Where the run is on its own clock: before t = 0, in the scenario, or past its end."""
    elapsed, duration = time.time() - start_wall, plan.scenario.scenario.duration
    if elapsed < 0:
        return f"starting in {-elapsed:.0f} s"
    if elapsed > duration:
        return f"{duration:g} s of {duration:g} s, finishing (leaves, reports)"
    return f"{elapsed:.0f} s of {duration:g} s"


def _progress_table(
    plan: Plan, latest: dict[int, dict[str, Any]], start_wall: float, previous: dict[int, dict[str, Any]]
) -> Table:
    joined = sum(s["joined"] for s in latest.values())
    events = sum(s["events"] for s in latest.values())
    errors = sum(s["errors"] for s in latest.values())

    def per_second(key: str) -> float:
        """Each worker's rate of ``key`` from its own last two samples (their own timestamps)."""
        total = 0.0
        for worker, now in latest.items():
            before = previous.get(worker)
            if before is not None and now["at"] > before["at"]:
                total += max(0.0, float(now[key] - before[key]) / float(now["at"] - before["at"]))
        return total

    rate = per_second("bytes_received_total") * 8 / 1e6
    table = Table(title=f"callsim run — {plan.scenario.scenario.name}", show_header=False)
    for label, value in [
        ("elapsed", _run_time(plan, start_wall)),
        ("participants joined", f"{joined} / {len(plan.participants)}"),
        ("sessions", str(len({p.session_id for p in plan.participants}))),
        ("callbacks", f"{events} ({per_second('events'):.0f}/s)"),
        ("receive rate", f"{rate:.2f} Mbit/s"),
        ("errors", str(errors)),
        ("workers reporting", f"{len(latest)}"),
    ]:
        table.add_row(label, value)
    return table


async def run_scenario(
    scenario: Scenario,
    *,
    workers: int | None = None,
    backend_url: str | None = None,
    api_key: str | None = None,
    console: Console | None = None,
    log: Callable[[str], None] | None = None,
    pin: bool = False,
    engine: Engine | None = None,
    target: JitsiTarget | None = None,
    live: LiveRun | None = None,
    sdk_bundle: Path = SDK_BUNDLE,
) -> RunResult:
    """Run ``scenario`` to its end (or Ctrl-C) and judge it.

    ``console`` shows a live display; without one, ``log`` gets a plain progress line
    every few seconds (for CI logs). ``pin`` keeps the backend (this process) and the
    workers on separate cores, so each one's share of a core is its own. ``engine`` runs the
    shards (default: :class:`~simulator.crowd.engines.LocalEngine`, processes on this machine).
    ``target`` is an external Jitsi-style deployment (every participant through the Jitsi door):
    one probe join first, so a target that cannot work fails the setup in one line. ``live``
    is kept up to date for watchers (the metrics endpoint, the dashboard), which may stop it.
    """
    shown = _Shown(console, log, live)
    result = await _run_scenario(
        scenario,
        workers=workers,
        backend_url=backend_url,
        api_key=api_key,
        pin=pin,
        engine=engine,
        target=target,
        shown=shown,
        sdk_bundle=sdk_bundle,
    )
    if live is not None:
        live.finish(result)
    return result


async def _run_scenario(
    scenario: Scenario,
    *,
    workers: int | None,
    backend_url: str | None,
    api_key: str | None,
    pin: bool,
    engine: Engine | None,
    target: JitsiTarget | None,
    shown: _Shown,
    sdk_bundle: Path,
) -> RunResult:
    plan = make_plan(scenario)
    if scenario.canaries and target is not None:
        raise RunSetupError(
            "canaries (browsers > 0) need a backend that serves the published SDK's page: the embedded "
            "one, or --backend (callsim serve); a Jitsi deployment is not one the published SDK joins"
        )
    remote_canaries = scenario.canaries and backend_url is not None
    if remote_canaries and (missing := canaries_missing(sdk_bundle, local=False)):
        raise RunSetupError(missing)
    # Encoded once on this machine, before t = 0, rather than by every worker after it.
    await asyncio.to_thread(library.warm, _profiles(plan))
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if pin and len(cores) < 2:
        raise RunSetupError("--pin needs at least two cores (and Linux)")
    worker_cores = cores[:-1] if pin else []
    shards = plan.shards(workers or len(worker_cores) or os.cpu_count() or 1)
    started = time.monotonic()
    if target is not None:
        return await _run_against(target, plan, shards, engine=engine, api_key=api_key, shown=shown)
    if backend_url is not None:
        if api_key is None:
            raise RunSetupError("--backend needs --api-key (the backend's apiKey, to provision users)")
        url = backend_url if backend_url.endswith("/") else f"{backend_url}/"
        remote = _Target(url, "callsim", api_key, await _provision_remote(url, api_key, plan))
        where = str(URL(url).host)  # its SDK page: Chromium resolves the SDK's host name there
        async with _canaries(plan, remote.tokens, resolve_to=where) as canaries:
            result = await _run_workers(
                plan, shards, remote, engine or LocalEngine(), shown=shown, started=started, canaries=canaries
            )
        _fold_media_counts(result, await _remote_media_counts(url, api_key))
        return result
    previous = os.sched_getaffinity(0) if pin else set()
    if pin:
        os.sched_setaffinity(0, {cores[-1]})
    handler_time.on = True  # the SFU's media, told apart from its joins (benchmarks.joins)
    try:
        async with _embedded(plan.scenario, sdk_bundle) as backend:
            if shown.live is not None:
                shown.live.backend = backend
            tokens = {p.identity.uid: backend.provision_user(p.identity.uid, p.identity.name)
                      for p in plan.participants}  # fmt: skip
            jitsi = None
            if plan.scenario.uses_jitsi:  # its own XMPP door, on the same plain-HTTP listener
                jitsi = JitsiTarget(
                    backend.url, backend.webrtc_host, "rest", rest=backend.url, bridge_base=backend.url
                )
            embedded = _Target(backend.url, backend.app_id, backend.api_key, tokens, jitsi)
            before = time.process_time()
            prosody = _ProcessCpu(backend.xmpp.prosody.pid if backend.xmpp is not None else None)
            local = engine or LocalEngine(worker_cores)
            async with _canaries(plan, tokens) as canaries:
                if canaries is not None and shown.live is not None:
                    shown.live.canaries = canaries.results
                result = await _run_workers(
                    plan, shards, embedded, local, shown=shown, started=started, canaries=canaries
                )
            result.backend_cpu_share = round(
                (time.process_time() - before) / max(result.wall_seconds, 1e-9), 3
            )
            result.prosody_cpu_share = prosody.share(result.wall_seconds)
            _fold_media_counts(result, backend.media_by_uid)
            return result
    finally:
        handler_time.on = False
        if pin:
            os.sched_setaffinity(0, previous)


class _ProcessCpu:
    """Another process's CPU from now on (None if there is none, or it is gone)."""

    def __init__(self, pid: int | None) -> None:
        self._process = None if pid is None else psutil.Process(pid)
        self._start = self._seconds()

    def _seconds(self) -> float:
        if self._process is None:
            return 0.0
        with contextlib.suppress(psutil.Error):
            times = self._process.cpu_times()
            return float(times.user + times.system)
        return 0.0

    def share(self, wall: float) -> float | None:
        """Its CPU since then, as a share of one core over ``wall`` seconds."""
        if self._process is None:
            return None
        return round((self._seconds() - self._start) / max(wall, 1e-9), 3)


@contextlib.asynccontextmanager
async def _embedded(scenario: Scenario, sdk_bundle: Path) -> AsyncIterator[Backend]:
    """The embedded backend, with its XMPP door (Prosody and the focus) if the Jitsi door is
    used, and its TLS listener on port 443 with the SDK's page if there are canaries."""
    if scenario.canaries and (missing := canaries_missing(sdk_bundle)) is not None:
        raise RunSetupError(missing)
    canaries = bool(scenario.canaries)
    try:
        backend = await Backend(
            xmpp=scenario.uses_jitsi or canaries,
            https_port=443 if canaries else None,
            sdk_bundle=sdk_bundle if canaries else None,
            webrtc_host=DOMAIN,
        ).__aenter__()
    except PermissionError:
        raise RunSetupError(
            "canaries need port 443: run under tools/in-private-network (or as root)"
        ) from None
    except ProsodyError as exc:
        raise RunSetupError(
            f'door = "jitsi" needs Prosody for the embedded XMPP door ({exc}); '
            "install it: bash tools/system-packages prosody"
        ) from None
    try:
        yield backend
    finally:
        await backend.__aexit__(None, None, None)


@contextlib.asynccontextmanager
async def _canaries(
    plan: Plan, tokens: dict[str, str], *, resolve_to: str = "127.0.0.1"
) -> AsyncIterator[CanaryRun | None]:
    """Chromium for the plan's canaries while the run goes (None without canaries); the
    backend's SDK page is where ``resolve_to`` is."""
    if not any(p.canary for p in plan.participants):
        yield None
        return
    async with CanaryRun.open(plan, tokens, resolve_to=resolve_to) as canaries:
        yield canaries


async def _run_against(
    target: JitsiTarget,
    plan: Plan,
    shards: list[Any],
    *,
    engine: Engine | None,
    api_key: str | None,
    shown: _Shown,
) -> RunResult:
    """A run against an external Jitsi-style deployment: tokens as it hands them out, a probe."""
    if any(p.door != "jitsi" for p in plan.participants):
        raise RunSetupError("--target is reached through the Jitsi protocol only: every door must be jitsi")
    if plan.scenario.behaviours.ringing.calls:
        raise RunSetupError("ringing needs callsim's own backend (its Chat door): set ringing.calls = 0")
    started = time.monotonic()
    tokens: dict[str, str] = {}
    if target.tokens == "rest":
        if api_key is None:
            raise RunSetupError("--target with CometChat-style tokens needs --api-key (to make auth tokens)")
        try:
            tokens = await _provision_remote(target.rest, api_key, plan, tls=target.tls)
        except (aiohttp.ClientError, OSError) as exc:
            raise RunSetupError(f"cannot reach {target.rest}: {exc}") from None
    first = plan.participants[0]
    try:
        await probe(target, first, tokens.get(first.identity.uid, ""))
    except TargetError as exc:
        raise RunSetupError(str(exc)) from None
    where = _Target(target.rest or target.websocket_base, "", api_key or "", tokens, target)
    return await _run_workers(plan, shards, where, engine or LocalEngine(), shown=shown, started=started)


def _profiles(plan: Plan) -> list[str]:
    """The pre-encoded video loops the plan's participants send."""
    profiles = ["qvga"] if any(p.media_path != "full" for p in plan.participants) else []
    if any(p.simulcast for p in plan.participants):
        profiles.extend(SIMULCAST)
    return profiles


async def _remote_media_counts(url: str, api_key: str) -> dict[str, Any]:
    """What a running backend's SFU did per user (empty if it cannot say: an older backend)."""
    with contextlib.suppress(aiohttp.ClientError, KeyError, ValueError, TimeoutError):
        async with (
            aiohttp.ClientSession(headers={"apiKey": api_key}) as http,
            http.get(f"{url}stats", params={"media": "1"}) as response,
        ):
            return dict((await response.json())["data"]["media_by_uid"])
    return {}


def _fold_media_counts(result: RunResult, by_uid: Mapping[str, Mapping[str, int]]) -> None:
    """The SFU's counts for each participant with a network, into its network's counters."""
    for planned in result.plan.participants:
        if planned.network_name and (counts := by_uid.get(planned.identity.uid)):
            for name, value in counts.items():
                result.metrics.count(f"sfu_{name}@{planned.network_name}", int(value))


@contextlib.contextmanager
def live_display(console: Console | None) -> Iterator[Live | None]:
    """The live progress panel, or None without a console.

    Piped (not a terminal), rich leaves the panel's last line unterminated, and whatever is
    printed next (the summary's title) would run into it: the line is ended here.
    """
    if console is None:
        yield None
        return
    with Live(console=console, refresh_per_second=4, transient=False) as live:
        yield live
    if not console.is_terminal:
        console.line()


@dataclass(frozen=True)
class _Shown:
    """How a run is shown as it goes: a live panel (console), progress lines (log), watchers."""

    console: Console | None
    log: Callable[[str], None] | None
    live: LiveRun | None


@dataclass(frozen=True)
class _Target:
    url: str
    app_id: str
    api_key: str
    tokens: dict[str, str]
    jitsi: JitsiTarget | None = None


async def _run_workers(
    plan: Plan,
    shards: list[Any],
    target: _Target,
    engine: Engine,
    *,
    shown: _Shown,
    started: float,
    canaries: CanaryRun | None = None,
) -> RunResult:
    start_wall = time.time() + engine.start_delay
    duration = plan.scenario.scenario.duration
    ringing = plan.scenario.behaviours.ringing.calls > 0
    networks = {p.identity.uid: p.network_name for p in plan.participants if p.network_name}
    jobs = [
        WorkerJob(
            shard,
            target.url,
            target.app_id,
            target.api_key,
            target.tokens,
            start_wall,
            duration,
            ringing,
            networks,
            target.jitsi,
        )
        for shard in shards
    ]
    collected: list[dict[str, Any]] = []
    backend_cpu: list[tuple[float, float]] = []
    backend_media: list[tuple[float, float]] = []
    latest: dict[int, dict[str, Any]] = {}
    previous: dict[int, dict[str, Any]] = {}
    next_line = 0.0
    interrupted_at: float | None = None
    deadline = time.monotonic() + engine.start_delay + duration + GRACE + JOIN_PROCESS_TIMEOUT
    # Ctrl-C: everyone leaves, the workers report what they have, and the run says so.
    ctrl_c = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGINT, ctrl_c.set)
    if shown.live is not None:
        shown.live.begin(plan, start_wall)
        stop_asked = shown.live.stop_requested
    else:
        stop_asked = asyncio.Event()
    halt = asyncio.Event()  # canaries stop with the run
    canary_task = None
    try:
        engine.start(jobs)
        if canaries is not None:
            canary_task = asyncio.create_task(canaries.run(start_wall, halt), name="canaries")
        with live_display(shown.console) as panel:
            while engine.running() and time.monotonic() < deadline:
                if (ctrl_c.is_set() or stop_asked.is_set()) and not engine.stopping:
                    interrupted_at = time.time() - start_wall
                    halt.set()
                    engine.stop()
                    deadline = min(deadline, time.monotonic() + GRACE + JOIN_PROCESS_TIMEOUT)
                now = round(time.time() - start_wall, 3)
                backend_cpu.append((now, time.process_time()))
                backend_media.append((now, handler_time.seconds))
                for sample in engine.progress():
                    if sample["worker"] in latest:
                        previous[sample["worker"]] = latest[sample["worker"]]
                    latest[sample["worker"]] = sample
                    if shown.live is not None:
                        shown.live.update(sample)
                collected.extend(engine.results())
                if panel is not None:
                    panel.update(_progress_table(plan, latest, start_wall, previous))
                elif shown.log is not None and latest and time.monotonic() >= next_line:
                    next_line = time.monotonic() + PROGRESS_EVERY
                    shown.log(_progress_line(plan, latest, start_wall))
                await asyncio.sleep(0.25)  # the display's refresh period
    except (KeyboardInterrupt, asyncio.CancelledError):
        interrupted_at = time.time() - start_wall
        halt.set()
        engine.stop()
        end = time.monotonic() + GRACE
        while engine.running() and time.monotonic() < end:
            collected.extend(engine.results())
            time.sleep(0.1)  # noqa: ASYNC251 - the loop is being torn down; bounded by GRACE
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.remove_signal_handler(signal.SIGINT)
        engine.close(JOIN_PROCESS_TIMEOUT)
    errors = [str(d["error"]) for d in collected if "error" in d]
    if canary_task is not None:
        try:
            async with asyncio.timeout(GRACE):
                await canary_task
        except Exception as exc:  # a canary's failure is the run's error, not a crash
            halt.set()
            canary_task.cancel()
            errors.append(f"canaries: {type(exc).__name__}: {exc}")
    missing = len(jobs) - len(collected)
    if missing:
        errors.append(f"{missing} worker(s) returned nothing (terminated)")
    metrics = Metrics.merge([d for d in collected if "error" not in d])
    if canaries is not None:
        canaries.fold(metrics)
    # A worker that failed (or whose node was lost) is its error, not a broken invariant: the
    # others are judged on who actually ran.
    reported = {w["worker"] for w in metrics.workers}
    lost = {p.identity.uid for shard in shards if shard.number not in reported for p in shard.participants}
    return RunResult(
        plan,
        metrics,
        evaluate(plan.without(lost), metrics, interrupted_at, canaries.results() if canaries else None),
        time.monotonic() - started,
        interrupted_at,
        errors,
        backend_cpu=backend_cpu,
        backend_media=backend_media,
        # Frames are judged against the nominal rates: a scenario that pauses cameras has none.
        steady=steady_state(metrics, backend_cpu) if plan.scenario.behaviours.pause is None else None,
        canaries=canaries.results() if canaries else [],
    )


def connect_phases_p95(
    metrics: Metrics, prefix: str = "connect", names: tuple[str, ...] = CONNECT_PHASES
) -> str | None:
    """The phases' p95s (``<prefix>_<phase>_ms``), one line (None when no join recorded them)."""
    phases = [metrics.summary(f"{prefix}_{phase}_ms") for phase in names]
    if not all(p["count"] for p in phases):
        return None
    return "p95 " + " · ".join(f"{p['p95']:g}" for p in phases) + " ms"


def summary_table(result: RunResult) -> Table:
    """The end-of-run summary."""
    metrics = result.metrics
    table = Table(title=result.heading)
    table.add_column("measure")
    table.add_column("value")
    for name, label in [("join_ms", "join time"), ("connect_ms", "createOffer → connected"),
                        ("first_audio_ms", "time to first audio"),
                        ("first_video_ms", "time to first video"), ("latency_ms", "end-to-end video latency"),
                        ("loop_lag_ms", "event-loop lag (generator)")]:  # fmt: skip
        s = metrics.summary(name)
        value = (
            f"p50 {s['p50']:g} / p95 {s['p95']:g} / p99 {s['p99']:g} ms ({s['count']})" if s["count"] else "—"
        )
        table.add_row(label, value)
        if name == "connect_ms" and (phases := connect_phases_p95(metrics)) is not None:
            table.add_row("  of which answer · ICE · DTLS", phases)
        if name == "join_ms" and (xmpp := connect_phases_p95(metrics, "xmpp", XMPP_PHASES)) is not None:
            door = metrics.summary("join_ms@jitsi")
            table.add_row("  Jitsi door", f"p95 {door['p95']:g} ms ({door['count']})")
            table.add_row("    login · conference · MUC · Jingle · ICE · DTLS", xmpp)
    for network, row in networks_seen(result.plan, result.metrics).items():
        table.add_row(f"network {network}", row)
    table.add_row("participants", str(len(result.plan.participants)))
    table.add_row("joins", str(metrics.counters["joins"]))
    table.add_row("RTP loss", f"{loss_percent(metrics):.2f} %")
    table.add_row("callbacks", str(metrics.counters["events"]))
    table.add_row("errors", str(metrics.counters["errors"]))
    if logged := metrics.counters["logged_errors"]:
        table.add_row("errors logged by workers", f"{logged} (see the workers' log)")
    if decode := metrics.counters["decode_failures"]:
        table.add_row("decoder failures", f"{decode} frames (full-path sample, counted not printed)")
    for w in metrics.workers:
        table.add_row(
            f"worker {w['worker']}",
            f"{w['participants']} participants{' on node ' + w['node'] if 'node' in w else ''}, "
            f"{w['cpu_share'] * 100:.0f} % of a core, lag p99 "
            f"{w['loop_lag_p99_ms']} ms{' — GENERATOR-LIMITED' if w['generator_limited'] else ''}",
        )
    doors = doors_seen(result.plan, metrics)
    if len(doors) > 1:
        for door in doors:
            p95 = "—" if door["join_p95_ms"] is None else f"{door['join_p95_ms']} ms"
            table.add_row(
                f"door {door['door']}",
                f"{door['participants']} participants, {door['joins']} joins, join p95 {p95}, "
                f"{door['errors']} errors",
            )
    for canary in result.canaries:
        first = "—" if canary["first_frame_ms"] is None else f"{canary['first_frame_ms']:.0f} ms"
        table.add_row(
            f"canary {canary['uid']}",
            f"first remote frame {first}, {canary['freezes']} freezes, jitter {canary['jitter_ms']} ms, "
            f"loss {canary['loss_percent']} %, heard {canary['audible']} of {canary['others']}"
            + (f" — {canary['error']}" if canary["error"] else ""),
        )
    steady = result.steady
    if steady is not None:
        sfu = "" if steady.backend_per_core is None else f", SFU {steady.backend_per_core:.0f}/core"
        table.add_row(
            "steady state",
            f"{steady.seconds:g} s: {steady.delivery * 100:.2f} % of frames, jitter {steady.jitter_ms:g} ms, "
            f"loop lag p99 {steady.generator_lag_p99_ms:g} ms; "
            f"{steady.generator_per_core:.0f} participants/core{sfu}; "
            f"{steady.rss_per_participant_mib:g} MiB each",
        )
    for e in result.expectations:
        verdict = "" if e.verdict in ("pass", "fail") else f"{e.verdict}: "
        table.add_row(f"{e.mark} {e.name}", f"{verdict}{e.observed} (limit {e.limit}) {e.detail}".strip())
    for error in result.worker_errors:
        table.add_row("worker error", error)
    return table


def default_report_dir() -> Path:
    return Path("reports") / time.strftime("run-%Y%m%d-%H%M%S")
