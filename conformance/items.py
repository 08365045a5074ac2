"""The contract's items and the classes of weakness the checks close, as check metadata.

``@check(section, level, items=..., closes=...)`` names the contract items (subsections of
docs/contract.md, :data:`ITEMS`) a check exercises and the classes of weakness
(:data:`WEAKNESSES`) it closes. Two things are made from them, never by hand:

- the item → checks table, ``docs/conformance-items.md`` (``python -m conformance.items``;
  a test fails when the committed file differs from what the checks say);
- the verdict's line on MUST items: which ones a run exercised, so an item with no MUST
  check in the profile shows (:func:`must_items`).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = ["ITEMS", "WEAKNESSES", "CheckInfo", "collect", "must_items", "table"]

ITEMS: Final[dict[str, str]] = {
    "A.1": "static members: CALL_MODE, MODE",
    "A.2": "methods: init, generateToken, startSession, endSession, in-call methods, their refusals",
    "A.3": "ordering and lifecycle: startSession resolving, a session after endSession",
    "B.1": "CallSettingsBuilder: defaults, chaining, getters",
    "B.3": "startSession's validation of the settings, in order",
    "B.4": "MainVideoContainerSetting",
    "B.7": "CallAppSettings: appId, region, host",
    "C": "OngoingCallListener callbacks: when, to whom, with which payload",
    "D": "listener registration: replace by id, order, removal, snapshot, clearing",
    "E": "the idle timeout: prompt, Stay, Leave now, expiry",
    "F.1": "ringing constants: CALL_STATUS, CALL_TYPE, RECEIVER_TYPE, DEFAULT_TIMEOUT",
    "F.3": "Chat SDK call methods: initiate, accept, reject, end, active call, participant count",
    "F.4": "incoming call messages → CallListener callbacks, 1:1 and group",
    "F.5": "call status transitions",
    "F.6": "the 1:1 ringing sequence and its ringing timer",
    "F.7": "the end-call choreography, session-only and ringing",
    "G": "call tokens: generateToken, what a token is, its lifetime",
    "H.2": "CALL_ERROR: code, name, message, details",
    "H.3": "Calls SDK errors: exact codes and messages, server errors relayed",
    "H.4": "Chat SDK errors of the ringing flow",
    "I": "devices: lists, setters, the debounced onMediaDeviceListUpdated",
    "J": "modes: constants, setMode in the builder and in a session",
}
"""The contract's items (docs/contract.md subsections with behaviour to check)."""

WEAKNESSES: Final[dict[int, str]] = {
    1: "exact values: every key and value of a payload, every field of a list entry",
    2: "several bad arguments at once: the contract's order of checks shows",
    3: "whole error entries (code, name, message, details); server errors relayed exactly",
    4: "timers followed to their end: boundaries, after an accept or expiry, non-number settings",
    5: "groups: group calls of §F",
    6: "backend facts: the backend's clock, token lifetimes",
    7: "no side effect on the other medium (audio vs video)",
    8: "bursts: several changes in one debounce window",
    9: "every value of an enum, in the builder and at runtime",
    10: "fixed 3- and 4-party scenarios for audiences and endings",
    11: "MUST items guarded by MUST checks (the verdict lists the items exercised)",
}
"""The classes of weakness: each a way a check looks at less than the contract says."""

CHECKS_DIR: Final = Path(__file__).parent / "checks"


@dataclass(frozen=True)
class CheckInfo:
    """One check function as its metadata describes it (parametrised cases count once)."""

    id: str
    section: str
    level: str
    items: tuple[str, ...]
    closes: tuple[int, ...]
    requires: tuple[str, ...]


def _check_id(module_path: Path, function: str) -> str:
    parts = [p.removeprefix("test_") for p in module_path.relative_to(CHECKS_DIR).with_suffix("").parts]
    return ".".join([*parts, function.removeprefix("test_")]).replace("_", "-")


def collect(folder: Path = CHECKS_DIR) -> list[CheckInfo]:
    """Every check under ``folder``, read from its ``@check`` marks (no implementation needed)."""
    found: list[CheckInfo] = []
    root = folder.parents[1]
    for path in sorted(folder.rglob("test_*.py")):
        module_name = ".".join(path.relative_to(root).with_suffix("").parts)
        module = importlib.import_module(module_name)
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if not name.startswith("test_") or function.__module__ != module.__name__:
                continue
            marks = getattr(function, "pytestmark", [])
            conformance = [m for m in marks if m.name == "conformance"]
            if not conformance:
                continue
            kwargs = conformance[0].kwargs
            requires = tuple(sorted(str(m.args[0]) for m in marks if m.name == "requires"))
            found.append(
                CheckInfo(
                    _check_id(path, name),
                    kwargs["section"],
                    kwargs["level"],
                    tuple(kwargs.get("items", (kwargs["section"],))),
                    tuple(kwargs.get("closes", ())),
                    requires,
                )
            )
    return sorted(found, key=lambda c: c.id)


def must_items(checks: Iterable[tuple[str, Iterable[str]]]) -> dict[str, int]:
    """Per contract item, how many of ``(level, items)`` are MUST checks naming it (0: none)."""
    out = dict.fromkeys(ITEMS, 0)
    for level, items in checks:
        if level == "MUST":
            for item in items:
                if item in out:
                    out[item] += 1
    return out


def table(checks: list[CheckInfo] | None = None) -> str:
    """The Markdown of ``docs/conformance-items.md``: item → checks, then class → checks."""
    checks = collect() if checks is None else checks
    lines = [
        "# Contract items → conformance checks",
        "",
        "Generated from the checks' `@check(..., items=..., closes=...)` marks by",
        "`python -m conformance.items --write`; `tests/conformance/test_items_table.py` fails when",
        "this file and the checks disagree. Levels as in [contract.md](contract.md#levels);",
        "a capability in brackets is one the check needs (outside a profile without it, the",
        "check skips).",
        "",
        "## By contract item",
        "",
        "| item | what | MUST | SHOULD | REFERENCE |",
        "|---|---|---|---|---|",
    ]

    def cell(item: str, level: str) -> str:
        named = [c for c in checks if item in c.items and c.level == level]
        if not named:
            return "—"
        return "<br>".join(f"`{c.id}`" + (f" [{', '.join(c.requires)}]" if c.requires else "") for c in named)

    for item, what in ITEMS.items():
        cells = " | ".join(cell(item, level) for level in ("MUST", "SHOULD", "REFERENCE"))
        lines.append(f"| §{item} | {what} | {cells} |")
    lines += ["", "## By class of weakness", "", "| class | checks |", "|---|---|"]
    for number, what in WEAKNESSES.items():
        named = [c for c in checks if number in c.closes]
        listed = "<br>".join(f"`{c.id}` ({c.level})" for c in named) or "—"
        lines.append(f"| {number}. {what} | {listed} |")
    counts = must_items((c.level, c.items) for c in checks)
    bare = [item for item, n in counts.items() if n == 0]
    lines += [
        "",
        f"{len(checks)} checks; contract items without a MUST check: "
        + (", ".join(f"§{item}" for item in bare) or "none")
        + ".",
    ]
    return "\n".join(lines) + "\n"


DOC: Final = Path(__file__).parents[1] / "docs" / "conformance-items.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the item → checks table, from the checks' metadata")
    parser.add_argument("--write", action="store_true", help=f"write {DOC.name} (default: print it)")
    args = parser.parse_args(argv)
    text = table()
    if args.write:
        DOC.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
