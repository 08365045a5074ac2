"""A run as it goes, for whoever watches it: the metrics endpoint and the dashboard.

The runner hands every progress sample a worker sends to :meth:`LiveRun.update` and the
verdict to :meth:`LiveRun.finish`; watchers read the latest of each worker's samples (they are
cumulative), wait on :meth:`LiveRun.changed`, or ask the run to stop (:meth:`LiveRun.stop`: the
same clean stop as Ctrl-C, reported as interrupted).
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from hdrh.histogram import HdrHistogram

from simulator.crowd.plan import Plan

if TYPE_CHECKING:
    from simulator.crowd.runner import RunResult
    from simulator.server import Backend

__all__ = ["LIVE_HISTOGRAMS", "LiveRun"]

LIVE_HISTOGRAMS: Final = ("join_ms", "latency_ms", "first_audio_ms", "first_video_ms")
"""The histograms each progress sample carries (encoded), so a watcher sees them mid-run."""


class LiveRun:
    """The latest of a run: its plan, each worker's last sample, its result once it has one."""

    def __init__(self) -> None:
        self.plan: Plan | None = None
        self.start_wall = 0.0
        """``time.time()`` at the run's t = 0."""
        self.backend: Backend | None = None
        """The embedded backend, while the run has one."""
        self.canaries: Callable[[], list[dict[str, Any]]] | None = None
        """The canaries' figures as they stand (their runner reads their pages every second)."""
        self.samples: dict[int, dict[str, Any]] = {}
        self.previous: dict[int, dict[str, Any]] = {}
        self.result: RunResult | None = None
        self.stop_requested = asyncio.Event()
        self._version = 0
        self._waiters: set[asyncio.Future[None]] = set()

    def begin(self, plan: Plan, start_wall: float) -> None:
        self.plan, self.start_wall = plan, start_wall
        self._bump()

    def update(self, sample: dict[str, Any]) -> None:
        """A worker's progress sample (it replaces that worker's previous one)."""
        worker = sample["worker"]
        if worker in self.samples:
            self.previous[worker] = self.samples[worker]
        self.samples[worker] = sample
        self._bump()

    def finish(self, result: RunResult) -> None:
        self.result = result
        self._bump()

    def stop(self) -> None:
        """Ask the run to stop now, cleanly (everyone leaves; the run is reported interrupted)."""
        self.stop_requested.set()

    @property
    def version(self) -> int:
        """Bumped at every change: a watcher sends what is newer than the version it last saw."""
        return self._version

    async def changed(self, since: int, timeout: float) -> int:
        """Wait until the version passes ``since`` (or ``timeout`` seconds); the version now."""
        if self._version > since:
            return self._version
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        try:
            async with asyncio.timeout(timeout):
                await waiter
        except TimeoutError:
            pass
        finally:
            self._waiters.discard(waiter)
        return self._version

    def _bump(self) -> None:
        self._version += 1
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    # --- what watchers read -----------------------------------------------------------------

    @property
    def elapsed(self) -> float:
        """Seconds since t = 0 (negative before it)."""
        return time.time() - self.start_wall if self.plan is not None else 0.0

    def total(self, key: str) -> float:
        """The sum of ``key`` over each worker's latest sample."""
        return sum(float(s.get(key, 0) or 0) for s in self.samples.values())

    def counters(self) -> Counter[str]:
        """The run's counters so far (each worker's are cumulative: their latest, summed)."""
        total: Counter[str] = Counter()
        for sample in self.samples.values():
            total.update(sample.get("counters", {}))
        return total

    def histogram(self, name: str) -> HdrHistogram | None:
        """One of :data:`LIVE_HISTOGRAMS`, merged over the workers (None before any value)."""
        merged: HdrHistogram | None = None
        for sample in self.samples.values():
            encoded = sample.get("histograms", {}).get(name)
            if encoded is None:
                continue
            part = HdrHistogram.decode(base64.b64decode(encoded))
            if merged is None:
                merged = part
            else:
                merged.add(part)
        return merged if merged is not None and merged.get_total_count() else None

    def cpu_share(self, worker: int) -> float | None:
        """A worker's share of a core between its last two samples."""
        now, before = self.samples.get(worker), self.previous.get(worker)
        if now is None or before is None or now["at"] <= before["at"]:
            return None
        return max(0.0, float(now["cpu_s"] - before["cpu_s"]) / float(now["at"] - before["at"]))

    def receive_mbps(self) -> float:
        """What the participants receive now, in Mbit/s (each worker's last two samples)."""
        total = 0.0
        for worker, now in self.samples.items():
            before = self.previous.get(worker)
            if before is not None and now["at"] > before["at"]:
                grown = float(now.get("bytes_received_total", 0)) - float(
                    before.get("bytes_received_total", 0)
                )
                total += max(0.0, grown) / float(now["at"] - before["at"])
        return total * 8 / 1e6

    def snapshot(self) -> dict[str, Any]:
        """The run as it stands, as plain data (what the dashboard pushes)."""
        plan = self.plan
        counters = self.counters()
        received, lost = self.total("packets_received"), self.total("packets_lost")
        out: dict[str, Any] = {
            "name": plan.scenario.scenario.name if plan else "",
            "elapsed": round(self.elapsed, 2),
            "duration": plan.scenario.scenario.duration if plan else 0,
            "planned": len(plan.participants) if plan else 0,
            "joined": int(self.total("joined")),
            "callbacks": counters["events"],
            "errors": counters["errors"],
            "receive_mbps": round(self.receive_mbps(), 3),
            "loss_percent": round(100 * lost / (received + lost), 3) if received + lost else 0.0,
            "workers": [
                {
                    "worker": worker,
                    "cpu": None if (share := self.cpu_share(worker)) is None else round(share, 3),
                    "lag_ms": max(sample.get("lags_ms") or [0.0]),
                    "rss_mib": sample.get("rss_mib", 0.0),
                }
                for worker, sample in sorted(self.samples.items())
            ],
            "doors": _by_label(counters, "door", ("joins", "leaves")),
            "networks": _by_label(counters, "", ("freezes", "packets_received", "packets_lost")),
            "canaries": self.canaries() if self.canaries is not None else [],
            "verdict": None,
            "expectations": [],
        }
        for name in LIVE_HISTOGRAMS:
            h = self.histogram(name)
            out[name] = None if h is None else {"p50": h.get_value_at_percentile(50),
                                                "p95": h.get_value_at_percentile(95),
                                                "count": h.get_total_count()}  # fmt: skip
        if (result := self.result) is not None:
            out["verdict"] = result.verdict
            out["expectations"] = [
                {
                    "name": e.name,
                    "verdict": e.verdict,
                    "observed": e.observed,
                    "limit": e.limit,
                    "failed": e.failed,
                }
                for e in result.expectations
            ]
        return out


def _by_label(counters: Counter[str], label: str, names: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows of ``name@label=value`` counters (``label`` empty: ``name@network``), one per value."""
    rows: dict[str, dict[str, Any]] = {}
    for key, count in counters.items():
        name, _, suffix = key.partition("@")
        if name not in names or not suffix:
            continue
        key_label, _, tag = suffix.partition("=")
        if (label and key_label == label and tag) or (not label and not tag):
            value = tag or suffix
            rows.setdefault(value, {label or "network": value})[name] = count
    return [rows[k] for k in sorted(rows)]
