"""Soak: the backend under churn for a long time, its resources sampled (``tox -e soak``).

A ``callsim serve`` child process serves; consecutive ``callsim run`` rounds use it, each a
churn scenario on the lean path (people join, mute, share, leave and are replaced all the
time). Every :data:`SAMPLE_EVERY` seconds the backend's RSS, descriptors and threads
(psutil) and its asyncio tasks, rooms and participants (``GET /stats``) are sampled.

The first round is the warm-up (allocator arenas, caches, the certificate, imports). The
report gives, per round, the figures at its end and when idle after it; the RSS growth
after warm-up (the end of the last round against the end of the first, in %), and the
slope per hour by least squares over every sample after warm-up. Results go to
``<report>/soak.json`` and ``<report>/soak.md``; the exit status is 1 when RSS grew by
:data:`MAX_GROWTH` or more after warm-up, or a round failed.

    python -m benchmarks.soak --minutes 30 --rounds 6 --report .benchmarks/soak
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import aiohttp
import numpy as np
import psutil

from benchmarks.served import served_backend

SAMPLE_EVERY: Final = 5.0
MAX_GROWTH: Final = 0.05
SCENARIO: Final = """\
[scenario]
name = "soak"
seed = {seed}
duration = {duration}
join_rate = 4.0

[[sessions]]
count = 3
participants = 5
profile = "audio-video"
media = "lean"

[behaviours]
mute = {{ every = [5.0, 15.0] }}
churn = {{ every = [8.0, 20.0] }}
screen_share = {{ every = [15.0, 30.0], hold = [3.0, 8.0] }}

[expectations]
leaves_produce_events = true
"""


@dataclass
class Sample:
    at: float
    round: int
    rss_mib: float
    fds: int
    threads: int
    tasks: int
    rooms: int
    participants: int
    last_release_ms: float
    """How long the backend's last memory release stalled it (simulator/memory.py)."""


@dataclass
class Round:
    index: int
    passed: bool
    end: Sample | None = None
    idle: Sample | None = None
    collected_rss_mib: float | None = None
    """Idle, after a full collection and a heap trim (``GET /stats?collect=1``): what is held."""


@dataclass
class Soak:
    minutes: float
    rounds: list[Round] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)

    def after_warm_up(self) -> list[Sample]:
        return [s for s in self.samples if s.round >= 1]

    def growth(self) -> float | None:
        """RSS at the end of the last round against the end of the first (a fraction)."""
        ends = [r.end for r in self.rounds if r.end is not None]
        if len(ends) < 2:
            return None
        return (ends[-1].rss_mib - ends[0].rss_mib) / ends[0].rss_mib

    def per_hour(self, metric: str) -> float | None:
        """The least-squares slope of ``metric`` after warm-up, per hour."""
        samples = self.after_warm_up()
        if len(samples) < 3:
            return None
        hours = np.array([s.at for s in samples]) / 3600
        values = np.array([getattr(s, metric) for s in samples], dtype=float)
        return float(np.polyfit(hours, values, 1)[0])


async def _stats(http: aiohttp.ClientSession, url: str, key: str, *, collect: bool = False) -> dict[str, Any]:
    params = {"collect": "1"} if collect else {}
    async with http.get(f"{url}stats", headers={"apiKey": key}, params=params) as response:
        return (await response.json())["data"]  # type: ignore[no-any-return]


@dataclass(frozen=True)
class _Backend:
    http: aiohttp.ClientSession
    url: str
    key: str
    process: psutil.Process
    started: float


async def _sample(backend: _Backend, index: int) -> Sample:
    http, url, key, process, started = (
        backend.http,
        backend.url,
        backend.key,
        backend.process,
        backend.started,
    )
    stats = await _stats(http, url, key)
    return Sample(
        at=time.monotonic() - started,
        round=index,
        rss_mib=process.memory_info().rss / 2**20,
        fds=process.num_fds(),
        threads=process.num_threads(),
        tasks=int(stats["tasks"]),
        rooms=int(stats["rooms"]),
        participants=int(stats["participants"]),
        last_release_ms=float(stats["last_release_ms"]),
    )


