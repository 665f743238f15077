"""What happens to a test that hangs.

First pytest's ``faulthandler_timeout`` writes every thread's stack to the run's stderr (pytest-timeout's
own dump is lost inside an xdist worker). Then pytest-timeout (``timeout``) ends the worker, and xdist
reports the test as crashed. Here such a test gets one more try on a fresh worker, so that one stuck
kernel or socket does not sink a whole CI run. A test that hangs or crashes twice still fails. Every
retry is listed at the end of the run; the first try's stacks are above it.
"""

from __future__ import annotations

import pytest

_retried: set[str] = set()


@pytest.hookimpl(optionalhook=True)  # an xdist hook: absent when the suite runs in one process
def pytest_handlecrashitem(crashitem: str, report: pytest.TestReport, sched) -> None:
    if crashitem in _retried:
        return
    _retried.add(crashitem)
    sched.mark_test_pending(crashitem)
    report.outcome = "rerun"  # type: ignore[assignment]


def pytest_report_teststatus(report: pytest.TestReport):
    if report.outcome == "rerun":
        return "rerun", "R", ("RERUN", {"yellow": True})
    return None


def pytest_terminal_summary(terminalreporter) -> None:
    reruns = terminalreporter.stats.get("rerun", [])
    if not reruns:
        return
    terminalreporter.write_sep(
        "=", "tried again after the worker hung or crashed (stacks above)", yellow=True
    )
    for report in reruns:
        terminalreporter.write_line(f"RERUN {report.nodeid}: {report.longrepr}")
