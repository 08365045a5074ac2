"""A run's metrics for Prometheus (``callsim run --metrics``), read from the live run at each
scrape: the workers' latest cumulative samples (:class:`~simulator.crowd.live.LiveRun`), and
the embedded backend's own metrics beside them.

Names carry a ``callsim_run_`` prefix and base units (seconds, bytes); counters end in
``_total``; labels are bounded: ``door``, ``network``, ``code`` (an error's code or kind),
``worker``, ``expectation`` — never a participant or a session.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any, Final

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from simulator.crowd.live import LiveRun
from simulator.server.metrics import BackendCollector

__all__ = ["BUCKETS_MS", "RunCollector"]

BUCKETS_MS: Final = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000)
"""Histogram bucket bounds, in ms (exposed in seconds): from a LAN's latency to a slow join."""

HISTOGRAMS: Final = {
    "join_ms": ("callsim_run_join_seconds", "start of a join → its media connected"),
    "latency_ms": ("callsim_run_video_latency_seconds", "end-to-end video latency, from the frames' marks"),
    "first_audio_ms": (
        "callsim_run_first_audio_seconds",
        "start of a join → the first audio from the others",
    ),
    "first_video_ms": (
        "callsim_run_first_video_seconds",
        "start of a join → the first video from the others",
    ),
}
LABELLED: Final = {
    "joins": ("callsim_run_joins", "joins whose media connected", "door"),
    "leaves": ("callsim_run_leaves", "sessions left", "door"),
    "errors": ("callsim_run_errors", "actions that failed, by code", "code"),
    "freezes": ("callsim_run_network_video_freezes", "video freezes a network's people saw", "network"),
    "packets_received": ("callsim_run_network_rtp_received_packets", "RTP a network's people got", "network"),
    "packets_lost": ("callsim_run_network_rtp_lost_packets", "RTP a network's people lost", "network"),
}


class RunCollector(Collector):
    """``registry.register(RunCollector(live))``."""

    def __init__(self, live: LiveRun) -> None:
        self._live = live

    def collect(self) -> Iterator[Metric]:
        live = self._live
        plan = live.plan
        if plan is None:
            return
        yield GaugeMetricFamily("callsim_run_elapsed_seconds", "time since the run's t = 0", live.elapsed)
        yield GaugeMetricFamily(
            "callsim_run_duration_seconds", "the scenario's length", plan.scenario.scenario.duration
        )
        people = GaugeMetricFamily(
            "callsim_run_participants", "participants, planned and in a session", labels=["state"]
        )
        people.add_metric(["planned"], len(plan.participants))
        people.add_metric(["joined"], live.total("joined"))
        yield people
        counters = live.counters()
        yield CounterMetricFamily(
            "callsim_run_callbacks", "OngoingCallListener callbacks received", value=counters["events"]
        )
        yield CounterMetricFamily(
            "callsim_run_received_bytes",
            "RTP bytes received by the participants",
            value=live.total("bytes_received_total"),
        )
        yield CounterMetricFamily(
            "callsim_run_video_freezes", "video freezes seen", value=counters["freezes"]
        )
        yield from _labelled(counters)
        for name, (metric, help_text) in HISTOGRAMS.items():
            yield _histogram(live, name, metric, help_text)
        yield from _workers(live)
        if live.canaries is not None:
            yield from _canaries(live.canaries())
        if (result := live.result) is not None:
            yield GaugeMetricFamily(
                "callsim_run_passed", "1 once the run passed, 0 if it failed", int(result.passed)
            )
            judged = GaugeMetricFamily(
                "callsim_run_expectation_passed", "each expectation: 1 held, 0 broken", labels=["expectation"]
            )
            for expectation in result.expectations:
                judged.add_metric([expectation.name], 0 if expectation.failed else 1)
            yield judged
        if live.backend is not None:
            yield from BackendCollector(live.backend).collect()


def _labelled(counters: Counter[str]) -> Iterator[Metric]:
    """Counters kept as ``name@label=value`` (``joins@door=jitsi``) or ``name@network``."""
    families = {
        name: CounterMetricFamily(metric, help_text, labels=[label])
        for name, (metric, help_text, label) in LABELLED.items()
    }
    for key, value in sorted(counters.items()):
        name, _, suffix = key.partition("@")
        family = families.get(name)
        if family is None or not suffix:
            continue
        label, _, tag = suffix.partition("=")
        expected = LABELLED[name][2]
        if (tag and label == expected) or (not tag and expected == "network"):
            family.add_metric([tag or suffix], value)
    yield from families.values()


def _histogram(live: LiveRun, name: str, metric: str, help_text: str) -> Metric:
    family = HistogramMetricFamily(metric, help_text)
    h = live.histogram(name)
    cumulative, total, index = [], 0.0, 0
    counts = [0] * (len(BUCKETS_MS) + 1)
    if h is not None:
        for item in h.get_recorded_iterator():
            value, count = item.value_iterated_to, item.count_at_value_iterated_to
            total += value * count
            while index < len(BUCKETS_MS) and value > BUCKETS_MS[index]:
                index += 1
            counts[index] += count
            index = 0
    running = 0
    for bound, count in zip((*BUCKETS_MS, float("inf")), counts, strict=True):
        running += count
        cumulative.append((str(bound / 1000) if bound != float("inf") else "+Inf", float(running)))
    family.add_metric([], cumulative, sum_value=total / 1000)
    return family


def _canaries(canaries: list[dict[str, Any]]) -> Iterator[Metric]:
    """The canaries, summed over them (a label per canary would be a label per participant)."""
    present = GaugeMetricFamily(
        "callsim_run_canaries", "canaries (the published SDK in Chromium)", labels=["state"]
    )
    present.add_metric(["planned"], len(canaries))
    present.add_metric(["in"], sum(1 for c in canaries if c["joined"]))
    yield present
    firsts = [c["first_frame_ms"] for c in canaries if c["first_frame_ms"] is not None]
    yield GaugeMetricFamily(
        "callsim_run_canary_first_frame_max_seconds",
        "the slowest canary's session start → first remote frame",
        max(firsts, default=0.0) / 1000,
    )
    yield CounterMetricFamily(
        "callsim_run_canary_video_freezes", "video freezes the canaries' Chromium counted",
        value=sum(c["freezes"] for c in canaries),
    )  # fmt: skip
    heard = [c["audible"] / c["others"] for c in canaries if c["others"]]
    yield GaugeMetricFamily(
        "callsim_run_canary_heard_min_ratio",
        "the least share of the others a canary heard (audio energy)",
        min(heard, default=1.0),
    )


def _workers(live: LiveRun) -> Iterator[Metric]:
    cpu = GaugeMetricFamily(
        "callsim_run_worker_cpu_ratio", "a worker's share of a core, lately", labels=["worker"]
    )
    lag = GaugeMetricFamily(
        "callsim_run_worker_loop_lag_seconds", "a worker's longest event-loop lag, lately", labels=["worker"]
    )
    memory = GaugeMetricFamily(
        "callsim_run_worker_resident_memory_bytes", "a worker's resident memory", labels=["worker"]
    )
    for worker, sample in sorted(live.samples.items()):
        label = [str(worker)]
        if (share := live.cpu_share(worker)) is not None:
            cpu.add_metric(label, share)
        lag.add_metric(label, max(sample.get("lags_ms") or [0.0]) / 1000)
        memory.add_metric(label, float(sample.get("rss_mib", 0.0)) * 2**20)
    yield from (cpu, lag, memory)
