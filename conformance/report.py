"""The conformance report, generated from the run (never kept by hand): JSON and Markdown.

JUnit XML comes from pytest's own writer, pointed into the same folder.

The verdict is given for the run's profile (``conformance.profile``): every MUST check of
the profile passes. SHOULD and REFERENCE outcomes are reported beside it; checks outside the
profile are listed with the capabilities they need.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from conformance.check import LEVELS
from conformance.items import ITEMS
from conformance.profile import CORE, Profile

__all__ = ["CheckResult", "Report", "natural_key"]


def natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """Sorts ``check[2]`` before ``check[10]`` and §E before §K1 before §K10."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", text) if part)


@dataclass
class CheckResult:
    id: str
    section: str
    level: str
    outcome: str
    """pass, fail, skip or error."""
    reason: str = ""
    duration: float = 0.0
    events: list[dict[str, Any]] = field(default_factory=list)
    transcript: list[str] = field(default_factory=list)
    requires: list[str] = field(default_factory=list)
    """The capabilities the check declared it needs."""
    outside_profile: list[str] = field(default_factory=list)
    """Those of ``requires`` the run's profile lacks: the check skipped, outside the profile."""
    items: list[str] = field(default_factory=list)
    """The contract items the check exercises (``conformance.items.ITEMS``)."""


def _tally() -> dict[str, int]:
    return {"pass": 0, "fail": 0, "skip": 0, "error": 0}


