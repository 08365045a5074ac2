"""What a run measures, in a form that crosses process boundaries and merges exactly.

Latencies go into HDR histograms, which merge across workers without error (a p95 of
merged histograms is the p95 of all samples; percentiles are never averaged). Counters
add up; time-series samples and observations (the raw facts the correctness invariants
are judged on) are concatenated, each stamped with seconds since the run's start.
"""

from __future__ import annotations

import base64
from collections import Counter
from typing import Any, Final

from hdrh.histogram import HdrHistogram

__all__ = ["CONNECT_PHASES", "HISTOGRAMS", "Metrics"]

CONNECT_PHASES: Final = ("answer", "ice", "dtls")
"""Where a connect went (:class:`~simulator.sdk.session.ConnectPhases`): a histogram
``connect_<phase>_ms`` each."""
HISTOGRAMS: Final = (
    "join_ms",
    "connect_ms",
    *(f"connect_{phase}_ms" for phase in CONNECT_PHASES),
    "first_audio_ms",
    "first_video_ms",
    "latency_ms",
    "loop_lag_ms",
)
_LOWEST, _HIGHEST, _DIGITS = 1, 3_600_000, 3


def _histogram() -> HdrHistogram:
    return HdrHistogram(_LOWEST, _HIGHEST, _DIGITS)


class Metrics:
    """One worker's measurements, or the merge of several."""

    def __init__(self) -> None:
        self.histograms: dict[str, HdrHistogram] = {name: _histogram() for name in HISTOGRAMS}
        self.counters: Counter[str] = Counter()
        self.by_participant: dict[str, Counter[str]] = {}
        """uid → its own counters (per-session counters are their sums, see :meth:`by_session`)."""
        self.series: list[dict[str, Any]] = []
        self.observations: list[dict[str, Any]] = []
        self.workers: list[dict[str, Any]] = []

    def record(self, histogram: str, milliseconds: float) -> None:
        """Into one of :data:`HISTOGRAMS`, or one of a group's (``latency_ms@3g``), made on first use."""
        value = int(min(max(milliseconds, _LOWEST), _HIGHEST))
        if histogram not in self.histograms:
            self.histograms[histogram] = _histogram()
        self.histograms[histogram].record_value(value)

    def count(self, counter: str, amount: int = 1, *, uid: str | None = None) -> None:
        self.counters[counter] += amount
        if uid is not None:
            self.by_participant.setdefault(uid, Counter())[counter] += amount

    def by_session(self, session_of: dict[str, str]) -> dict[str, Counter[str]]:
        """Session → the sum of its participants' counters."""
        out: dict[str, Counter[str]] = {}
        for uid, counters in self.by_participant.items():
            out.setdefault(session_of.get(uid, "?"), Counter()).update(counters)
        return out

    def observe(self, kind: str, at: float, **facts: Any) -> None:
        """A fact for the invariants, e.g. ``observe("left", t, observer="a", left="b")``."""
        self.observations.append({"kind": kind, "at": round(at, 3), **facts})

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.observations if o["kind"] == kind]

    def summary(self, histogram: str) -> dict[str, float]:
        h = self.histograms.get(histogram)
        if h is None:  # a group's histogram nobody recorded into
            return {"count": 0}
        count = h.get_total_count()
        if not count:
            return {"count": 0}
        return {
            "count": count,
            "p50": h.get_value_at_percentile(50),
            "p95": h.get_value_at_percentile(95),
            "p99": h.get_value_at_percentile(99),
            "max": h.get_max_value(),
        }

    def values(self, histogram: str) -> list[tuple[int, int]]:
        """(value, count) of every recorded bucket, for plots."""
        return [(item.value_iterated_to, item.count_at_value_iterated_to)
                for item in self.histograms[histogram].get_recorded_iterator()]  # fmt: skip

    def encoded(self, histogram: str) -> str:
        """One histogram, compressed and base64'd (what :meth:`to_data` holds of each)."""
        h = self.histograms.get(histogram) or _histogram()
        return base64.b64encode(h.encode()).decode()

    def to_data(self) -> dict[str, Any]:
        """Plain, picklable, JSON-able data."""
        return {
            "histograms": {name: self.encoded(name) for name in self.histograms},
            "counters": dict(self.counters),
            "by_participant": {uid: dict(c) for uid, c in self.by_participant.items()},
            "series": self.series,
            "observations": self.observations,
            "workers": self.workers,
        }

    @classmethod
    def merge(cls, parts: list[dict[str, Any]]) -> Metrics:
        merged = cls()
        for part in parts:
            for name, encoded in part["histograms"].items():
                merged.histograms.setdefault(name, _histogram()).decode_and_add(base64.b64decode(encoded))
            merged.counters.update(part["counters"])
            for uid, counters in part.get("by_participant", {}).items():
                merged.by_participant.setdefault(uid, Counter()).update(counters)
            merged.series.extend(part["series"])
            merged.observations.extend(part["observations"])
            merged.workers.extend(part["workers"])
        merged.observations.sort(key=lambda o: o["at"])
        return merged
