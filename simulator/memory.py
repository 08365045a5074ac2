"""Giving memory back to the system: a full collection, then the C heap trimmed.

A departed participant leaves reference cycles (aiortc's connections, transports and tasks
point at each other) that only a full collection frees, and :mod:`simulator.eventloop` makes
full collections rare to keep the loop smooth. What is freed then goes back to glibc's heap,
which keeps it (fragmented among arenas) unless ``malloc_trim`` returns it to the system.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import time

__all__ = ["release_memory"]


@functools.cache
def _malloc_trim() -> ctypes._NamedFuncPointer | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None


def release_memory() -> float:
    """Collect every generation and trim the C heap; the seconds it took."""
    started = time.perf_counter()
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
    return time.perf_counter() - started
