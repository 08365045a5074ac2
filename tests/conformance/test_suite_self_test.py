"""The conformance suite proves its power: it passes the reference by both drivers, fails
every known-bad implementation at the check named for it, and never passes a shim that
crashes, hangs or speaks something else. Its verdict is per profile: checks needing a
capability outside it skip, whatever their level; REFERENCE checks never sway it; a check
calling a capability it did not declare is an error, even against the reference.

Each run is a separate pytest process (faults are process-wide patches); the suite's own
JSON report is what these tests read.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance.api import Client, LoopThread, Sut, UndeclaredCapabilityError
from conformance.driver import CAPABILITIES, CAPABILITY_METHODS, Capabilities, EventLog, capability_of
from conformance.known_bad import FAULTS
from conformance.report import CheckResult, Report

CHECKS = Path(__file__).parents[2] / "conformance" / "checks"
SHIM = f"{sys.executable} -m conformance.shim"
FULL_PROFILE = (
    "calls-core + backendClock + callView + devices + groups + mediaEvidence + ringing + virtualClock"
)


def run_suite(
    tmp_path: Path, *args: str, selection: str = "", target: Path | None = None, timeout: float = 600
) -> dict[str, Any]:
    """Run the checks (or the checks in ``target``) in a fresh process; the report it wrote."""
    report = tmp_path / "report"
    target = target or (CHECKS / selection if selection else CHECKS)
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(target),
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
    assert reference["verdict"].startswith(f"CONFORMANT for profile {FULL_PROFILE} — ")
    assert reference["verdict"].endswith("; outside the profile: none)")
    assert reference["profile"] == FULL_PROFILE
    assert reference["outside_profile"] == {}
    assert {c["level"] for c in reference["checks"]} == {"MUST", "SHOULD", "REFERENCE"}
    assert set(reference["by_capability"]) == {"calls-core", *CAPABILITIES}


@pytest.mark.parametrize("declared", ["", *sorted(CAPABILITIES)], ids=["calls-core", *sorted(CAPABILITIES)])
def test_the_reference_is_conformant_in_every_profile(declared: str, tmp_path: Path) -> None:
    """Declaring only ``declared``: every check inside the profile passes, the rest skip."""
    report = run_suite(tmp_path, "--sut-capabilities", declared)
    assert report["conformant"] is True, report["verdict"]
    inside = {c["outcome"] for c in report["checks"] if not c["outside_profile"]}
    assert inside == {"pass"}
    assert {c["outcome"] for c in report["checks"] if c["outside_profile"]} <= {"skip"}
    assert report["profile_capabilities"] == ([declared] if declared else [])


def test_the_wire_shim_gets_the_same_outcomes(reference: dict[str, Any], tmp_path: Path) -> None:
    wire = run_suite(tmp_path, "--sut-cmd", SHIM)
    assert outcomes(wire) == outcomes(reference)


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_every_known_bad_implementation_is_caught(fault: str, tmp_path: Path) -> None:
    # The check that must catch it, alone: with the fault, others in its file may wait out
    # their timeouts (one file took 46 s where the check takes 3).
    spec = FAULTS[fault]
    report = run_suite(tmp_path, "--sut-fault", fault, selection=spec.node)
    assert spec.caught_by in outcomes(report), f"{fault}: {spec.node} did not run {spec.caught_by}"
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


@pytest.mark.parametrize(
    ("option", "declared"),
    [("--sut-capabilities", ["callView"]), ("--profile", sorted(CAPABILITIES))],
    ids=["declaring-less", "claiming-less"],
)
def test_a_narrower_profile_is_judged_with_the_rest_outside_it(
    option: str, declared: list[str], tmp_path: Path
) -> None:
    report = run_suite(tmp_path, option, "calls-core + callView", selection="end_flows")
    assert report["verdict"].startswith("CONFORMANT for profile calls-core + callView — ")
    assert "outside the profile: 2 checks needing ringing)" in report["verdict"]
    assert report["conformant"] is True
    assert (report["profile"], report["profile_capabilities"]) == ("calls-core + callView", ["callView"])
    assert report["capabilities"] == declared
    assert report["outside_profile"] == {"ringing": 2}
    outside = [c for c in report["checks"] if c["outside_profile"]]
    assert {c["level"] for c in outside} == {"MUST"}, "a MUST check skips outside the profile"
    assert all(c["outcome"] == "skip" and "needs 'ringing'" in c["reason"] for c in outside)
    assert {c["outcome"] for c in report["checks"] if not c["outside_profile"]} == {"pass"}
    assert report["by_capability"]["ringing"]["skip"] == 2
    assert report["exit"] == 0
    markdown = (tmp_path / "report" / "conformance.md").read_text()
    assert "| MUST | skip (outside the profile) | " in markdown


def test_over_the_wire_the_profile_is_what_the_shim_declares(tmp_path: Path) -> None:
    report = run_suite(tmp_path, "--sut-cmd", f"{SHIM} --capabilities ringing", selection="end_flows")
    assert report["verdict"].startswith("CONFORMANT for profile calls-core + ringing — ")
    assert report["outside_profile"] == {"callView": 2}
    assert {c["outcome"] for c in report["checks"]} == {"pass", "skip"}


def test_a_profile_claiming_an_undeclared_capability_is_refused(tmp_path: Path) -> None:
    report = run_suite(
        tmp_path, "--sut-capabilities", "callView", "--profile", "callView,ringing", selection="end_flows"
    )
    assert "--profile claims ringing, which callsim reference does not declare" in report["driver_error"]
    assert set(outcomes(report).values()) == {"error"}
    assert report["conformant"] is False


CHECK_FILE = """
    import contextlib

    import pytest

    from conformance.check import MUST, REFERENCE, SHOULD, check


    @check("G", MUST)
    def test_core_passes(sut):
        sut.client("alice").token("s1")


    @check("K8", REFERENCE)
    def test_a_reference_choice_fails(sut):
        raise AssertionError("the published SDK does otherwise, by design")


    @check("F", MUST, "ringing")
    def test_needs_ringing(sut):
        sut.client("alice").chat("getActiveCall")


    @check("C", SHOULD)
    def test_presses_without_declaring(sut):
        alice = sut.client("alice")
        alice.join("s1")
        alice.press("endCall")


    @check("C", MUST)
    def test_swallows_its_bug(sut):
        with contextlib.suppress(Exception):
            sut.advance(1)


    @check("C", MUST, optional=["devices"])
    def test_uses_an_optional_capability_without_asking(sut):
        alice = sut.client("alice")
        alice.join("s1")
        alice.harness("plugDevice", kind="audioinput", label="USB")


    @check("C", MUST)
    def test_skips_for_another_reason(sut):
        pytest.skip("not today")
