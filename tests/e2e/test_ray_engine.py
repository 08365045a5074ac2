"""``callsim run --engine ray``: the default scenario on a two-node Ray cluster
started here, the same report as the local engine, and a failing shard reported as a worker
error naming its node.

Skipped without Ray (``callsim[ray]``) unless ``CALLSIM_REQUIRE_RAY=1`` (tox sets it).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REQUIRED = os.environ.get("CALLSIM_REQUIRE_RAY") == "1"


def _ray_cli() -> str:
    try:
        import ray  # noqa: F401
    except ImportError:
        if REQUIRED:
            pytest.fail("Ray is required here (CALLSIM_REQUIRE_RAY=1): pip install 'callsim[ray]'")
        pytest.skip("needs Ray: pip install 'callsim[ray]'")
    found = shutil.which("ray", path=str(Path(sys.executable).parent)) or shutil.which("ray")
    assert found, "the ray command comes with the ray package"
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """Two Ray nodes on this machine, one CPU each: a head, and a worker that joins it.

    On loopback, started and stopped by the test, the cluster runs without token auth (a real
    one keeps it: README, "Beyond one machine"); the driver, in this process, is told so too.
    """
    ray = _ray_cli()
    port = _free_port()
    address = f"127.0.0.1:{port}"
    settings = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    env = dict(os.environ)
    common = ["--num-cpus", "1", "--disable-usage-stats"]
    head = [
        ray,
        "start",
        "--head",
        "--node-ip-address",
        "127.0.0.1",
        "--port",
        str(port),
        "--include-dashboard",
        "false",
    ]
    subprocess.run([*head, *common], check=True, env=env, capture_output=True, timeout=120)
    try:
        worker = [ray, "start", "--address", address, "--node-ip-address", "127.0.0.1"]
        subprocess.run([*worker, *common], check=True, env=env, capture_output=True, timeout=120)
        yield address
    finally:
        subprocess.run([ray, "stop", "--force"], check=False, env=env, capture_output=True, timeout=120)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _callsim(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    # A process of its own: Ray's driver state (threads, a GCS channel) stays out of the tests'.
    return subprocess.run(
        [sys.executable, "-m", "simulator.cli", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_the_default_scenario_passes_on_two_ray_nodes_with_the_local_report(
    cluster: str, tmp_path: Path
) -> None:
    report = tmp_path / "report"
    run = _callsim(
        "run", "--engine", "ray", "--address", cluster, "--workers", "2", "--no-live",
        "--report", str(report), timeout=600,
    )  # fmt: skip
    data = json.loads((report / "run.json").read_text())
    assert run.returncode == 0, (run.stdout[-3000:], data["worker_errors"])
    # The report of the local engine, field for field, and each worker names the node it ran on.
    assert {"scenario", "verdict", "expectations", "histograms", "counters", "workers", "steady"} <= set(data)
    assert all(e["passed"] for e in data["expectations"])
    assert len(data["workers"]) == 2
    assert len({w["node"] for w in data["workers"]}) == 2  # one shard per node (one CPU each)
    assert data["histograms"]["join_ms"]["count"] >= len(data["participants"])
    assert " on node " in run.stdout


FAILING_SHARD = """
import json, sys
from simulator.crowd.plan import make_plan
from simulator.crowd.ray_engine import RayEngine
from simulator.crowd.scenario import load_scenario
from simulator.crowd.worker import WorkerJob

plan = make_plan(load_scenario("[scenario]\\nduration = 5\\n[[sessions]]\\nparticipants = 1"))
(shard,) = plan.shards(1)
# No auth token for its participant: the shard cannot start.
job = WorkerJob(shard, "http://127.0.0.1:9/", "callsim", "key", {}, 0.0, 5.0, ringing=False)
engine = RayEngine(sys.argv[1])
try:
    engine.start([job])
    results = engine.wait(timeout=120)
finally:
    engine.close(30)
print(json.dumps(results))
"""


def test_a_failing_shard_is_a_worker_error_naming_its_node(cluster: str) -> None:
    run = subprocess.run(
        [sys.executable, "-c", FAILING_SHARD, cluster],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    (result,) = json.loads(run.stdout.strip().splitlines()[-1])
    assert "error" in result and "on node" in str(result["error"]), result
