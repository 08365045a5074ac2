"""The ``@check`` decorator: a check's contract section, level and needed capabilities."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, TypeVar

import pytest

__all__ = ["MUST", "SHOULD", "check"]

MUST: Literal["MUST"] = "MUST"
"""The seed page says it: a conformant implementation passes every MUST check; none may skip."""
SHOULD: Literal["SHOULD"] = "SHOULD"
"""The published SDK's observed behaviour (docs/contract.md): reported, not required."""

F = TypeVar("F", bound=Callable[..., object])


def check(section: str, level: Literal["MUST", "SHOULD"], *requires: str) -> Callable[[F], F]:
    """Mark a check: ``@check("E", MUST, "virtualClock")``."""

    def mark(function: F) -> F:
        marked = pytest.mark.conformance(section=section, level=level)(function)
        for capability in requires:
            marked = pytest.mark.requires(capability)(marked)
        return marked  # type: ignore[no-any-return]

    return mark
