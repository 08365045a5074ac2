"""Drivers: the reference in-process, and any program over the wire."""

from conformance.drivers.inprocess import ReferenceDriver
from conformance.drivers.wire import WireDriver

__all__ = ["ReferenceDriver", "WireDriver"]
