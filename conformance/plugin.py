"""The conformance pytest plugin (entry point ``pytest11: callsim_conformance``).

Options (group "conformance"): ``--sut reference`` (the in-process reference, the
default) or ``--sut-cmd "PROGRAM ARGS"`` (any implementation speaking PROTOCOL.md on
stdio); ``--conformance-report DIR`` writes ``conformance.json``,
``conformance.md`` and ``junit.xml`` there. ``--profile "calls-core + callView"`` claims
a narrower profile than the implementation declares (the verdict is for that profile);
``--sut-capabilities virtualClock,callView`` makes the implementation declare only those
(as if its handshake said so: try how your profile will be judged with the reference, or
the self-test's narrow implementations).

Rules it enforces: the verdict is per profile (``calls-core`` plus the capabilities
declared, or claimed with ``--profile``). A check needing a capability outside the
profile skips, at any level, naming the capability; the report lists it as outside the
profile. A MUST check skipping for any other reason is an error. A check calling a
capability's method it did not declare with ``@check`` is an error naming the check's
bug, whatever the implementation declares. A crashed, hung or misbehaving driver is an
error, never a pass.
"""

from __future__ import annotations

import contextlib
import dataclasses
import secrets
import time
from collections.abc import Generator, Mapping
from pathlib import Path
from typing import Any

import hypothesis.core
import pytest

from conformance.api import LoopThread, Sut
from conformance.driver import Capabilities, Driver, DriverError
from conformance.drivers import ReferenceDriver, WireDriver
from conformance.profile import Profile, parse_capabilities
from conformance.report import CheckResult, Report
from conformance.shims import SHIMS, shim_command
from simulator.media import MEDIA_PATHS

__all__ = ["check_id"]

_STATE = pytest.StashKey["_State"]()
_OUTSIDE = pytest.StashKey[list[str]]()
"""The capabilities a check needs that the profile lacks (set when it is skipped for them)."""
_SUT = pytest.StashKey[Sut]()
CHECKS_DIR = Path(__file__).parent / "checks"


class _State:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.loop: LoopThread | None = None
        self.driver: Driver | None = None
        self.capabilities: Capabilities | None = None
        """The handshake (narrowed by ``--sut-capabilities``); its capabilities are the declared ones."""
        self.profile: Profile | None = None
        self.report: Report | None = None
        self.started: dict[str, float] = {}
        self.start_error: DriverError | None = None
        """Why the implementation could not start: every check is then an error with it."""

    def make_driver(self) -> Driver:
        command = self.config.getoption("sut_cmd")
        fault = self.config.getoption("sut_fault")
        sut = self.config.getoption("sut")
        if not command and sut != "reference":
            command = shim_command(sut)
        if command:
            return WireDriver(command, call_timeout=float(self.config.getoption("sut_timeout")))
        if fault:
            from conformance.known_bad import apply_fault  # noqa: PLC0415 - only for the self-test

            apply_fault(fault)
        return ReferenceDriver(self.config.getoption("sut_media"))

    def capabilities_option(self, name: str) -> frozenset[str] | None:
        text = self.config.getoption(name)
        return None if text is None else parse_capabilities(text)

    def handshake(self, hello: Capabilities) -> tuple[Capabilities, Profile]:
        """What the run treats as declared, and the profile it judges.

        A profile claiming a capability the implementation does not declare is refused:
        every check is then an error saying so.
        """
        mask = self.capabilities_option("sut_capabilities")
        if mask is not None:
            hello = dataclasses.replace(hello, capabilities=hello.capabilities & mask)
        claimed = self.capabilities_option("profile")
        if claimed is None:
            return hello, Profile(hello.capabilities)
        if undeclared := sorted(claimed - hello.capabilities):
            raise DriverError(
                f"--profile claims {', '.join(undeclared)}, which {hello.implementation} does not declare"
            )
        return hello, Profile(claimed)

    def ensure(self) -> tuple[Driver, LoopThread, Capabilities]:
        """The running driver, started (or restarted after a crash) on demand.

        An implementation that cannot start or answer the handshake is not retried per
        check (a hung one would cost the start timeout every time): the report is made
        all the same, with every check an error carrying the driver's reason.
        """
        if self.start_error is not None:
            raise self.start_error
        if self.loop is None:
            self.loop = LoopThread()
        if self.driver is None or not self.driver.alive:
            if self.driver is not None:
                self.loop.run(self.driver.close(), 30)
            self.driver = self.make_driver()
            try:
                self.capabilities, self.profile = self.handshake(self.loop.run(self.driver.start(), 120))
            except DriverError as exc:
                self.start_error = exc
                if self.report is None:
                    command = self.config.getoption("sut_cmd") or self.config.getoption("sut")
                    self.report = Report(str(command), "?", [], driver_error=str(exc))
                raise
            if self.report is None:
                self.report = Report(
                    self.capabilities.implementation,
                    self.capabilities.version,
                    sorted(self.capabilities.capabilities),
                    profile=sorted(self.profile.capabilities),
                )
        assert self.capabilities is not None
        assert self.profile is not None
        return self.driver, self.loop, self.capabilities

    def judged(self) -> Capabilities:
        """The handshake with the profile's capabilities: what a check may count on."""
        _, _, capabilities = self.ensure()
        assert self.profile is not None
        return dataclasses.replace(capabilities, capabilities=self.profile.capabilities)

    def close(self) -> None:
        if self.loop is not None:
            if self.driver is not None:
                with contextlib.suppress(DriverError):
                    self.loop.run(self.driver.close(), 30)
            self.loop.close()
            self.loop = None


