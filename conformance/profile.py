"""A profile: the core every implementation has, plus the capabilities it is judged on.

The verdict is given per profile (``CONFORMANT for profile calls-core + callView``). A
check needing a capability outside the profile is not run: it skips, naming the
capability, and the report lists it as *outside the profile* — it counts neither for nor
against conformance. The profile is what the implementation declares in the handshake,
or less if the run claims less (``--profile``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from conformance.driver import CAPABILITIES

__all__ = ["CORE", "Profile", "parse_capabilities"]

CORE: Final = "calls-core"
"""Every ``CometChatCalls.*`` method and the core harness methods (PROTOCOL.md §2)."""


def parse_capabilities(text: str) -> frozenset[str]:
    """``"callView,virtualClock"`` or ``"calls-core + callView"`` → the capabilities named.

    ``calls-core`` may be named and is implied; an unknown name is a ValueError listing the
    known ones.
    """
    names = {name for name in re.split(r"[\s,+]+", text) if name and name != CORE}
    unknown = sorted(names - CAPABILITIES.keys())
    if unknown:
        raise ValueError(
            f"unknown capability {', '.join(map(repr, unknown))}; known: {', '.join(sorted(CAPABILITIES))}"
        )
    return frozenset(names)


@dataclass(frozen=True)
class Profile:
    """The capabilities a run judges, beside the core."""

    capabilities: frozenset[str]

    @property
    def name(self) -> str:
        """``calls-core + callView + virtualClock`` (capabilities sorted)."""
        return " + ".join([CORE, *sorted(self.capabilities)])

    def outside(self, requires: Iterable[str]) -> list[str]:
        """The capabilities of ``requires`` this profile leaves out, sorted."""
        return sorted(set(requires) - self.capabilities)
