CELLS = [
    (
        "markdown",
        """
# Void a routing slip that already has transactions

The four manual steps (invoices refunded → unassociate → void → associate again) as one planned,
confirmed, resumable fix (docs/routing-slips.md). The notebook is a **dry run** unless `dry_run` is
False **and** `confirm` equals the sha256 of the plan you reviewed. Only operators named in
`PAYNB_RS_VOID_OPERATORS` can apply it.
""",
    ),
    (
        "parameters",
        """
number: str = ""
reason: str = ""
ticket: str = ""
reverse_receipts: bool = False
dry_run: bool = True
confirm: str = ""
""",
    ),
    (
        "markdown",
        """
## Checklist and evidence

The slip, its parent and children, its invoices and refunds, its receipts as CFS holds them, every void
precondition (passed or failed) and the runbook situation it is in. Nothing is written. If a check
fails, fix what it names first (refund the invoice, wait for the refund or link job).
""",
    ),
    (
        "code",
        """
from IPython.display import display

from paynb.context import Env
from paynb.ops.routing_slips.show import show_slip
from paynb.ops.routing_slips.view import show_frames

env = Env.from_environment()
found = show_slip(number, env=env)
for name, frame in show_frames(found).items():
    print(name)
    display(frame)
""",
    ),
    (
        "markdown",
        """
## Plan, review, confirm

The plan lists the steps, the checks and the receipts to reverse. Its sha256 is what you confirm. With
`reverse_receipts=False` the slip is set VOID and sbc-pay's routing slip job reverses the receipts; after
the job, finish with `paynb routing-slip void apply --plan FILE --confirm SHA` (it re-associates the
invoices; `paynb runs show <apply id>` has the plan). With `reverse_receipts=True` paynb does it all.
""",
    ),
    (
        "code",
        """
from paynb.fixes.widgets import show_plan
from paynb.ops.routing_slips.apply import get_void_fix

fix = get_void_fix()
plan = fix.plan(env, number=number, reason=reason, ticket=ticket, reverse_receipts=reverse_receipts)
decision = show_plan(fix, plan, dry_run=dry_run, confirm=confirm or None, env=env, ticket=ticket, reason=reason)
""",
    ),
]
