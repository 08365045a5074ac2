"""``callsim run --dashboard`` in a real Chromium: the page loads, is updated as the run goes
(pushed by the server, not polled), shows the verdict, and its stop button stops the run as
Ctrl-C does. A screenshot of each is kept in ``reports/`` beside the test's output."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.interop.test_published_sdk_joins import CHROMIUM, REQUIRED, browser  # noqa: F401 - the fixture

pytestmark = pytest.mark.interop

SCENARIO = """
[scenario]
name = "watched"
seed = 9
duration = {duration}
join_rate = 8

[[sessions]]
count = 2
participants = 3
media = "lean"

[behaviours]
mute = {{ every = [2.0, 4.0] }}
"""
SCREENSHOTS = Path("reports")


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Any]:
    """Start ``callsim run`` with a dashboard; yields (its page's URL, the process)."""
    if CHROMIUM is None:
        if REQUIRED:
            pytest.fail("the dashboard test needs Chromium (see tox -e interop)")
        pytest.skip("needs Chromium: run `tox -e interop`")
    started: list[subprocess.Popen[str]] = []
    SCREENSHOTS.mkdir(exist_ok=True)

    def start(duration: float) -> tuple[str, subprocess.Popen[str]]:
        scenario = tmp_path / "scenario.toml"
        scenario.write_text(SCENARIO.format(duration=duration))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        process = subprocess.Popen(
            [sys.executable, "-m", "simulator.cli", "run", str(scenario), "--no-live", "--workers", "1",
             "--report", str(tmp_path / "report"), "--dashboard", f"127.0.0.1:{port}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        started.append(process)
        return f"http://127.0.0.1:{port}/", process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


async def _open(browser: Any, url: str) -> Any:  # noqa: F811
    page = await (await browser.new_context()).new_page()
    for _ in range(100):  # the run's process starts its server in a second or two; bounded
        try:
            await page.goto(url)
            return page
        except Exception:  # not listening yet
            await page.wait_for_timeout(200)
    raise AssertionError(f"the dashboard at {url} never answered")


async def test_the_page_is_updated_as_the_run_goes_and_shows_the_verdict(browser: Any, run: Any) -> None:  # noqa: F811
    url, process = run(14)
    page = await _open(browser, url)
    # Pushed snapshots: the figures and the charts move while the run goes.
    await page.wait_for_function("Number(document.body.dataset.updates || 0) >= 3", timeout=40_000)
    await page.wait_for_function("document.getElementById('joined').textContent === '6 / 6'", timeout=40_000)
    assert await page.locator(".uplot").count() >= 3  # drawn by the charting library
    await page.wait_for_function("document.body.dataset.verdict === 'PASS'", timeout=60_000)
    rows = await page.locator("#expectations tr").count()
    assert rows > 2
    await page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)
    print(f"screenshot: {SCREENSHOTS / 'dashboard.png'}")
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output[-3000:]
    assert "dashboard: http://127.0.0.1:" in output


async def test_its_stop_button_stops_the_run_cleanly_as_interrupted(browser: Any, run: Any) -> None:  # noqa: F811
    url, process = run(60)
    page = await _open(browser, url)
    await page.wait_for_function("document.getElementById('joined').textContent === '6 / 6'", timeout=40_000)
    await page.click("#stop")
    await page.wait_for_function("document.body.dataset.verdict === 'INTERRUPTED'", timeout=60_000)
    await page.screenshot(path=str(SCREENSHOTS / "dashboard-stopped.png"), full_page=True)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 130, output[-3000:]
    assert "INTERRUPTED" in output
