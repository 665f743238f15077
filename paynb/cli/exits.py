"""Exit codes of every ``paynb`` command, in one place (docs/exit-codes.md says the same in prose).

A scheduler or a shell script decides on these alone, so a run that could not do all its work never
exits 0: a refused apply, a report with unread rows, refused credentials and an unreachable dependency
each have their own code, and the message on stderr says which.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import click

OK = 0
FAILED = 1  # anything else that went wrong (a PaynbError, doctor found a failing check)
BAD_INPUT = 2  # a bad option, parameter or file; nothing was done
CELL_ERROR = 3  # paynb run: a cell raised
TIMEOUT = 4  # paynb run: a cell ran past --timeout
DEAD_KERNEL = 5  # paynb run: the kernel died
SECRET_LEAK = 6  # paynb run: a secret in the output; nothing archived
REFUSED = 7  # a data fix refused: wrong/missing confirm, the data changed since the plan (PlanError)
AFTER_COMMIT = 8  # a data fix failed after part of it was committed: written, not verified (AfterCommitError)
INCOMPLETE = 9  # a batch report could not read some rows; the rest is printed
CREDENTIALS_REFUSED = 10  # a dependency (CFS, store, pay-db) refused paynb's credentials
UNREACHABLE = 11  # a dependency was down or did not answer
ABORTED = 130  # Ctrl-C

# the same numbers under the names some commands use for them (one meaning per number, see CODES)
FINDINGS = FAILED  # `paynb db …` health: a check found a problem
UNKNOWN_IDS = BAD_INPUT  # `paynb invoice explain`: some ids do not exist (the known ones are still shown)

CODES = {
    OK: "succeeded",
    FAILED: "failed",
    BAD_INPUT: "bad input, nothing done",
    CELL_ERROR: "paynb run: a cell raised an error",
    TIMEOUT: "paynb run: a cell timed out",
    DEAD_KERNEL: "paynb run: the kernel died",
    SECRET_LEAK: "paynb run: secret found in the output, nothing archived",
    REFUSED: "a data fix was refused (confirm or plan check); nothing written",
    AFTER_COMMIT: "a data fix failed after a commit: written but not verified; the message says what next",
    INCOMPLETE: "some rows could not be read; the report is incomplete",
    CREDENTIALS_REFUSED: "a dependency refused the credentials",
    UNREACHABLE: "a dependency was unreachable",
    ABORTED: "aborted",
}

# gap causes, worst first: the exit code follows the worst one
CAUSE_CODES = {
    "credentials_refused": CREDENTIALS_REFUSED,
    "unreachable": UNREACHABLE,
    "unreadable": INCOMPLETE,
}


@dataclass(frozen=True)
class Gap:
    """Rows a batch command could not read: from where, why (a CAUSE_CODES key) and how many."""

    source: str
    cause: str
    rows: int
    detail: str = ""
    unit: str = "row(s)"

    def describe(self) -> str:
        why = {"credentials_refused": "credentials refused", "unreachable": "unreachable"}.get(
            self.cause, "could not be read"
        )
        extra = f": {self.detail}" if self.detail else ""
        return f"{self.rows} {self.unit} not read from {self.source} ({why}){extra}"


def cfs_cause(http_status: int | None) -> str:
    """The gap cause of one failed CFS answer."""
    if http_status in (400, 401, 403):
        return "credentials_refused"
    if http_status is None:  # no answer at all: refused connection, timeout, dropped
        return "unreachable"
    return "unreadable"  # CFS answered, with an error for this row


def exit_for_gaps(gaps: Iterable[Gap], *, total: int | None = None) -> None:
    """Say which rows were not read and exit with the code of the worst cause; return when none."""
    gaps = [g for g in gaps if g.rows > 0]
    if not gaps:
        return
    for gap in gaps:
        click.echo(f"error: {gap.describe()}", err=True)
    rows = sum(g.rows for g in gaps if g.unit == "row(s)")
    of = f" of {total}" if total is not None else ""
    what = f"{rows}{of} row(s) could not be read" if rows else "some sources could not be read"
    click.echo(f"error: incomplete: {what}; do not act on this report alone", err=True)
    order = list(CAUSE_CODES)  # worst first
    worst = min(order.index(g.cause) if g.cause in CAUSE_CODES else len(order) - 1 for g in gaps)
    raise click.exceptions.Exit(CAUSE_CODES[order[worst]])
