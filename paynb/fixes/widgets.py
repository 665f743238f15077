"""The one notebook helper of every fix: show the plan, then apply it only when confirmed.

Notebook parameters are the same for every fix: ``dry_run`` (default True) and ``confirm`` (the plan's
sha256). :func:`show_plan` displays the summary, warnings, the plan table and its sha256, then:

* ``dry_run=True``: applies nothing and says how to apply;
* headless (``paynb run``, papermill): applies when ``confirm`` equals the sha256; a missing or wrong
  ``confirm`` raises :class:`~paynb.errors.ConfirmMismatch` (a PlanError), so the run fails instead of
  "succeeding";
* in JupyterLab with no ``confirm``: a button that applies once, then disables itself.

Example (a notebook cell)::

    from paynb.fixes import get_fix
    from paynb.fixes.widgets import show_plan
    fix = get_fix("pad.partial_credit")
    plan = fix.plan(env, invoice_id=invoice_id, amount=amount)
    decision = show_plan(fix, plan, dry_run=dry_run, confirm=confirm, env=env, ticket=ticket, reason=reason)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from paynb.extras import require
from paynb.fixes.protocol import ApplyResult, Fix, apply_fix
from paynb.fixes.view import plan_frame
from paynb.headless import is_headless
from paynb.plan import check_confirm

if TYPE_CHECKING:
    from paynb.context import Env
    from paynb.plan import Plan


@dataclass
class FixDecision:
    """What :func:`show_plan` did. ``state``: ``dry_run``, ``waiting`` (a button is shown) or ``applied``."""

    state: str
    message: str
    result: ApplyResult | None = None
    widget: Any = None


def show_plan(
    fix: Fix,
    plan: Plan,
    *,
    dry_run: bool = True,
    confirm: str | None = None,
    env: Env | None = None,
    ticket: str = "",
    reason: str = "",
    operator: str | None = None,
    headless: bool | None = None,
) -> FixDecision:
    """Show ``plan``; apply it through :func:`paynb.fixes.apply_fix` when confirmed (see the module doc)."""
    from IPython.display import Markdown, display

    display(Markdown(f"### Plan: {plan.summary or fix.title or plan.kind}"))
    for warning in plan.warnings:
        display(Markdown(f"> **Warning:** {warning}"))
    display(plan_frame(plan, fix))
    display(Markdown(f"Plan sha256: `{plan.sha256}`"))
    headless = is_headless() if headless is None else headless
    if dry_run:
        message = (
            f"Dry run: nothing was changed. To apply, run again with dry_run=False and confirm={plan.sha256}"
        )
        display(Markdown(f"**{message}**"))
        return FixDecision("dry_run", message)
    if confirm or headless:
        check_confirm(plan, confirm)  # headless with no or a wrong confirm: the run fails here
        result = apply_fix(fix, plan, confirm, env=env, ticket=ticket, reason=reason, operator=operator)
        decision = FixDecision("applied", _applied_message(result), result)
        display(Markdown(f"**{decision.message}**"))
        return decision
    message = f"Review the plan, then click to apply it (or re-run headless with confirm={plan.sha256})."
    display(Markdown(f"**{message}**"))
    decision = FixDecision("waiting", message)
    decision.widget = _confirm_button(
        fix, plan, decision, env=env, ticket=ticket, reason=reason, operator=operator
    )
    return decision


def _applied_message(result: ApplyResult) -> str:
    return (
        f"Applied: {result.outcome.status}, {result.outcome.rows_affected} row(s); apply `{result.apply_id}` "
        f"(ledger entry {result.ledger_seq}, anchor {result.anchor_state}). See `paynb runs show {result.apply_id}`."
    )


def _confirm_button(fix: Fix, plan: Plan, decision: FixDecision, **apply_args: Any) -> Any:
    widgets = require("ipywidgets", "the confirm button")
    from IPython.display import Markdown, display

    button = widgets.Button(
        description=f"Apply {plan.sha256[:12]}", button_style="danger", tooltip=f"confirm plan {plan.sha256}"
    )
    out = widgets.Output()
    clicked: list[bool] = []

    def on_click(_: Any) -> None:
        if clicked:  # a second click that arrived before the button greyed out
            return
        clicked.append(True)
        button.disabled = True
        with out:
            try:
                result = apply_fix(fix, plan, plan.sha256, **apply_args)
            except Exception as err:  # shown next to the button; the ledger has the apply-failed entry
                display(Markdown(f"**Apply failed:** {err}"))
                decision.state, decision.message = "failed", str(err)
                return
            decision.state, decision.message, decision.result = "applied", _applied_message(result), result
            display(Markdown(f"**{decision.message}**"))

    button.on_click(on_click)
    box = widgets.VBox([button, out])
    display(box)
    return box
