CELLS = [
    (
        "markdown",
        """
# <Report title>

One paragraph for the operator: what question this report answers, which data it reads (read-only),
and how fresh that data is.
""",
    ),
    (
        "parameters",
        """
# every parameter is annotated; defaults are safe (read-only, sandbox-sized)
days: int = 20
account: str = ""
""",
    ),
    (
        "code",
        """
import paynb.jobs
from paynb.ops.stale import find_stale_invoices  # replace with the paynb.ops function this report needs

result = find_stale_invoices(days, account=account or None)
""",
    ),
    (
        "markdown",
        """
## <What the chart shows>

Say what a normal picture looks like, so the operator notices an abnormal one.
""",
    ),
    (
        "code",
        """
grid = result.pivot()
if not grid.empty:
    grid.plot(kind="barh", stacked=True)
""",
    ),
    (
        "code",
        """
result.to_frame()
""",
    ),
    (
        "markdown",
        """
## What to do next

* <If you see X, run notebook Y.>
""",
    ),
    (
        "code",
        """
paynb.jobs.record(dry_run=True, rows_affected=0, summary=result.to_frame())
""",
    ),
]
