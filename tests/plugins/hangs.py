"""What happens to a test that hangs.

First pytest's ``faulthandler_timeout`` writes every thread's stack to the run's stderr (pytest-timeout's
own dump is lost inside an xdist worker). Then pytest-timeout (``timeout``) ends the worker, and xdist
reports the test as crashed. A crash is a failure, except for the tests marked ``flaky_hang`` (known to
stall now and then for a reason outside paynb, named in the marker): such a test gets one more try on a
fresh worker, and fails if it hangs or crashes again. The end of the run lists the known-flaky tests that
ran and every retry; the first try's stacks are above it.

The xdist controller that decides about a retry never collects tests, so it cannot see markers: each
worker writes the node ids of its ``flaky_hang`` tests to a file the controller named before they started.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

MARKER = "flaky_hang"
_LIST_ENV = "PYTEST_PAYNB_FLAKY_HANG_LIST"  # not PAYNB_*: conftest clears those
_retried: set[str] = set()


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput") or os.environ.get(_LIST_ENV):
        return  # an xdist worker: the controller's file is in the inherited environment
    fd, path = tempfile.mkstemp(prefix="paynb-flaky-hang-", suffix=".txt")
    os.close(fd)
    os.environ[_LIST_ENV] = path
    config.stash[_file_key] = Path(path)


def pytest_unconfigure(config: pytest.Config) -> None:
    path = config.stash.get(_file_key, None)
    if path is not None:
        path.unlink(missing_ok=True)
        os.environ.pop(_LIST_ENV, None)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    flaky = [item.nodeid for item in items if item.get_closest_marker(MARKER)]
    target = os.environ.get(_LIST_ENV)
    if flaky and target:
        with open(target, "a", encoding="utf-8") as fh:  # every worker collects the same ids
            fh.write("".join(f"{nodeid}\n" for nodeid in flaky))


def known_flaky() -> set[str]:
    target = os.environ.get(_LIST_ENV)
    if not target or not os.path.exists(target):
        return set()
    return set(Path(target).read_text(encoding="utf-8").split())


@pytest.hookimpl(optionalhook=True)  # an xdist hook: absent when the suite runs in one process
def pytest_handlecrashitem(crashitem: str, report: pytest.TestReport, sched) -> None:
    if crashitem in _retried or crashitem not in known_flaky():
        return  # a crash of any other test, or a second crash, stays a failure
    _retried.add(crashitem)
    sched.mark_test_pending(crashitem)
    report.outcome = "rerun"  # type: ignore[assignment]


def pytest_report_teststatus(report: pytest.TestReport):
    if report.outcome == "rerun":
        return "rerun", "R", ("RERUN", {"yellow": True})
    return None


def pytest_terminal_summary(terminalreporter) -> None:
    flaky = sorted(known_flaky())
    reruns = terminalreporter.stats.get("rerun", [])
    if flaky:
        terminalreporter.write_sep("-", f"known-flaky tests ({MARKER}: one retry after a hang)")
        for nodeid in flaky:
            terminalreporter.write_line(nodeid)
    if reruns:
        terminalreporter.write_sep(
            "=", "tried again after the worker hung or crashed (stacks above)", yellow=True
        )
        for report in reruns:
            terminalreporter.write_line(f"RERUN {report.nodeid}: {report.longrepr}")


_file_key = pytest.StashKey[Path]()
