"""The steady state of a run: what it costs to keep everyone in the call, joins excluded.

Joining is bursty and expensive (ICE, DTLS, SDP); carrying media is what load tests
size. The window runs, for each worker, from the first progress sample in which all its
participants are in the call (after its ramp has settled) to the last one before the
final leaves. Over it:

* delivery — frames received against frames the nominal rates promise (frames, not
  RTP packets: a sender that failed to send shows here, docs/media.md pitfall 7);
* the generator's CPU (each worker's share of one core) and its loop lag (p99, max);
* the backend's CPU (when it ran embedded in the runner's process);
* memory: resident growth per participant since the worker started.

Those give *participants per core* for the generator and for the SFU. A run whose
scenario pauses cameras has no steady state: its frames fall short of the nominal
rates by design.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from simulator.crowd.metrics import Metrics

__all__ = ["SteadyState", "steady_state"]


@dataclass(frozen=True, slots=True)
class SteadyState:
    participants: int
    seconds: float
    delivery: float
    """Frames received / frames due, over the window (1.0 = everything)."""
    packet_loss: float
    generator_cpu_share: float
    """Sum over workers of each one's share of a core."""
    generator_lag_p99_ms: float
    """Of the event-loop lag probes (every 0.1 s) in the window, all workers together."""
    generator_lag_max_ms: float
    backend_cpu_share: float | None
    rss_per_participant_mib: float
    received_packets_per_second: float
    jitter_ms: float
    """RFC 3550 interarrival jitter at the receivers (the mean over the window's samples)."""

    @property
    def generator_per_core(self) -> float:
        return self.participants / self.generator_cpu_share if self.generator_cpu_share else 0.0

    @property
    def backend_per_core(self) -> float | None:
        share = self.backend_cpu_share
        return self.participants / share if share else None

    def to_data(self) -> dict[str, Any]:
        data = asdict(self)
        data["generator_per_core"] = round(self.generator_per_core, 1)
        per_core = self.backend_per_core
        data["backend_per_core"] = None if per_core is None else round(per_core, 1)
        return data


def _percentile(values: list[float], percent: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * percent / 100))]


def steady_state(metrics: Metrics, backend_cpu: list[tuple[float, float]]) -> SteadyState | None:
    """The steady window's figures, or None when no two samples had everyone in.

    ``backend_cpu``: (run time, CPU seconds) of the backend's process, sampled along.
    """
    series = metrics.series
    workers = {w["worker"]: w["participants"] for w in metrics.workers}
    if not workers:
        return None
    full = {
        number: [s for s in series if s["worker"] == number and s["joined"] == count]
        for number, count in workers.items()
    }
    if any(len(samples) < 2 for samples in full.values()):
        return None
    # Each worker's rates come from its own window (a late-starting worker's is shorter);
    # the backend's from the time all of them were steady together, if they were.

    start = max(samples[0]["at"] for samples in full.values())
    end = min(samples[-1]["at"] for samples in full.values())
    received = due = packets = lost = cpu = packet_rate = 0.0
    spans: list[float] = []
    lags: list[float] = []
    for samples in full.values():
        first, last = samples[0], samples[-1]
        received += last["frames_received"] - first["frames_received"]
        due += last["frames_expected"] - first["frames_expected"]
        span = last["at"] - first["at"]
        spans.append(span)
        packets += last["packets_received"] - first["packets_received"]
        packet_rate += (last["packets_received"] - first["packets_received"]) / span
        lost += last["packets_lost"] - first["packets_lost"]
        cpu += (last["cpu_s"] - first["cpu_s"]) / span
        lags.extend(lag for s in samples[1:] for lag in s["lags_ms"])
    backend = [(at, cpu_s) for at, cpu_s in backend_cpu if start <= at <= end]
    backend_share = None
    if len(backend) >= 2 and backend[-1][0] > backend[0][0]:
        backend_share = (backend[-1][1] - backend[0][1]) / (backend[-1][0] - backend[0][0])
    growth = sum(w["rss_steady_mib"] - w["rss_start_mib"] for w in metrics.workers)
    jitters = [s.get("jitter_ms", 0.0) for samples in full.values() for s in samples]
    participants = sum(workers.values())
    return SteadyState(
        participants=participants,
        seconds=round(min(spans), 2),
        delivery=round(min(received / due, 1.0), 4) if due else 0.0,
        packet_loss=round(lost / (packets + lost), 5) if packets + lost else 0.0,
        generator_cpu_share=round(cpu, 3),
        generator_lag_p99_ms=_percentile(lags, 99),
        generator_lag_max_ms=max(lags, default=0.0),
        backend_cpu_share=None if backend_share is None else round(backend_share, 3),
        rss_per_participant_mib=round(growth / participants, 2) if participants else 0.0,
        received_packets_per_second=round(packet_rate, 1),
        jitter_ms=round(sum(jitters) / len(jitters), 2),
    )
