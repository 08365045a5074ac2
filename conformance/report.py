"""The conformance report, generated from the run (never kept by hand): JSON and Markdown.

JUnit XML comes from pytest's own writer, pointed into the same folder.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

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


@dataclass
class Report:
    implementation: str
    version: str
    capabilities: list[str]
    results: list[CheckResult] = field(default_factory=list)
    driver_error: str | None = None
    """Why the implementation could not be started or spoken to, if it could not."""

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for result in self.results:
            level = out.setdefault(result.level, {"pass": 0, "fail": 0, "skip": 0, "error": 0})
            level[result.outcome] += 1
        return out

    @property
    def conformant(self) -> bool:
        must = [r for r in self.results if r.level == "MUST"]
        return bool(must) and all(r.outcome == "pass" for r in must)

    def verdict(self) -> str:
        counts = self.counts()
        must, should = counts.get("MUST", {}), counts.get("SHOULD", {})

        def summary(c: dict[str, int]) -> str:
            return ", ".join(f"{n} {k}" for k, n in c.items() if n) or "none"

        word = "CONFORMANT" if self.conformant else "NOT CONFORMANT"
        verdict = (
            f"{word}: {self.implementation} {self.version} — MUST: {summary(must)}; SHOULD: {summary(should)}"
        )
        return verdict if self.driver_error is None else f"{verdict} — driver error: {self.driver_error}"

    def write(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        data = {
            "implementation": self.implementation,
            "version": self.version,
            "capabilities": self.capabilities,
            "conformant": self.conformant,
            "verdict": self.verdict(),
            "driver_error": self.driver_error,
            "counts": self.counts(),
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
            f"Capabilities: {', '.join(sorted(self.capabilities)) or 'none'}",
            "",
            *(
                [f"**The implementation could not be driven**: {self.driver_error}", ""]
                if self.driver_error
                else []
            ),
            "| check | section | level | outcome | reason |",
            "|---|---|---|---|---|",
        ]
        for r in sorted(self.results, key=lambda r: (natural_key(r.section), natural_key(r.id))):
            reason = r.reason.splitlines()[-1][:160].replace("|", "\\|") if r.reason else ""
            lines.append(f"| `{r.id}` | §{r.section} | {r.level} | {r.outcome} | {reason} |")
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
