"""Fake media devices of one virtual participant (contract §I).

A :class:`FakeDevices` holds cameras (each with a facing mode, so ``switch_camera``
has something to switch), microphones and speakers, which one of each is active,
and lets a test hot-plug devices. Live sources read the active device at every
frame, so selecting a device takes effect on the media, not only in the list.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Literal

__all__ = ["DeviceKind", "FacingMode", "FakeDevices", "MediaDevice"]

DeviceKind = Literal["audioinput", "audiooutput", "videoinput"]
FacingMode = Literal["user", "environment"]


@dataclass(frozen=True, slots=True)
class MediaDevice:
    """A ``MediaDeviceInfo``-shaped entry plus the UI's ``active`` flag (§I)."""

    device_id: str
    kind: DeviceKind
    label: str
    group_id: str
    active: bool = False
    facing_mode: FacingMode | None = field(default=None, metadata={"wire": False})
    """Cameras only; not part of the wire shape."""


_group_ids = itertools.count(1)


def _device(kind: DeviceKind, label: str, facing: FacingMode | None = None) -> MediaDevice:
    group = f"group-{next(_group_ids)}"
    slug = label.lower().replace(" ", "-")
    return MediaDevice(f"{kind}-{slug}", kind, label, group, facing_mode=facing)


class FakeDevices:
    """The devices one participant has, with one active device per kind."""

    def __init__(self, devices: Iterable[MediaDevice] | None = None) -> None:
        if devices is None:
            devices = (
                _device("videoinput", "Front Camera", "user"),
                _device("videoinput", "Back Camera", "environment"),
                _device("audioinput", "Built-in Microphone"),
                _device("audioinput", "Headset Microphone"),
                _device("audiooutput", "Built-in Speaker"),
                _device("audiooutput", "Headset"),
            )
        self._devices: dict[str, MediaDevice] = {}
        self._active: dict[DeviceKind, str] = {}
        self._listeners: list[Callable[[], None]] = []
        for device in devices:
            self._devices[device.device_id] = replace(device, active=False)
            self._active.setdefault(device.kind, device.device_id)

    # --- reading ----------------------------------------------------------------------

    def list(self, kind: DeviceKind | None = None) -> tuple[MediaDevice, ...]:
        """The devices (of one kind), each with its current ``active`` flag."""
        return tuple(
            replace(d, active=self._active.get(d.kind) == d.device_id)
            for d in self._devices.values()
            if kind is None or d.kind == kind
        )

    def active(self, kind: DeviceKind) -> MediaDevice | None:
        """The device of ``kind`` in use, or None when there is none."""
        device_id = self._active.get(kind)
        return None if device_id is None else replace(self._devices[device_id], active=True)

    def active_index(self, kind: DeviceKind) -> int:
        """The active device's position among its kind (carried in video marks)."""
        ids = [d.device_id for d in self._devices.values() if d.kind == kind]
        device_id = self._active.get(kind)
        return ids.index(device_id) if device_id in ids else 0

    # --- changing ---------------------------------------------------------------------

    def subscribe(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` after every change; returns a function that unsubscribes."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _changed(self) -> None:
        for listener in list(self._listeners):
            listener()

    def select(self, device_id: str) -> bool:
        """Make ``device_id`` the active device of its kind; False if unknown."""
        device = self._devices.get(device_id)
        if device is None:
            return False
        self._active[device.kind] = device_id
        self._changed()
        return True

    def plug(self, device: MediaDevice) -> None:
        """Hot-plug a device (it becomes active if its kind had none)."""
        self._devices[device.device_id] = replace(device, active=False)
        self._active.setdefault(device.kind, device.device_id)
        self._changed()

    def unplug(self, device_id: str) -> None:
        """Remove a device; if it was active, the first remaining one of its kind takes over."""
        device = self._devices.pop(device_id, None)
        if device is None:
            return
        if self._active.get(device.kind) == device_id:
            del self._active[device.kind]
            for other in self._devices.values():
                if other.kind == device.kind:
                    self._active[device.kind] = other.device_id
                    break
        self._changed()

    def camera_facing(self, facing: FacingMode) -> MediaDevice | None:
        """The first camera facing ``facing``, for ``switch_camera`` (§A.2 #14)."""
        for device in self._devices.values():
            if device.kind == "videoinput" and device.facing_mode == facing:
                return device
        return None

    @staticmethod
    def make(kind: DeviceKind, label: str, facing: FacingMode | None = None) -> MediaDevice:
        """A new device entry with a stable id derived from its label."""
        return _device(kind, label, facing)
