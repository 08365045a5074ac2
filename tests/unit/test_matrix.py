"""The published-SDK matrix: every disagreement shown with its verdict, none unexplained."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from conformance.matrix import VERDICTS, main, render

ROOT = Path(__file__).resolve().parents[2]


def _report() -> dict[str, object]:
    def check(
        cid: str, level: str, outcome: str, reason: str = "", outside: list[str] | None = None
    ) -> dict[str, object]:
        return {"id": cid, "section": "B", "level": level, "outcome": outcome, "reason": reason,
                "requires": outside or [], "outside_profile": outside or []}  # fmt: skip

    return {
        "implementation": "sdk", "version": "1", "verdict": "CONFORMANT for profile calls-core — sdk 1",
        "counts": {"MUST": {"pass": 1, "fail": 0, "error": 0, "skip": 1},
                   "REFERENCE": {"pass": 0, "fail": 1, "error": 0, "skip": 0},
                   "SHOULD": {"pass": 0, "fail": 1, "error": 0, "skip": 0}},
        "checks": [
            check("a.passes", "MUST", "pass"),
            check("a.needs-view", "MUST", "skip", outside=["callView"]),
            check("b.k41", "REFERENCE", "fail", "    assert x\nE   AssertionError: shared | defaults\n"),
            check("b.order", "SHOULD", "fail", "E   assert ['b', 'a'] == ['a', 'b']"),
        ],
    }  # fmt: skip


def test_each_disagreement_has_its_row_with_the_verdict_and_what_was_seen() -> None:
    verdicts = {"b.k41": {"verdict": "reference-departs", "evidence": "module-level defaults"}}
    text, missing = render(_report(), verdicts)
    row = next(line for line in text.splitlines() if line.startswith("| `b.k41`"))
    assert "reference-departs" in row and "module-level defaults" in row
    assert "AssertionError: shared \\| defaults" in row  # a pipe in the evidence cannot split the table
    assert missing == ["b.order"]
    assert "**no verdict yet**" in next(line for line in text.splitlines() if line.startswith("| `b.order`"))
    assert "needing **callView** (1): `a.needs-view`" in text
    assert "- MUST (1): `a.passes`" in text


def test_strict_fails_on_an_unexplained_disagreement(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "conformance.json"
    report.write_text(json.dumps(_report()))
    verdicts = tmp_path / "verdicts.toml"
    verdicts.write_text('[checks."b.k41"]\nverdict = "reference-departs"\nevidence = "x"\n')
    out = tmp_path / "matrix.md"
    assert main([str(report), "--verdicts", str(verdicts), "-o", str(out)]) == 0
    assert main([str(report), "--verdicts", str(verdicts), "-o", str(out), "--strict"]) == 1
    assert "no verdict for the disagreement b.order" in capsys.readouterr().err
    verdicts.write_text('[checks."b.k41"]\nverdict = "maybe"\n')
    assert main([str(report), "--verdicts", str(verdicts)]) == 2
    verdicts.write_text('[checks."b.k41"]\nverdict = "reference-departs"\nevidence = "x"\n')
    assert main([str(tmp_path / "missing.json"), "--verdicts", str(verdicts), "--strict"]) == 2
    assert "no report at" in capsys.readouterr().err


def test_the_kept_verdicts_use_known_words_and_give_evidence() -> None:
    kept = tomllib.loads((ROOT / "docs" / "published-sdk-verdicts.toml").read_text())["checks"]
    assert kept
    for check, entry in kept.items():
        assert entry["verdict"] in VERDICTS, check
        assert len(entry["evidence"]) > 40, check


def test_a_settled_change_keeps_its_evidence_and_an_unneeded_verdict_is_named() -> None:
    verdicts = {
        "a.passes": {"verdict": "check-wrong", "evidence": "the check asked for join order"},
        "b.k41": {"verdict": "reference-departs", "evidence": "module-level defaults"},
        "b.order": {"verdict": "harness", "evidence": "the shim waited too little"},
        "c.gone": {"verdict": "reference-departs", "evidence": "a check that did not run"},
    }
    text, missing = render(_report(), verdicts)
    assert missing == []
    changed = text.split("## What running the SDK changed")[1].split("\n## ")[0]
    assert "| `a.passes` | check-wrong | the check asked for join order |" in changed
    assert "b.order" not in changed  # still failing: it is a disagreement, not a change
    assert "`c.gone`" in text.split("## Verdicts not needed in this run")[1]


def test_every_kept_verdict_names_a_check_that_exists() -> None:
    """A renamed check must take its verdict along (check IDs as ``plugin.check_id`` makes them)."""
    checks = ROOT / "conformance" / "checks"
    known = {
        ".".join([*path.relative_to(checks).with_suffix("").parts, name])
        .replace("test_", "")
        .replace("_", "-")
        for path in checks.rglob("test_*.py")
        for name in re.findall(r"^def (test_\w+)\(", path.read_text(), re.MULTILINE)
    }
    kept = tomllib.loads((ROOT / "docs" / "published-sdk-verdicts.toml").read_text())["checks"]
    assert sorted(check.split("[")[0] for check in kept if check.split("[")[0] not in known) == []
