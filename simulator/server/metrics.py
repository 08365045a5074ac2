"""The backend's metrics for Prometheus, read from its live state at each scrape.

Names follow Prometheus's conventions: a ``callsim_backend_`` prefix, base units in the name
(``_bytes``), ``_total`` on counters, and only bounded labels (``door``, ``outcome``,
``limit``): never one per participant or session.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Final

import psutil
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from simulator.server.app import Backend

__all__ = ["BackendCollector"]

SFU_COUNTERS: Final = {
    "packets_in": ("sfu_received_packets", "RTP packets the SFU received from publishers"),
    "packets_out": ("sfu_forwarded_packets", "RTP packets the SFU forwarded to subscribers"),
    "resent": ("sfu_resent_packets", "RTP packets the SFU resent from its history on a subscriber's NACK"),
    "nacked": ("sfu_nacked_packets", "sequence numbers subscribers NACKed"),
    "nacks_asked": ("sfu_publisher_nacks", "sequence numbers the SFU asked publishers to resend"),
    "plis_sent": ("sfu_plis", "picture-loss indications subscribers sent"),
    "keyframes_asked": ("sfu_keyframe_requests", "keyframes the SFU asked publishers for"),
}


class BackendCollector(Collector):
    """``registry.register(BackendCollector(backend))``: its rooms, people, SFU, signalling,
    refusals and process, as they are when scraped."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def collect(self) -> Iterator[Metric]:
        backend = self._backend
        rooms = list(backend.rooms)
        yield GaugeMetricFamily("callsim_backend_sessions", "sessions with someone in them", len(rooms))
        people = GaugeMetricFamily(
            "callsim_backend_participants",
            "participants in a session, by the door they came in by",
            labels=["door"],
        )
        present = [p for room in rooms for p in room]
        xmpp = sum(1 for p in present if p.connection is None)
        people.add_metric(["native"], len(present) - xmpp)
        people.add_metric(["jitsi"], xmpp)
        yield people
        totals = backend.media_totals()
        for key, (name, help_text) in SFU_COUNTERS.items():
            yield CounterMetricFamily(f"callsim_backend_{name}", help_text, value=totals.get(key, 0))
        messages = CounterMetricFamily(
            "callsim_backend_signalling_messages", "client messages read, by outcome", labels=["outcome"]
        )
        for outcome in ("accepted", "refused"):
            messages.add_metric([outcome], backend.signalling.messages[outcome])
        yield messages
        refusals = CounterMetricFamily(
            "callsim_backend_refusals", "requests refused by a limit (docs/reliability.md)", labels=["limit"]
        )
        for limit, count in sorted(backend.admission.refused.items()):
            refusals.add_metric([limit], count)
        yield refusals
        process = psutil.Process()
        yield GaugeMetricFamily(
            "callsim_backend_resident_memory_bytes",
            "the backend process's resident memory",
            process.memory_info().rss,
        )
        yield GaugeMetricFamily(
            "callsim_backend_open_fds", "the backend process's open descriptors", process.num_fds()
        )
