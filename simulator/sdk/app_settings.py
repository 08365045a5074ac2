"""``CallAppSettingsBuilder`` / ``CallAppSettings`` and ``init``'s validation (§A.2 #1, §B.7)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from simulator.sdk.errors import InvalidArgumentError, Messages

__all__ = ["REGIONS", "CallAppSettings", "CallAppSettingsBuilder", "validate_app_settings"]

REGIONS: Final = frozenset({"us", "eu", "in", "US", "EU", "IN"})


@dataclass(frozen=True)
class CallAppSettings:
    """App id, region and (for the reference backend) the host the SDK talks to."""

    app_id: Any = None
    region: Any = None
    host: Any = None

    def get_app_id(self) -> Any:
        return self.app_id

    def get_region(self) -> Any:
        return self.region

    def get_host(self) -> Any:
        return self.host

    def base_url(self) -> str:
        """The REST base: ``host`` verbatim (with a final ``/``), else the region's default (§A.2)."""
        if self.host:
            host = str(self.host)
            return host if host.endswith("/") else f"{host}/"
        return f"https://{self.app_id}.call-{str(self.region).lower()}.cometchat.io/v3.0/"


class CallAppSettingsBuilder:
    """Chainable builder of :class:`CallAppSettings`."""

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}

    def set_app_id(self, app_id: str) -> CallAppSettingsBuilder:
        self._values["app_id"] = app_id
        return self

    def set_region(self, region: str) -> CallAppSettingsBuilder:
        self._values["region"] = region
        return self

    def set_host(self, host: str) -> CallAppSettingsBuilder:
        """The REST base used verbatim, e.g. ``http://127.0.0.1:8080/`` (§A.2 base URL)."""
        self._values["host"] = host
        return self

    def build(self) -> CallAppSettings:
        return CallAppSettings(**self._values)


def validate_app_settings(settings: object) -> CallAppSettings:
    """§A.2 #1, in order: instance, app id, region, host."""
    if not isinstance(settings, CallAppSettings):
        raise InvalidArgumentError(Messages.INVALID_CALL_APP_SETTINGS, Messages.APP_SETTINGS_INSTANCE)
    if not isinstance(settings.app_id, str) or not settings.app_id.strip():
        raise InvalidArgumentError(Messages.INVALID_CALL_APP_SETTINGS, Messages.APP_ID_INVALID)
    if not isinstance(settings.region, str) or settings.region not in REGIONS:
        raise InvalidArgumentError(Messages.INVALID_CALL_APP_SETTINGS, Messages.REGION_INVALID)
    if settings.host is not None and not isinstance(settings.host, str):
        raise InvalidArgumentError(Messages.INVALID_CALL_APP_SETTINGS, Messages.HOST_INVALID)
    return settings
