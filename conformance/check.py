"""The ``@check`` decorator: a check's contract section, level and needed capabilities.

Three levels, each meaning one thing (docs/contract.md, "Levels"):

- **MUST**: the seed page documents it and the published SDK does it. A conformant
  implementation passes every MUST check of its profile.
- **SHOULD**: the published SDK does it, but no page documents it. Reported, not required.
- **REFERENCE**: a deliberate choice where the reference departs from the published SDK
  (or goes beyond it), each citing its K item. Reported, never counted against
  conformance: the published SDK fails some of them by design.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Final, Literal, TypeVar

import pytest

from conformance.driver import CAPABILITIES
from conformance.items import ITEMS, WEAKNESSES

__all__ = ["LEVELS", "MUST", "REFERENCE", "SHOULD", "Level", "check"]

Level = Literal["MUST", "SHOULD", "REFERENCE"]

MUST: Final = "MUST"
"""Documented by the seed page and done by the published SDK: required for conformance."""
SHOULD: Final = "SHOULD"
"""Done by the published SDK (docs/contract.md) but not documented: reported, not required."""
REFERENCE: Final = "REFERENCE"
"""The reference's own choice (a K item) where the published SDK does otherwise: reported only."""

LEVELS: Final[tuple[Level, ...]] = ("MUST", "SHOULD", "REFERENCE")
"""In the order reports list them."""

F = TypeVar("F", bound=Callable[..., object])


def check(
    section: str,
    level: Level,
    *requires: str,
    optional: Iterable[str] = (),
    items: Iterable[str] = (),
    closes: Iterable[int] = (),
) -> Callable[[F], F]:
    """Mark a check: ``@check("E", MUST, "virtualClock")``.

    ``requires``: the capabilities whose methods the check calls; outside the run's
    profile it skips. ``optional``: capabilities it uses only when the profile has them,
    after asking ``sut.has(capability)``. A check calling a capability's method without
    declaring it is a bug in the check, reported as an error (``Sut.call``).

    ``items``: the contract items it exercises (``conformance.items.ITEMS``; default: the
    section, if it is an item); ``closes``: the classes of weakness it closes
    (``conformance.items.WEAKNESSES``). Both feed the item → checks table and the verdict.
    """
    optional = tuple(optional)
    # A section that is not an item (a K resolution, a whole section) names none by default:
    # tests/conformance/test_items_table.py holds the project's own checks to naming some.
    items = tuple(items) or ((section,) if section in ITEMS else ())
    closes = tuple(closes)
    if bad := [item for item in items if item not in ITEMS]:
        raise ValueError(f"unknown contract item {', '.join(bad)}; known: {', '.join(ITEMS)} (items=...)")
    if bad_classes := [c for c in closes if c not in WEAKNESSES]:
        raise ValueError(f"unknown class of weakness {bad_classes}; known: {sorted(WEAKNESSES)}")
    unknown = sorted(set(requires).union(optional) - CAPABILITIES.keys())
    if unknown:
        raise ValueError(f"unknown capability {', '.join(unknown)}; known: {', '.join(sorted(CAPABILITIES))}")
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; known: {', '.join(LEVELS)}")

    def mark(function: F) -> F:
        marked = pytest.mark.conformance(
            section=section, level=level, optional=optional, items=items, closes=closes
        )(function)
        for capability in requires:
            marked = pytest.mark.requires(capability)(marked)
        return marked  # type: ignore[no-any-return]

    return mark
