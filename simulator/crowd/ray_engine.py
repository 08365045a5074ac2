"""The run's shards as Ray tasks: beyond one machine (``callsim run --engine ray``).

Each shard is one task (one CPU of a node, ``num_cpus=1``: a shard's participants share one
event loop), placed by Ray where a CPU is free. A task runs exactly what a local worker
process runs (:func:`~simulator.crowd.worker.run_shard`), and returns the same plain data, so
histograms merge and the report reads the same; each worker's entry also names its node.

* Progress samples come back through a :class:`ray.util.queue.Queue`; the stop request goes
  out through a small actor, which each task asks every 0.2 s (as a local worker looks at
  its process-shared event).
* A task that fails, or whose node is lost, is a **worker error** in the report (the run
  fails, naming the node), never an invariant violation: nobody's user list is judged on
  a participant that never ran.
* Without ``address`` a Ray instance is started on this machine and stopped at the end;
  with one, the cluster is joined, and left (still running) at the end.

The workers reach the backend at the URL the runner gives them: on a real cluster, a
backend every node can reach (``callsim serve --host 0.0.0.0`` and ``--backend URL
--api-key KEY``), not the embedded one on 127.0.0.1. Every node needs ``callsim[ray]`` at
the same version as the driver.
"""

from __future__ import annotations

from typing import Any

import ray
from ray.util.queue import Empty, Queue

from simulator.crowd.worker import WorkerJob, run_shard

__all__ = ["RayEngine"]


@ray.remote(num_cpus=0)
class _StopFlag:
    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set


class _StopView:
    """The flag as a worker sees it: ``is_set()``, like a process-shared event."""

    def __init__(self, flag: Any) -> None:
        self._flag = flag

    def is_set(self) -> bool:
        return bool(ray.get(self._flag.is_set.remote()))


class _ProgressView:
    """The queue as a worker sees it: ``put_nowait(sample)``."""

    def __init__(self, queue: Queue) -> None:
        self._queue = queue

    def put_nowait(self, sample: dict[str, Any]) -> None:
        self._queue.put_nowait(sample)


@ray.remote(num_cpus=1, max_retries=0)
def _run_shard_task(job: WorkerJob, progress: _ProgressView, stop: _StopView) -> dict[str, Any]:
    node = ray.get_runtime_context().get_node_id()[:12]
    try:
        data = run_shard(job, progress, stop)
    except Exception as exc:  # the same shape as a local worker's failure
        return {"error": f"worker {job.shard.number} on node {node}: {type(exc).__name__}: {exc}"}
    for worker in data.get("workers", []):
        worker["node"] = node
    return data


class RayEngine:
    """Shards as Ray tasks on the cluster at ``address`` (or a local instance)."""

    name = "ray"
    start_delay = 10.0
    """A fresh Ray worker process imports the media stack before its first participant."""

    def __init__(self, address: str | None = None) -> None:
        self._connected_here = not ray.is_initialized()
        if self._connected_here:
            ray.init(
                address=address,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
        self._queue = Queue()
        self._flag = _StopFlag.remote()  # type: ignore[attr-defined]
        self._stopping = False
        self._pending: dict[Any, int] = {}

    def start(self, jobs: list[WorkerJob]) -> None:
        progress, stop = _ProgressView(self._queue), _StopView(self._flag)
        for job in jobs:
            self._pending[_run_shard_task.remote(job, progress, stop)] = job.shard.number

    def progress(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while True:
            try:
                out.append(self._queue.get_nowait())
            except Empty:
                return out

    def results(self) -> list[dict[str, Any]]:
        if not self._pending:
            return []
        ready, _ = ray.wait(list(self._pending), num_returns=len(self._pending), timeout=0)
        out = []
        for ref in ready:
            number = self._pending.pop(ref)
            try:
                out.append(ray.get(ref))
            except Exception as exc:  # a lost node or a killed task: the worker's error
                out.append({"error": f"worker {number}: {type(exc).__name__}: {exc}"})
        return out

    def running(self) -> int:
        return len(self._pending)

    def wait(self, timeout: float) -> list[dict[str, Any]]:
        """The results, once at least one job has ended (or ``timeout`` has passed)."""
        if self._pending:
            ray.wait(list(self._pending), num_returns=1, timeout=timeout)
        return self.results()

    def stop(self) -> None:
        self._stopping = True
        self._flag.set.remote()

    @property
    def stopping(self) -> bool:
        return self._stopping

    def close(self, timeout: float) -> None:
        if self._pending:
            ray.wait(list(self._pending), num_returns=len(self._pending), timeout=timeout)
            for ref in list(self._pending):
                ray.cancel(ref, force=True)
        ray.kill(self._queue.actor)  # type: ignore[arg-type]
        ray.kill(self._flag)
        if self._connected_here:
            ray.shutdown()  # a local instance stops; a cluster is left running, this driver leaves it
