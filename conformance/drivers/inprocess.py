"""The reference stack in the test process: the fastest way to run the suite."""

from __future__ import annotations

from typing import Any

from conformance.driver import Capabilities, ContractError, DriverError, EventLog
from conformance.reference.implementation import ReferenceImplementation
from simulator.media import MediaPath

__all__ = ["ReferenceDriver"]


class ReferenceDriver:
    """Drives :class:`ReferenceImplementation` directly (no serialisation)."""

    def __init__(self, media_path: MediaPath = "full") -> None:
        self.log = EventLog()
        self._impl = ReferenceImplementation(self.log.add, media_path)
        self._alive = False

    async def start(self) -> Capabilities:
        hello = await self._impl.start()
        self._alive = True
        return Capabilities(hello["implementation"], hello["version"], frozenset(hello["capabilities"]))

    async def call(self, method: str, params: dict[str, Any]) -> Any:
        try:
            return await self._impl.handle(method, params)
        except (ContractError, DriverError):
            raise
        except LookupError as exc:
            raise DriverError(f"method not implemented: {exc}") from exc

    async def close(self) -> None:
        self._alive = False
        await self._impl.close()

    @property
    def alive(self) -> bool:
        return self._alive

    @property
    def transcript(self) -> list[str]:
        return []  # nothing is serialised in process
