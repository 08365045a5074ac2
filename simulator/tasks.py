"""Task ownership: every background task belongs to a :class:`TaskSet` (STYLE rule 7).

``asyncio.TaskGroup`` must be entered and exited by one task, which long-lived
objects opened in one test fixture and closed in another cannot promise. A
``TaskSet`` is the same idea without that constraint: the owner spawns into it and
closes it; closing cancels and awaits every task, so nothing outlives its owner.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

__all__ = ["TaskSet"]

logger = logging.getLogger(__name__)


class TaskSet:
    """A set of tasks owned by one object; :meth:`aclose` cancels and awaits them all."""

    def __init__(self, owner: str) -> None:
        self._owner = owner
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Start ``coro`` as a task owned by this set."""
        if self._closed:
            coro.close()
            raise RuntimeError(f"{self._owner}: cannot start {name!r}, the owner is closed")
        task = asyncio.get_running_loop().create_task(coro, name=f"{self._owner}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._reap)
        return task

    def _reap(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            # A task's failure is reported here, once; the owner decides what it means.
            logger.error("%s failed", task.get_name(), exc_info=exc)

    def __len__(self) -> int:
        return len(self._tasks)

    async def aclose(self) -> None:
        """Cancel every task and wait for all of them; idempotent."""
        self._closed = True
        current = asyncio.current_task()
        while pending := [t for t in self._tasks if t is not current]:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