"""


@pytest.fixture
def check_file(tmp_path: Path) -> Path:
    folder = tmp_path / "checks"
    folder.mkdir()
    path = folder / "test_tiny.py"
    path.write_text(textwrap.dedent(CHECK_FILE))
    return path


def test_reference_failures_never_change_the_verdict(check_file: Path, tmp_path: Path) -> None:
    report = run_suite(
        tmp_path,
        "--sut-capabilities", "virtualClock,devices",
        "-k", "core_passes or reference_choice or needs_ringing",
        target=check_file,
    )  # fmt: skip
    assert outcomes(report) == {
        "tiny.core-passes": "pass",
        "tiny.a-reference-choice-fails": "fail",
        "tiny.needs-ringing": "skip",
    }
    assert report["conformant"] is True
    assert report["verdict"].startswith("CONFORMANT for profile calls-core + devices + virtualClock — ")
    assert "REFERENCE: 1 fail" in report["verdict"]
    assert report["outside_profile"] == {"ringing": 1}


def test_a_check_using_an_undeclared_capability_is_an_error_naming_its_bug(
    check_file: Path, tmp_path: Path
) -> None:
    """Against the reference, which declares everything: the check's declaration is what counts."""
    report = run_suite(tmp_path, "-k", "presses or swallows or optional or another_reason", target=check_file)
    reasons = {c["id"]: (c["outcome"], c["reason"]) for c in report["checks"]}
    assert reasons["tiny.presses-without-declaring"] == (
        "error",
        "check bug: tiny.presses-without-declaring uses Harness.press without requires('callView')",
    )
    assert reasons["tiny.swallows-its-bug"] == (
        "error",
        "check bug: tiny.swallows-its-bug uses Harness.advanceClock without requires('virtualClock')",
    )
    assert reasons["tiny.uses-an-optional-capability-without-asking"] == (
        "error",
        "check bug: tiny.uses-an-optional-capability-without-asking uses Harness.plugDevice"
        " of its optional capability 'devices' without sut.has('devices') saying yes",
    )
    assert reasons["tiny.skips-for-another-reason"][0] == "error"
    assert "a MUST check may skip only outside the profile" in reasons["tiny.skips-for-another-reason"][1]
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


