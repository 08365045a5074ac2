"""The conformance suite proves its power: it passes the reference by both drivers, fails
every known-bad implementation at the check named for it, and never passes a shim that
crashes, hangs or speaks something else.

Each run is a separate pytest process (faults are process-wide patches); the suite's own
JSON report is what these tests read.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conformance.known_bad import FAULTS

CHECKS = Path(__file__).parents[2] / "conformance" / "checks"
SHIM = f"{sys.executable} -m conformance.shim"


def run_suite(tmp_path: Path, *args: str, selection: str = "", timeout: float = 600) -> dict[str, Any]:
    """Run the checks in a fresh process; the report it wrote."""
    report = tmp_path / "report"
    target = str(CHECKS / selection) if selection else str(CHECKS)
    command = [
        sys.executable,
        "-m",
        "pytest",
        target,
        "-q",
        "-p",
        "no:cacheprovider",
        "--conformance-report",
        str(report),
        *args,
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    path = report / "conformance.json"
    assert path.exists(), f"no report; pytest said:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
    data: dict[str, Any] = json.loads(path.read_text())
    data["exit"] = completed.returncode
    data["junit"] = (report / "junit.xml").exists()
    return data


def outcomes(report: dict[str, Any]) -> dict[str, str]:
    return {c["id"]: c["outcome"] for c in report["checks"]}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_suite(tmp_path_factory.mktemp("reference"))


def test_the_reference_is_conformant_with_no_failure_and_no_error(reference: dict[str, Any]) -> None:
    assert reference["conformant"] is True
    assert reference["exit"] == 0
    assert reference["junit"]
    assert set(outcomes(reference).values()) == {"pass"}
    assert len(reference["checks"]) >= 100
    assert reference["verdict"].startswith("CONFORMANT")


def test_the_wire_shim_gets_the_same_outcomes(reference: dict[str, Any], tmp_path: Path) -> None:
    wire = run_suite(tmp_path, "--sut-cmd", SHIM)
    assert outcomes(wire) == outcomes(reference)


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_every_known_bad_implementation_is_caught(fault: str, tmp_path: Path) -> None:
    spec = FAULTS[fault]
    report = run_suite(tmp_path, "--sut-fault", fault, selection=spec.selection)
    assert report["conformant"] is False or outcomes(report).get(spec.caught_by) != "pass"
    assert outcomes(report).get(spec.caught_by) in ("fail", "error"), (
        f"{fault}: expected {spec.caught_by} to catch it; failing: "
        f"{[c for c, o in outcomes(report).items() if o != 'pass']}"
    )
    assert report["exit"] != 0


def test_a_known_bad_implementation_is_caught_over_the_wire_too(tmp_path: Path) -> None:
    report = run_suite(
        tmp_path, "--sut-cmd", f"{SHIM} --fault mute-does-not-silence", selection="session/test_media.py"
    )
    assert outcomes(report)["session.media.mute-really-silences"] == "fail"


def test_a_must_check_never_skips_and_a_should_check_skips_with_its_reason(tmp_path: Path) -> None:
    report = run_suite(tmp_path, "--sut-cmd", f"{SHIM} --capabilities ringing", selection="idle")
    by_level = {(c["level"], c["outcome"]) for c in report["checks"]}
    assert ("MUST", "skip") not in by_level
    assert ("MUST", "error") in by_level
    skipped = [c for c in report["checks"] if c["outcome"] == "skip"]
    assert skipped
    assert all(c["level"] == "SHOULD" and "virtualClock" in c["reason"] for c in skipped)
    assert report["conformant"] is False


@pytest.mark.parametrize("misbehaviour", ["crash", "hang", "garbage"])
def test_a_misbehaving_shim_is_an_error_never_a_pass(misbehaviour: str, tmp_path: Path) -> None:
    report = run_suite(
        tmp_path,
        "--sut-timeout", "3",
        "--sut-cmd", f"{SHIM} --misbehave {misbehaviour}:CometChatCalls.generateToken",
        "-k", "generate_returns_a_token or tokens_differ",
        selection="token",
    )  # fmt: skip
    assert set(outcomes(report).values()) == {"error"}
    assert report["conformant"] is False


def test_the_markdown_report_shows_failures_with_their_histories(tmp_path: Path) -> None:
    run_suite(tmp_path, "--sut-fault", "leave-events-out-of-order", selection="session/test_join_leave.py")
    markdown = (tmp_path / "report" / "conformance.md").read_text()
    assert "NOT CONFORMANT" in markdown
    assert "| `session.join-leave.leave-order-at-the-others` | §C | MUST | fail |" in markdown
    assert "Observed events" in markdown


@pytest.mark.parametrize(
    ("command", "why"),
    [
        ("no-such-binary --flag", "cannot start 'no-such-binary --flag'"),
        (f"{sys.executable} -c \"print('hello, I am not JSON-RPC')\"", "not a protocol message"),
        (f"{sys.executable} -c 'import sys; sys.exit(3)'", "exited with code 3"),
    ],
    ids=["missing-program", "garbage-handshake", "exits-at-once"],
)
def test_a_shim_that_cannot_start_still_gets_a_report_and_junit(
    command: str, why: str, tmp_path: Path
) -> None:
    report = run_suite(tmp_path, "--sut-timeout", "5", "--sut-cmd", command, selection="token")
    assert report["exit"] == 1
    assert report["junit"]
    assert why in report["driver_error"]
    assert report["checks"], "every check is reported"
    assert set(outcomes(report).values()) == {"error"}
    assert all(why in c["reason"] for c in report["checks"])
    junit = (tmp_path / "report" / "junit.xml").read_text()
    assert "INTERNALERROR" not in junit
    assert junit.count("<error") == len(report["checks"])


def test_the_markdown_report_sorts_naturally() -> None:
    from conformance.report import CheckResult, Report

    report = Report(
        "x", "1", [], [CheckResult(f"c[{n}]", s, "MUST", "pass") for s in ("K10", "K2") for n in (10, 2, 1)]
    )
    rows = [line.split("`")[1] for line in report.markdown().splitlines() if line.startswith("| `")]
    assert rows == ["c[1]", "c[2]", "c[10]"] * 2
    sections = [
        line.split("|")[2].strip() for line in report.markdown().splitlines() if line.startswith("| `")
    ]
    assert sections == ["§K2"] * 3 + ["§K10"] * 3