def check_id(item: pytest.Item) -> str:
    """A stable ID from the check's path.

    ``token/test_generate.py::test_is_a_jwt`` → ``token.generate.is-a-jwt``.
    """
    path = Path(str(item.path))
    try:
        parts = list(path.relative_to(CHECKS_DIR).with_suffix("").parts)
    except ValueError:
        parts = [path.stem]
    parts = [p.removeprefix("test_") for p in parts]
    name = item.name.removeprefix("test_")
    return ".".join([*parts, name]).replace("_", "-")


def _is_check(item: pytest.Item) -> bool:
    return item.get_closest_marker("conformance") is not None


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "CometChat Calls call-session conformance")
    group.addoption(
        "--sut",
        default="reference",
        choices=["reference", *SHIMS],
        help="'reference': the in-process reference stack (default); "
        + "; ".join(f"'{name}': {what}" for name, what in SHIMS.items()),
    )
    group.addoption("--sut-cmd", default=None, metavar="CMD", help="a program speaking PROTOCOL.md on stdio")
    group.addoption(
        "--sut-fault", default=None, metavar="NAME", help="the reference with a known fault (self-test)"
    )
    group.addoption(
        "--sut-media",
        default="full",
        choices=MEDIA_PATHS,
        help="the in-process reference's media path (full: decoded; lean: the load path)",
    )
    group.addoption("--conformance-report", default=None, metavar="DIR", help="write the report folder here")
    group.addoption(
        "--sut-timeout", default=60.0, type=float, metavar="S", help="seconds a wire request may take"
    )
    group.addoption(
        "--model-random",
        action="store_true",
        help="draw the model check's runs from a fresh seed (printed, to replay them with "
        "--hypothesis-seed); by default every run draws the same ones",
    )
    group.addoption(
        "--model-examples",
        default=25,
        type=int,
        metavar="N",
        help="runs of the model check's state machine (25; fewer for a slow implementation)",
    )
    group.addoption(
        "--profile",
        default=None,
        metavar="CAPS",
        help="judge a narrower profile than the declared one: 'calls-core + callView' or 'callView,devices'",
    )
    group.addoption(
        "--sut-capabilities",
        default=None,
        metavar="CAPS",
        help="let the implementation declare only these capabilities (comma-separated; '' for none)",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "conformance(section, level, optional): a conformance check of a contract section"
        " (level MUST, SHOULD or REFERENCE; optional: capabilities used only if the profile has them)",
    )
    config.addinivalue_line("markers", "requires(capability): the check needs a declared capability")
    for option in ("profile", "sut_capabilities"):
        try:
            parse_capabilities(config.getoption(option, None) or "")
        except ValueError as exc:
            raise pytest.UsageError(f"--{option.replace('_', '-')}: {exc}") from None
    config.stash[_STATE] = _State(config)
    config.stash[_SEED] = _choose_seed(config)
    folder = config.getoption("conformance_report", None)
    if folder and not getattr(config.option, "xmlpath", None):
        config.option.xmlpath = str(Path(folder) / "junit.xml")


_SEED = pytest.StashKey[tuple[int | None, str]]()


def _choose_seed(config: pytest.Config) -> tuple[int | None, str]:
    """Where the suite's hypothesis draws start, and who chose it. A conformance verdict must
    not depend on the run (a fault killed on one run and not the next), so by default they are
    derandomised (None: each check's own fixed seed, the same every run); ``--model-random``
    asks for a fresh seed, printed so that a run can be replayed with ``--hypothesis-seed``."""
    given = config.getoption("hypothesis_seed", None)
    if given is not None:
        return int(given), "--hypothesis-seed"
    if not config.getoption("model_random", False):
        return None, "derandomised"
    seed = secrets.randbits(32)
    # What hypothesis's own plugin does with --hypothesis-seed (it only does it when given).
    hypothesis.core.global_force_seed = seed  # type: ignore[assignment]  # typed None, set by its plugin too
    return seed, "--model-random"


