"""A real Chromium for the browser tests, driven by Playwright for Python.

The browser is Debian's ``chromium`` (or ``chromium-headless-shell``) package, passed to Playwright as
``executable_path``; Playwright's own browser download is never used (CI installs the Debian package in
``.ci/run``; ``BROWSER_TESTS_CHROMIUM`` names another binary, ``none`` turns them off; the names do not
start with PAYNB_ because tests/conftest.py clears those). Without a Chromium (or without the playwright package) each browser test is skipped with
the reason ``NO_BROWSER`` and the run's summary says so in one line. Screenshots go to
``BROWSER_TESTS_ARTIFACTS`` (default ``test-artifacts/browser/``); the summary names the folder.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parents[2]
NO_BROWSER = "no Chromium for the browser tests"
# the real binary first: Debian's /usr/bin/chromium is a wrapper script that adds desktop flags
CHROMIUMS = (
    "/usr/lib/chromium/chromium",
    "/usr/lib/chromium/chromium-headless-shell",
    "/usr/lib/chromium-headless-shell/chromium-headless-shell",
    "chromium",
    "chromium-headless-shell",
    "chromium-browser",
)
_STARTED = time.time()


def find_chromium() -> str | None:
    explicit = os.environ.get("BROWSER_TESTS_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).is_file() else None
    for candidate in CHROMIUMS:
        found = (
            candidate
            if Path(candidate).is_file() and os.access(candidate, os.X_OK)
            else shutil.which(candidate)
        )
        if found:
            return found
    return None


def artifacts_dir() -> Path:
    return Path(os.environ.get("BROWSER_TESTS_ARTIFACTS") or ROOT / "test-artifacts" / "browser")


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """A headless Chromium browser (Playwright ``Browser``), shared by the session's browser tests."""
    executable = find_chromium()
    if executable is None:
        pytest.skip(f"{NO_BROWSER}: apt-get install -y chromium (or chromium-headless-shell)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip(f"{NO_BROWSER}: the playwright package is not installed (pip install -e '.[dev]')")
    driver = sync_playwright().start()
    try:
        # --no-sandbox: Chromium's sandbox cannot start as root (CI); the pages are our own local ones
        browser = driver.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox"], timeout=60_000
        )
    except Exception as err:  # a broken install is a failure, not a skip
        driver.stop()
        raise RuntimeError(f"{executable} did not start under Playwright: {err}") from err
    try:
        yield browser
    finally:
        browser.close()
        driver.stop()


@pytest.fixture
def browser_page(chromium: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh page (own context, 30 s default wait); saves a screenshot when the test fails."""
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.set_default_navigation_timeout(60_000)
    yield page
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        screenshot(page, request.node.name, "failure")
    context.close()


def screenshot(page: Any, test: str, step: str) -> Path:
    folder = artifacts_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{test}-{step}.png"
    page.screenshot(path=str(path), full_page=True, timeout=30_000)
    return path


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    report = yield
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    skipped = [
        r for r in terminalreporter.stats.get("skipped", []) if NO_BROWSER in str(getattr(r, "longrepr", ""))
    ]
    if skipped:
        terminalreporter.write_line(
            f"browser tests: {len(skipped)} SKIPPED, {NO_BROWSER} (apt-get install -y chromium)", yellow=True
        )
    folder = artifacts_dir()
    if folder.is_dir():
        shots = [p for p in folder.glob("*.png") if p.stat().st_mtime >= _STARTED]
        if shots:
            terminalreporter.write_line(f"browser tests: {len(shots)} screenshot(s) in {folder}")
