"""Metrics for Prometheus: a run's (``callsim run --metrics``), scraped mid-run from its own
process, and a backend's, scraped while people are in a call; each scrape parsed with
``prometheus_client``'s own parser."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from simulator.prometheus import metrics_endpoint, parse_address
from simulator.server import Backend
from simulator.server.metrics import BackendCollector
from tests.conftest import Join

pytestmark = pytest.mark.e2e

SCENARIO = """
[scenario]
name = "scraped"
seed = 4
duration = 14
join_rate = 8

[[sessions]]
count = 2
participants = 2
media = "lean"

[behaviours]
mute = { every = [2.0, 4.0] }
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def families(text: str) -> dict[str, Metric]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def value(family: Metric, **labels: str) -> float:
    """The sample of ``family`` with exactly these labels (its ``_total`` for a counter)."""
    for sample in family.samples:
        if sample.labels == labels and not sample.name.endswith(("_created", "_bucket", "_count", "_sum")):
            return float(sample.value)
    raise KeyError(f"{family.name}{labels}")


def label_names(metrics: Iterable[Metric]) -> set[str]:
    return {name for family in metrics for sample in family.samples for name in sample.labels}


def test_a_run_is_scraped_mid_run_with_bounded_labels(tmp_path: Path) -> None:
    (tmp_path / "scenario.toml").write_text(SCENARIO)
    port = free_port()
    run = subprocess.Popen(
        [sys.executable, "-m", "simulator.cli", "run", str(tmp_path / "scenario.toml"), "--no-live",
         "--workers", "1", "--report", str(tmp_path / "report"), "--metrics", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "120"},
    )  # fmt: skip
    try:
        scraped = _scrape_until_joined(f"http://127.0.0.1:{port}/metrics", run, everyone=4)
        output, _ = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 0, output[-3000:]
    assert f"metrics for Prometheus: http://127.0.0.1:{port}/metrics" in output
    found = families(scraped)
    assert value(found["callsim_run_participants"], state="planned") == 4
    assert value(found["callsim_run_participants"], state="joined") == 4
    assert value(found["callsim_run_joins"], door="native") >= 4
    joins = found["callsim_run_join_seconds"]
    assert next(s.value for s in joins.samples if s.name.endswith("_count")) >= 4
    assert found["callsim_run_callbacks"].type == "counter"
    # The embedded backend's, beside the run's: everyone in two sessions, media through the SFU.
    assert value(found["callsim_backend_sessions"]) == 2
    assert value(found["callsim_backend_participants"], door="native") == 4
    assert value(found["callsim_backend_signalling_messages"], outcome="accepted") > 0
    # Bounded labels only: never a participant, a session or a uid.
    assert label_names(found.values()) <= {"door", "network", "code", "worker", "expectation", "state",
                                           "outcome", "limit", "le"}  # fmt: skip


def _scrape_until_joined(url: str, run: subprocess.Popen[str], *, everyone: int) -> str:
    """Scrape until the run says everyone joined and media flows (the run has no other face
    to wait on); bounded, and failing at once if the run ends first."""
    deadline = time.monotonic() + 60
    last = ""
    while time.monotonic() < deadline:
        if run.poll() is not None:
            raise AssertionError(f"the run ended before a scrape saw everyone in: {last[-2000:]}")
        try:
            last = _get(url)
        except OSError:  # not serving yet
            last = ""
        if (
            last
            and 'callsim_run_participants{state="joined"} ' + f"{everyone}.0" in last
            and ("callsim_backend_sfu_forwarded_packets_total 0.0" not in last)
        ):
            return last
        time.sleep(0.2)  # polling another process's endpoint (it has no other face), bounded above
    raise AssertionError(f"no scrape saw everyone in within 60 s: {last[-2000:]}")


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


async def test_a_backend_is_scraped_while_people_are_in_a_call(join: Join, backend: Backend) -> None:
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    registry.register(BackendCollector(backend))
    await join("alice", path="lean")
    bob = await join("bob", path="lean")
    await bob.evidence.wait_for(lambda: bob.evidence.frames_from("alice") >= 5, 30)
    async with metrics_endpoint(registry, "127.0.0.1", 0) as url, aiohttp.ClientSession() as http:
        async with http.get(url) as response:
            assert response.status == 200
            text = await response.text()
        async with http.get(url, headers={"Accept": "application/openmetrics-text"}) as response:
            assert response.headers["Content-Type"].startswith("application/openmetrics-text")
            assert {f.name for f in parse_openmetrics(await response.text())} >= {"callsim_backend_sessions"}
    found = families(text)
    assert value(found["callsim_backend_sessions"]) == 1
    assert value(found["callsim_backend_participants"], door="native") == 2
    assert value(found["callsim_backend_participants"], door="jitsi") == 0
    assert value(found["callsim_backend_sfu_received_packets"]) > 0
    assert value(found["callsim_backend_sfu_forwarded_packets"]) > 0
    assert value(found["callsim_backend_resident_memory_bytes"]) > 0
    assert found["callsim_backend_refusals"].type == "counter"


@pytest.mark.parametrize(
    ("text", "address"),
    [("9100", ("127.0.0.1", 9100)), ("0.0.0.0:9100", ("0.0.0.0", 9100)), ("[::1]:80", ("::1", 80))],
)
def test_a_metrics_address_is_host_and_port_with_loopback_by_default(
    text: str, address: tuple[str, int]
) -> None:
    assert parse_address(text) == address


@pytest.mark.parametrize("text", ["", "port", "localhost:http", "1:99999"])
def test_a_bad_metrics_address_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"PORT|port"):
        parse_address(text)