def hypothesis_seed(config: pytest.Config) -> int | None:
    """The seed the suite's draws start from; None when derandomised (the default)."""
    return config.stash[_SEED][0]


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    state = config.stash[_STATE]
    if not any(str(a).startswith(str(CHECKS_DIR)) or "checks" in str(a) for a in config.args):
        return None
    try:
        _, _, capabilities = state.ensure()
    except DriverError as exc:
        return [f"conformance: the implementation did not start: {exc}"]
    seed, chosen_by = config.stash[_SEED]
    assert state.profile is not None
    return [
        f"conformance: {capabilities.implementation} {capabilities.version}",
        f"wire protocol: {capabilities.protocol}",
        f"capabilities: {', '.join(sorted(capabilities.capabilities)) or 'none'}",
        f"profile: {state.profile.name}",
        f"hypothesis seed: {seed} ({chosen_by}; replay with --hypothesis-seed={seed})"
        if seed is not None
        else "hypothesis seed: derandomised (each check's own, the same every run; "
        "--model-random for a fresh one)",
    ]


def _requires(item: pytest.Item) -> list[str]:
    return sorted({str(marker.args[0]) for marker in item.iter_markers("requires")})


@pytest.fixture
def sut(request: pytest.FixtureRequest) -> Sut:
    """The implementation under test, reset for this check, held to what the check declared."""
    state = request.config.stash[_STATE]
    driver, loop, _ = state.ensure()
    loop.run(driver.call("Harness.reset", {}), 60)
    driver.log.clear()
    item = request.node
    marker = item.get_closest_marker("conformance")
    handle = Sut(
        driver,
        loop,
        state.judged(),
        requires=_requires(item),
        optional=marker.kwargs.get("optional", ()) if marker is not None else (),
        check=check_id(item),
    )
    item.stash[_SUT] = handle
    return handle


def pytest_runtest_setup(item: pytest.Item) -> None:
    if not _is_check(item):
        return
    state = item.config.stash[_STATE]
    state.started[item.nodeid] = time.monotonic()
    _, _, capabilities = state.ensure()
    assert state.profile is not None
    if outside := state.profile.outside(_requires(item)):
        item.stash[_OUTSIDE] = outside
        declared = [c for c in outside if c in capabilities.capabilities]
        implementation = capabilities.implementation
        why = "left out of the claimed profile" if declared else f"not declared by {implementation}"
        pytest.skip(
            f"outside the profile {state.profile.name}: needs {', '.join(map(repr, outside))} ({why})"
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    if not _is_check(item):
        return report
    marker = item.get_closest_marker("conformance")
    assert marker is not None
    level = marker.kwargs["level"]
    outcome: str | None = None
    reason = ""
    outside = item.stash.get(_OUTSIDE, [])
    bugs = item.stash[_SUT].violations if _SUT in item.stash and call.when == "call" else []
    if report.skipped and call.when in ("setup", "call"):
        skip_reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if level == "MUST" and not outside:
            report.outcome = "failed"
            report.longrepr = f"a MUST check may skip only outside the profile ({skip_reason})"
            outcome, reason = "error", str(report.longrepr)
        else:
            outcome, reason = "skip", skip_reason
    elif bugs:
        # Raised by Sut.call, or swallowed by the check: either way the check is wrong, not the SUT.
        report.outcome = "failed"
        report.longrepr = f"check bug: {bugs[0]}"
        outcome, reason = "error", report.longrepr
    elif report.failed:
        driver_failed = call.excinfo is not None and call.excinfo.errisinstance(DriverError)
        outcome = "error" if driver_failed or call.when != "call" else "fail"
        if driver_failed and call.excinfo is not None:
            # The driver's own sentence says it all; its traceback is the harness's, not the check's.
            report.longrepr = f"driver error: {call.excinfo.value}"
        reason = report.longreprtext
    elif call.when == "call":
        outcome = "pass"
    if outcome is not None:
        _record(item, marker.kwargs, outcome, reason, outside)
    return report


def _record(
    item: pytest.Item, marked: Mapping[str, Any], outcome: str, reason: str, outside: list[str]
) -> None:
    state = item.config.stash[_STATE]
    if state.report is None:
        return
    events: list[dict[str, Any]] = []
    transcript: list[str] = []
    if outcome in ("fail", "error") and state.driver is not None:
        events = [
            {"client": e.client, "listener": e.listener, "callback": e.callback, "payload": e.payload}
            for e in state.driver.log.events
        ]
        transcript = list(state.driver.transcript)[-50:]
    check = check_id(item)
    state.report.results = [r for r in state.report.results if r.id != check]
    state.report.results.append(
        CheckResult(
            check,
            marked["section"],
            marked["level"],
            outcome,
            reason,
            time.monotonic() - state.started.get(item.nodeid, time.monotonic()),
            events,
            transcript,
            requires=_requires(item),
            outside_profile=outside,
            items=list(marked.get("items", ())),
        )
    )


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    state = config.stash[_STATE]
    if state.report is None or not state.report.results:
        return
    terminalreporter.section("conformance")
    terminalreporter.write_line(state.report.verdict())
    terminalreporter.write_line(state.report.must_items_line())


def pytest_sessionfinish(session: pytest.Session) -> None:
    state = session.config.stash[_STATE]
    folder = session.config.getoption("conformance_report")
    if folder and state.report is not None:
        state.report.write(Path(folder))
    state.close()
