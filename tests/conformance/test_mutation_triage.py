"""Every surviving mutant of the published mutation run is triaged, with a reason, and a
survivor said to be killed by a new check names a check that exists (docs/mutation.md)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from conformance.items import collect

TRIAGE = Path(__file__).parents[2] / "docs" / "mutation-survivors.toml"
VERDICTS = {"killed-by-new-check", "equivalent", "out-of-contract", "open"}


def test_every_survivor_has_a_verdict_and_a_reason() -> None:
    survivors = tomllib.loads(TRIAGE.read_text())["survivors"]
    assert survivors, "the run's survivors are listed"
    checks = {c.id for c in collect()}
    for key, entry in survivors.items():
        assert entry["verdict"] in VERDICTS, key
        assert entry["reason"].strip(), key
        if entry["verdict"] == "killed-by-new-check":
            assert entry["check"] in checks, (key, entry["check"])
