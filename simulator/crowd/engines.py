"""Where a run's shards execute: worker processes on this machine (the default), or tasks on a
Ray cluster (:mod:`simulator.crowd.ray_engine`, beyond one machine).

The runner speaks to either through :class:`Engine`: start the jobs, drain their progress
samples and finished results, ask them to stop, close. A shard is self-contained (its
participants, its seed, its metrics out), so nothing else differs between engines.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
from typing import Any, Protocol

from simulator.crowd.worker import WorkerJob, worker_main

__all__ = ["Engine", "LocalEngine"]


class Engine(Protocol):
    """What the runner needs of an engine."""

    name: str
    start_delay: float
    """Seconds from starting the jobs to the run's t = 0: time for a worker to start, import
    and connect (the same t = 0 for every worker, wherever it runs)."""

    def start(self, jobs: list[WorkerJob]) -> None:
        """Start every job (one shard each)."""

    def progress(self) -> list[dict[str, Any]]:
        """The progress samples that arrived since the last call."""

    def results(self) -> list[dict[str, Any]]:
        """The results that arrived since the last call (a failed worker's is ``{"error": …}``)."""

    def running(self) -> int:
        """How many jobs have neither finished nor failed."""

    def stop(self) -> None:
        """Ask every job to wind down now (everyone leaves, metrics are sent)."""

    @property
    def stopping(self) -> bool: ...

    def close(self, timeout: float) -> None:
        """Wait up to ``timeout`` for what runs, then end it; free the engine's resources."""


class LocalEngine:
    """One spawned process per shard on this machine, optionally pinned to cores."""

    name = "local"
    start_delay = 2.0

    def __init__(self, cores: list[int] | None = None) -> None:
        self._ctx = multiprocessing.get_context("spawn")
        self._progress: Any = self._ctx.Queue()
        self._results: Any = self._ctx.Queue()
        self._stop: Any = self._ctx.Event()
        self._cores = cores or []
        self._processes: list[Any] = []
        self._done = 0

    def start(self, jobs: list[WorkerJob]) -> None:
        for number, job in enumerate(jobs):
            process = self._ctx.Process(
                target=worker_main,
                args=(job, self._progress, self._results, self._stop),
                name=f"callsim-worker-{job.shard.number}",
            )
            process.start()
            self._processes.append(process)
            if self._cores and process.pid is not None:
                os.sched_setaffinity(process.pid, {self._cores[number % len(self._cores)]})

    @staticmethod
    def _drain(source: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        with contextlib.suppress(queue.Empty):
            while True:
                out.append(source.get_nowait())
        return out

    def progress(self) -> list[dict[str, Any]]:
        return self._drain(self._progress)

    def results(self) -> list[dict[str, Any]]:
        out = self._drain(self._results)
        if not out and self._done < len(self._processes) and not any(p.is_alive() for p in self._processes):
            # Every process has exited: a last result may still be in the pipe.
            with contextlib.suppress(queue.Empty):
                out.append(self._results.get(timeout=2))
            self._done = len(self._processes)  # whatever did not come never will
            return out
        self._done += len(out)
        return out

    def running(self) -> int:
        return len(self._processes) - self._done

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return bool(self._stop.is_set())

    def close(self, timeout: float) -> None:
        self._stop.set()
        for process in self._processes:
            process.join(timeout)
            if process.is_alive():
                process.terminate()
                process.join(5)
        for q in (self._progress, self._results):
            q.close()
            q.join_thread()
