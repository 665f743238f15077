CELLS = [
    (
        "markdown",
        """
# <Data fix title>

What this fix changes, why, and the ticket it belongs to. The notebook is a **dry run** unless
`dry_run` is False **and** `confirm` equals the sha256 of the plan you reviewed.

Steps: parameters → preflight → plan → review → apply → verify.
""",
    ),
    (
        "parameters",
        """
invoice_id: int = 0
reason: str = ""
ticket: str = ""
dry_run: bool = True
confirm: str = ""
""",
    ),
    (
        "markdown",
        """
## Preflight

Checks that the target exists and is in a state the fix allows. Nothing is written.
""",
    ),
    (
        "code",
        """
import paynb.jobs
from paynb.plan import check_confirm

# from paynb.ops.<area> import plan_<fix>, apply_<fix>
""",
    ),
    (
        "markdown",
        """
## Plan

The plan lists every row and every external call the apply step would make, with before and after
values. Its sha256 is what you confirm.
""",
    ),
    (
        "code",
        """
# plan = plan_<fix>(invoice_id, reason=reason, ticket=ticket)
# print(plan.summary); print("sha256:", plan.sha256)
plan = None
""",
    ),
    (
        "markdown",
        """
## Review and apply

Apply runs only with `dry_run=False` and `confirm=<sha256>`. It re-plans, refuses if anything changed,
and writes in one transaction stamped with the run id.
""",
    ),
    (
        "code",
        """
if plan is not None and not dry_run:
    check_confirm(plan, confirm)
    # result = apply_<fix>(plan, confirm=confirm)
""",
    ),
    (
        "markdown",
        """
## Verify

Re-read what changed and show the before and after values.
""",
    ),
    (
        "code",
        """
paynb.jobs.record(dry_run=dry_run, plan_sha256=plan.sha256 if plan is not None else None, rows_affected=0)
""",
    ),
]
