CELLS = [
    (
        "markdown",
        """
# Stale invoices: APPROVED for longer than expected

PAD invoices normally settle the next business day and EJV feedback arrives the next day, so an invoice
still **APPROVED** after `days` days needs a look. This report counts and totals them by payment method
and age. It only reads pay-db (read-only session).
""",
    ),
    (
        "parameters",
        """
days: int = 20
method: str = ""
account: str = ""
""",
    ),
    (
        "code",
        """
import matplotlib.pyplot as plt

import paynb.jobs
from paynb.ops.stale import find_stale_invoices

report = find_stale_invoices(days, method=method or None, account=account or None)
print(f"{report.total_count} APPROVED invoices older than {days} days, total {report.total_amount}")
""",
    ),
    (
        "markdown",
        """
## By payment method and age bucket

Each bar is one payment method; the colours split it by age. EFT invoices legitimately stay APPROVED
until paid through a statement, so look at PAD and EJV first.
""",
    ),
    (
        "code",
        """
grid = report.pivot()
if grid.empty:
    print("Nothing is stale.")
else:
    ax = grid.plot(kind="barh", stacked=True, figsize=(8, 0.6 * len(grid) + 1.5), colormap="viridis")
    ax.set_xlabel("invoices")
    ax.set_ylabel("")
    ax.set_title(f"APPROVED for more than {days} days")
    plt.tight_layout()
    plt.show()
""",
    ),
    (
        "code",
        """
report.by_method()
""",
    ),
    (
        "code",
        """
report.to_frame()
""",
    ),
    (
        "markdown",
        """
## What to do next

* **PAD**: run the `triage/pad_stuck` notebook (or `paynb pad triage`). It asks CFS for each invoice and
  says whether CAS has not debited yet, or a settlement CSV was never processed.
* **EJV**: run `triage/ejv_feedback` (or `paynb ejv health`) to see missing FEEDBACK files and stopped GLs.
* **INTERNAL** (routing slips): check the slip's CFS account status.
""",
    ),
    (
        "code",
        """
paynb.jobs.record(rows_affected=0, dry_run=True, summary=report.by_method())
""",
    ),
]
