"""The reference stack behind the conformance protocol (in-process driver and wire shim)."""

from conformance.reference.implementation import ReferenceImplementation

__all__ = ["ReferenceImplementation"]