async def soak(minutes: float, rounds: int, report: Path, seed: int = 7) -> Soak:
    """Run the soak; returns what it measured (also written to ``report``)."""
    key = secrets.token_hex(8)
    result = Soak(minutes)
    with tempfile.TemporaryDirectory() as scratch:
        async with served_backend(str(Path(scratch) / "soak.db"), key) as served:
            url, process = served.url, served.process
            started = time.monotonic()
            duration = minutes * 60 / rounds
            async with aiohttp.ClientSession() as http:
                backend = _Backend(http, url, key, process, started)
                for index in range(rounds):
                    scenario = Path(scratch) / f"round-{index}.toml"
                    scenario.write_text(SCENARIO.format(seed=seed + index, duration=duration))
                    run = await asyncio.create_subprocess_exec(
                        sys.executable, "-m", "simulator.cli", "run", str(scenario), "--backend", url,
                        "--api-key", key, "--no-live", "--workers", "1",
                        "--report", str(report / f"round-{index}"),
                        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
                    )  # fmt: skip
                    last: Sample | None = None
                    while run.returncode is None:
                        last = await _sample(backend, index)
                        result.samples.append(last)
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(run.wait(), SAMPLE_EVERY)
                    settled = await _settle(backend, index)
                    await _stats(http, url, key, collect=True)
                    collected = process.memory_info().rss / 2**20
                    result.rounds.append(Round(index, run.returncode == 0, last, settled, collected))
                    print(_line(result.rounds[-1]), flush=True)
    (report / "soak.json").write_text(json.dumps(asdict(result), indent=1))
    (report / "soak.md").write_text(markdown(result))
    return result


async def _settle(backend: _Backend, index: int) -> Sample:
    """The backend once everyone has gone (bounded: 30 s)."""
    deadline = time.monotonic() + 30
    while True:
        sample = await _sample(backend, index)
        if sample.participants == 0 or time.monotonic() > deadline:
            return sample
        await asyncio.sleep(1.0)


def _line(r: Round) -> str:
    end, idle = r.end, r.idle
    return (
        f"round {r.index}: {'pass' if r.passed else 'FAIL'}"
        + (f"; end RSS {end.rss_mib:.1f} MiB, {end.participants} in" if end else "")
        + (
            f"; idle RSS {idle.rss_mib:.1f} MiB, {idle.fds} fds, {idle.threads} threads, {idle.tasks} tasks"
            if idle
            else ""
        )
        + (f"; collected {r.collected_rss_mib:.1f} MiB" if r.collected_rss_mib is not None else "")
    )


def markdown(result: Soak) -> str:
    rows = [
        "| round | run | RSS at end (MiB) | RSS idle (MiB) | RSS collected (MiB) | fds idle | threads idle "
        "| tasks idle |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result.rounds:
        end, idle = r.end, r.idle
        rows.append(
            f"| {r.index}{' (warm-up)' if r.index == 0 else ''} | {'pass' if r.passed else 'FAIL'} "
            f"| {end.rss_mib:.1f} | {idle.rss_mib:.1f} | {r.collected_rss_mib or 0:.1f} | {idle.fds} "
            f"| {idle.threads} | {idle.tasks} |"
            if end and idle
            else f"| {r.index} | {'pass' if r.passed else 'FAIL'} | – | – | – | – | – | – |"
        )
    growth = result.growth()
    pause = max((s.last_release_ms for s in result.samples), default=0.0)
    slopes = {m: result.per_hour(m) for m in ("rss_mib", "fds", "threads", "tasks")}
    summary = [
        f"Soak of {result.minutes:g} minutes in {len(result.rounds)} rounds.",
        "",
        f"- RSS growth after warm-up: {'–' if growth is None else f'{growth * 100:+.1f} %'}"
        f" (limit {MAX_GROWTH * 100:.0f} %)",
        *(f"- {m} per hour after warm-up: {'–' if v is None else f'{v:+.2f}'}" for m, v in slopes.items()),
        f"- the longest memory release (full collection and heap trim): {pause:.1f} ms",
    ]
    return "\n".join([*summary, "", *rows, ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--report", type=Path, default=Path(".benchmarks/soak"))
    args = parser.parse_args(argv)
    args.report.mkdir(parents=True, exist_ok=True)
    result = asyncio.run(soak(args.minutes, args.rounds, args.report))
    print(markdown(result))
    growth = result.growth()
    ok = all(r.passed for r in result.rounds) and growth is not None and growth < MAX_GROWTH
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
