"""The item → checks table is made from the checks' metadata and cannot drift; every class
of weakness has checks; the verdict names the MUST items a run exercised."""

from __future__ import annotations

from conformance.items import DOC, ITEMS, WEAKNESSES, collect, must_items, table
from conformance.report import CheckResult, Report


def test_the_committed_table_is_what_the_checks_say() -> None:
    assert DOC.read_text() == table(), "run: python -m conformance.items --write"


def test_every_class_of_weakness_has_checks() -> None:
    checks = collect()
    for number in WEAKNESSES:
        assert any(number in c.closes for c in checks), f"class {number} has no check"


def test_every_check_names_known_items_and_ids_are_unique() -> None:
    checks = collect()
    assert len({c.id for c in checks}) == len(checks)
    assert all(c.items and set(c.items) <= ITEMS.keys() for c in checks)


def test_must_items_counts_only_must_checks() -> None:
    counts = must_items([("MUST", ["C", "G"]), ("SHOULD", ["E"]), ("MUST", ["C"])])
    assert (counts["C"], counts["G"], counts["E"]) == (2, 1, 0)


def test_the_verdict_names_the_must_items_a_run_exercised() -> None:
    results = [
        CheckResult("a", "C", "MUST", "pass", items=["C"]),
        CheckResult("b", "G", "MUST", "fail", items=["G", "H.3"]),
        CheckResult("c", "E", "MUST", "skip", items=["E"], outside_profile=["virtualClock"]),
        CheckResult("d", "I", "SHOULD", "pass", items=["I"]),
    ]
    report = Report("x", "1", [], results)
    assert report.must_items()["exercised"] == ["C", "G", "H.3"]
    assert "E" in report.must_items()["unexercised"]
    assert "I" in report.must_items()["unexercised"]
    line = report.must_items_line()
    assert line.startswith(
        f"MUST items exercised: 3 of {len(ITEMS)} (§C, §G, §H.3); not exercised by a MUST check: §A.1"
    )
    assert "MUST items exercised: 3 of" in report.markdown()