@dataclass
class Report:
    implementation: str
    version: str
    capabilities: list[str]
    """What the implementation declared."""
    results: list[CheckResult] = field(default_factory=list)
    driver_error: str | None = None
    """Why the implementation could not be started or spoken to, if it could not."""
    profile: list[str] | None = None
    """The capabilities judged (None: all the declared ones)."""

    @property
    def judged(self) -> Profile:
        return Profile(frozenset(self.capabilities if self.profile is None else self.profile))

    def counts(self) -> dict[str, dict[str, int]]:
        """Outcomes per level, every check (a check outside the profile is a skip)."""
        out: dict[str, dict[str, int]] = {}
        for result in self.results:
            out.setdefault(result.level, _tally())[result.outcome] += 1
        return out

    def counts_in_profile(self) -> dict[str, dict[str, int]]:
        """Outcomes per level of the checks inside the profile."""
        out: dict[str, dict[str, int]] = {}
        for result in self.results:
            if not result.outside_profile:
                out.setdefault(result.level, _tally())[result.outcome] += 1
        return out

    def outside_profile(self) -> dict[str, int]:
        """Per capability the profile lacks, how many checks need it (a check may count twice)."""
        out: dict[str, int] = {}
        for result in self.results:
            for capability in result.outside_profile:
                out[capability] = out.get(capability, 0) + 1
        return dict(sorted(out.items()))

    def by_capability(self) -> dict[str, dict[str, int]]:
        """Outcomes of the checks needing each capability (``calls-core``: those needing none)."""
        out: dict[str, dict[str, int]] = {}
        for result in self.results:
            for capability in result.requires or [CORE]:
                out.setdefault(capability, _tally())[result.outcome] += 1
        return dict(sorted(out.items(), key=lambda item: (item[0] != CORE, item[0])))

    def _judges(self, capability: str) -> bool:
        return capability == CORE or capability in self.judged.capabilities

    @property
    def conformant(self) -> bool:
        """Every MUST check of the profile passed (and there was one); SHOULD and REFERENCE never count."""
        must = [r for r in self.results if r.level == "MUST" and not r.outside_profile]
        return bool(must) and all(r.outcome == "pass" for r in must)

    def must_items(self) -> dict[str, list[str]]:
        """Contract items by whether a MUST check of this run exercised them.

        ``exercised``: a MUST check naming the item ran (pass or fail) in the profile;
        ``unexercised``: none did — no MUST check exists for it, or all of them were outside
        the profile or not selected. So a conformant verdict shows what it does not cover.
        """
        ran = {
            item
            for r in self.results
            if r.level == "MUST" and not r.outside_profile and r.outcome in ("pass", "fail")
            for item in r.items
        }
        return {
            "exercised": [item for item in ITEMS if item in ran],
            "unexercised": [item for item in ITEMS if item not in ran],
        }

    def must_items_line(self) -> str:
        """``MUST items exercised: 15 of 22 (§A.2, …); not exercised by a MUST check: §A.1, …``."""
        items = self.must_items()
        exercised, unexercised = items["exercised"], items["unexercised"]

        def listed(names: list[str]) -> str:
            return ", ".join(f"§{n}" for n in names) or "none"

        return (
            f"MUST items exercised: {len(exercised)} of {len(ITEMS)} ({listed(exercised)}); "
            f"not exercised by a MUST check: {listed(unexercised)}"
        )

    def verdict(self) -> str:
        counts = self.counts_in_profile()

        def summary(c: dict[str, int]) -> str:
            return ", ".join(f"{n} {k}" for k, n in c.items() if n) or "none"

        outside = [r for r in self.results if r.outside_profile]
        needing = ", ".join(self.outside_profile())
        levels = "; ".join(f"{level}: {summary(counts.get(level, {}))}" for level in LEVELS)
        word = "CONFORMANT" if self.conformant else "NOT CONFORMANT"
        verdict = (
            f"{word} for profile {self.judged.name} — {self.implementation} {self.version} ({levels}; "
            f"outside the profile: {f'{len(outside)} checks needing {needing}' if outside else 'none'})"
        )
        return verdict if self.driver_error is None else f"{verdict} — driver error: {self.driver_error}"

    def write(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        data = {
            "implementation": self.implementation,
            "version": self.version,
            "capabilities": self.capabilities,
            "profile": self.judged.name,
            "profile_capabilities": sorted(self.judged.capabilities),
            "conformant": self.conformant,
            "verdict": self.verdict(),
            "driver_error": self.driver_error,
            "counts": self.counts(),
            "counts_in_profile": self.counts_in_profile(),
            "outside_profile": self.outside_profile(),
            "by_capability": self.by_capability(),
            "must_items": self.must_items(),
            "checks": [asdict(r) for r in self.results],
        }
        (folder / "conformance.json").write_text(json.dumps(data, indent=2, default=str))
        (folder / "conformance.md").write_text(self.markdown())

    def markdown(self) -> str:
        lines = [
            f"# Conformance report — {self.implementation} {self.version}",
            "",
            f"**{self.verdict()}**",
            "",
            f"{self.must_items_line()} (docs/conformance-items.md lists every item's checks).",
            "",
            f"Profile: {self.judged.name}. Declared: {', '.join(sorted(self.capabilities)) or 'none'}.",
            "",
            "MUST: documented and done by the published SDK, required. SHOULD: done by the published SDK,"
            " undocumented. REFERENCE: the reference's own choice, never counted. Outside the profile:"
            " needs a capability the profile lacks, not run.",
            "",
            *(
                [f"**The implementation could not be driven**: {self.driver_error}", ""]
                if self.driver_error
                else []
            ),
            "| capability | pass | fail | skip | error |",
            "|---|---|---|---|---|",
            *(
                f"| {capability}{'' if self._judges(capability) else ' (outside the profile)'}"
                f" | {c['pass']} | {c['fail']} | {c['skip']} | {c['error']} |"
                for capability, c in self.by_capability().items()
            ),
            "",
            "| check | section | level | outcome | reason |",
            "|---|---|---|---|---|",
        ]
        for r in sorted(self.results, key=lambda r: (natural_key(r.section), natural_key(r.id))):
            reason = r.reason.splitlines()[-1][:160].replace("|", "\\|") if r.reason else ""
            outcome = f"{r.outcome} (outside the profile)" if r.outside_profile else r.outcome
            lines.append(f"| `{r.id}` | §{r.section} | {r.level} | {outcome} | {reason} |")
        failures = [r for r in self.results if r.outcome in ("fail", "error")]
        for r in sorted(failures, key=lambda r: (natural_key(r.section), natural_key(r.id))):
            lines += [
                "",
                f"## {r.outcome.upper()}: `{r.id}` (§{r.section}, {r.level})",
                "",
                "```",
                r.reason.strip(),
                "```",
            ]
            if r.events:
                lines += ["", "Observed events (client / listener / callback):", ""]
                lines += [f"- {e['client']} / {e['listener']} / {e['callback']}" for e in r.events[:60]]
            if r.transcript:
                lines += ["", "Driver transcript (last lines):", "", "```", *r.transcript[-30:], "```"]
        return "\n".join(lines) + "\n"