# --- the pieces, without an implementation -------------------------------------------------------


class RecordingDriver:
    """A driver that answers every call with None and remembers it."""

    def __init__(self) -> None:
        self.log = EventLog()
        self.calls: list[str] = []

    @property
    def transcript(self) -> list[str]:
        return []

    async def start(self) -> Capabilities:
        raise NotImplementedError

    async def call(self, method: str, params: dict[str, Any]) -> Any:
        self.calls.append(method)

    async def close(self) -> None:
        pass

    @property
    def alive(self) -> bool:
        return True


@pytest.fixture(scope="module")
def loop() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.close()


def a_sut(loop: LoopThread, profile: set[str], **declared: Any) -> tuple[Sut, RecordingDriver]:
    driver = RecordingDriver()
    hello = Capabilities("fake", "1", frozenset(profile))
    return Sut(driver, loop, hello, check="x.y", **declared), driver


def test_every_capability_has_its_methods_in_one_table() -> None:
    assert CAPABILITY_METHODS.keys() == CAPABILITIES.keys()
    assert capability_of("Harness.advanceClock") == "virtualClock"
    assert capability_of("Harness.press") == capability_of("Harness.view") == "callView"
    assert capability_of("Harness.waitMedia") == "mediaEvidence"
    assert capability_of("Harness.unplugDevice") == "devices"
    assert capability_of("CometChat.getCallParticipantCount") == "ringing"
    assert capability_of("CometChatCalls.startSession") is None
    assert capability_of("Harness.waitJoined") is None


@pytest.mark.parametrize(
    ("method", "capability"),
    [
        ("Harness.press", "callView"),
        ("CometChat.getActiveCall", "ringing"),
        ("Harness.media", "mediaEvidence"),
    ],
)
def test_sut_refuses_an_undeclared_capability_before_the_driver_sees_it(
    loop: LoopThread, method: str, capability: str
) -> None:
    sut, driver = a_sut(loop, set(CAPABILITIES))
    with pytest.raises(UndeclaredCapabilityError) as caught:
        sut.call(method, client="alice")
    assert str(caught.value) == f"x.y uses {method} without requires({capability!r})"
    assert sut.violations == [str(caught.value)]
    assert driver.calls == []


def test_sut_lets_declared_and_core_methods_through(loop: LoopThread) -> None:
    sut, driver = a_sut(loop, {"callView", "virtualClock"}, requires=["callView"], optional=["virtualClock"])
    sut.call("CometChatCalls.startSession", client="alice")
    sut.call("Harness.press", client="alice", button="endCall")
    assert sut.has("virtualClock")
    sut.advance(1)
    assert driver.calls == ["CometChatCalls.startSession", "Harness.press", "Harness.advanceClock"]
    assert sut.violations == []


