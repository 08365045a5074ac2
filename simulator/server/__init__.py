"""The reference backend: REST, WebSocket signalling, an SFU, SQLite persistence."""

from simulator.server.app import Backend
from simulator.server.errors import ApiError, Codes

__all__ = ["ApiError", "Backend", "Codes"]