def test_an_optional_capability_is_used_only_after_has_said_yes(loop: LoopThread) -> None:
    sut, driver = a_sut(loop, {"devices"}, optional=["virtualClock", "devices"])
    with pytest.raises(UndeclaredCapabilityError, match=r"without sut.has\('devices'\) saying yes"):
        sut.call("Harness.plugDevice", client="alice", kind="audioinput", label="USB")
    assert not sut.has("virtualClock")
    with pytest.raises(UndeclaredCapabilityError, match=r"without sut.has\('virtualClock'\) saying yes"):
        sut.advance(1)
    with pytest.raises(UndeclaredCapabilityError, match="asks for 'mediaEvidence' without declaring it"):
        sut.has("mediaEvidence")
    assert driver.calls == []


def test_a_participant_hearing_of_itself_is_left_to_k9s_own_check(loop: LoopThread) -> None:
    """K9 is REFERENCE: other checks see neither the self onUserJoined nor its list update."""
    sut, driver = a_sut(loop, set())
    alice = Client(sut, "alice", {})
    for listener, callback, uid in [
        ("settings", "onUserJoined", "bob"),
        ("settings", "onUserListUpdated", None),
        ("a", "onUserJoined", "alice"),
        ("settings", "onUserJoined", "alice"),
        ("a", "onUserListUpdated", None),
        ("settings", "onUserListUpdated", None),
        ("settings", "onUserListUpdated", None),
    ]:
        payload = {"uid": uid} if uid else [{"uid": "alice"}, {"uid": "bob"}]
        driver.log.add("alice", listener, callback, payload)
    assert [e.seq for e in alice.events(None)] == [0, 1, 6]
    assert len(alice.events(None, everything=True)) == 7
    assert alice.members() == {"alice", "bob"}


def test_the_verdict_counts_in_profile_must_checks_only() -> None:
    results = [
        CheckResult("a", "C", "MUST", "pass", requires=[]),
        CheckResult("b", "F", "MUST", "skip", requires=["ringing"], outside_profile=["ringing"]),
        CheckResult("c", "D", "REFERENCE", "fail"),
        CheckResult("d", "D", "SHOULD", "fail", requires=["callView"]),
    ]
    report = Report("x", "1", ["callView"], results)
    assert report.conformant
    assert report.verdict() == (
        "CONFORMANT for profile calls-core + callView — x 1 (MUST: 1 pass; SHOULD: 1 fail; "
        "REFERENCE: 1 fail; outside the profile: 1 checks needing ringing)"
    )
    assert report.by_capability() == {
        "calls-core": {"pass": 1, "fail": 1, "skip": 0, "error": 0},
        "callView": {"pass": 0, "fail": 1, "skip": 0, "error": 0},
        "ringing": {"pass": 0, "fail": 0, "skip": 1, "error": 0},
    }
    results[0].outcome = "error"
    assert report.verdict().startswith("NOT CONFORMANT for profile calls-core + callView")


def test_the_suite_draws_derandomised_unless_asked_and_prints_the_seed() -> None:
    """A verdict must not depend on the run: the model check's draws are derandomised, a fresh
    seed only with ``--model-random`` (printed, to replay), and the header says which."""

    def header(*args: str) -> str:
        completed = subprocess.run(
            [sys.executable, "-m", "pytest", str(CHECKS), "--collect-only", "-p", "no:cacheprovider", *args],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        return next(line for line in completed.stdout.splitlines() if line.startswith("hypothesis seed:"))

    assert header().startswith("hypothesis seed: derandomised (each check's own, the same every run")
    fresh = header("--model-random")
    assert fresh.endswith(")") and "(--model-random; replay with --hypothesis-seed=" in fresh
    assert (
        header("--hypothesis-seed=42")
        == "hypothesis seed: 42 (--hypothesis-seed; replay with --hypothesis-seed=42)"
    )
