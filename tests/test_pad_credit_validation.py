"""PAD credit: bad input is refused with a message naming the field, and nothing is written — not in
pay-db, not in CFS, not in the ledger."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from paynb.errors import ConfirmMismatch, InputError, PlanError, StalePlanError
from paynb.ops.pad.credit import (
    CreditAlreadyApplied,
    apply_partial_credit,
    idempotency_key,
    plan_partial_credit,
)
from paynb.ops.pad.credit_lines import LineFacts, normalize_lines, parse_amount, spread_amount
from paynb.plan import Plan
from tests.test_pad_credit_support import CreditWorld, open_world


@pytest.fixture
def world(empty_db_url: str, tmp_path: Path) -> Iterator[CreditWorld]:
    yield from open_world(empty_db_url, tmp_path)


def _plan(world: CreditWorld, invoice: str = "pad", **kw) -> Plan:
    kw.setdefault("reason", "duplicate filing")
    kw.setdefault("ticket", "OPS-200")
    return plan_partial_credit(world.ids[invoice]["id"], settings=world.settings, cfs=world.cfs(), **kw)


def _refused(world: CreditWorld, exc: type[Exception], match: str, **kw) -> Exception:
    before = world.snapshot()
    with pytest.raises(exc, match=match) as info:
        _plan(world, **kw)
    assert world.snapshot() == before
    return info.value


# -- the cases of the issue ----------------------------------------------------------------------------------
def test_non_pad_invoice(world: CreditWorld) -> None:
    err = _refused(world, InputError, "DIRECT_PAY, not PAD", invoice="direct_pay", amount="1.00")
    assert err.field == "invoice_id"


@pytest.mark.parametrize(
    ("invoice", "match"),
    [
        ("settlement_sched", r"invoice_status_code\) is SETTLEMENT_SCHED.*APPROVED, PAID"),
        ("approved_new", "not in a CFS invoice yet.*cancel it instead"),
        ("approved_in_cfs", "partial credits need a PAID invoice"),
    ],
)
def test_wrong_status(world: CreditWorld, invoice: str, match: str) -> None:
    _refused(world, PlanError, match, invoice=invoice, amount="1.00")


def test_fully_credited_invoice(world: CreditWorld) -> None:
    inv = world.ids["pad"]["id"]
    world.execute("UPDATE invoices SET invoice_status_code = 'CREDITED' WHERE id = :i", i=inv)
    _refused(world, PlanError, "CREDITED: it was already refunded or credited in full", amount="1.00")


def test_line_of_another_invoice(world: CreditWorld) -> None:
    other = world.ids["pad_extra"][0]["lines"][0]
    err = _refused(world, InputError, f"{other} belongs to invoice", lines=[(other, "1.00")])
    assert err.field == "lines[0].payment_line_item_id"


def test_unknown_line(world: CreditWorld) -> None:
    err = _refused(world, InputError, "999999 does not exist", lines=[(999999, "1.00")])
    assert err.field == "lines[0].payment_line_item_id"


@pytest.mark.parametrize(
    ("amount", "match"),
    [
        ("0", "the amount is 0"),
        ("0.00", "the amount is 0"),
        ("-5.00", "negative"),
        ("1.005", "more than 2 decimals"),
        (1.5, "floats are not accepted"),
        ("ten", "is not an amount"),
    ],
)
def test_bad_amounts(world: CreditWorld, amount: object, match: str) -> None:
    err = _refused(world, InputError, match, amount=amount)
    assert err.field == "amount"
    line = world.ids["pad"]["lines"][0]
    err = _refused(world, InputError, match, lines=[(line, amount)])
    assert err.field == "lines[0].amount"


def test_more_than_remains(world: CreditWorld) -> None:
    w = world
    line_a, _ = w.ids["pad"]["lines"]
    err = _refused(
        w,
        InputError,
        r"30.01 is more than what remains on line item .* 30.00 left",
        lines=[(line_a, "30.01")],
    )
    assert err.field == "lines[0].amount"
    _refused(w, InputError, "1.51 is more than what remains", lines=[(line_a, "1.51", "SERVICE_FEES")])
    # BASE, PRIORITY and FUTURE_EFFECTIVE share the line's total
    _refused(
        w, InputError, "more than what remains", lines=[(line_a, "20.00"), (line_a, "10.01", "PRIORITY_FEES")]
    )
    _refused(
        w,
        InputError,
        r"53.01 is more than what remains on the invoice's line items \(53.00\)",
        amount="53.01",
    )


def test_more_than_remains_after_earlier_credits(world: CreditWorld) -> None:
    w = world
    inv = w.ids["pad"]["id"]
    line_a, _ = w.ids["pad"]["lines"]
    w.execute(
        "INSERT INTO refunds_partial (payment_line_item_id, invoice_id, refund_type, refund_amount, created_on, "
        "created_by, status, is_credit) VALUES (:l, :i, 'BASE_FEES', 25.00, now(), 'test', 'REFUND_PROCESSED', true), "
        "(:l, :i, 'BASE_FEES', 4.00, now(), 'test', 'REFUND_DECLINED', true)",
        l=line_a,
        i=inv,
    )
    _refused(
        w, InputError, r"5.01 is more than .* 25.00 credited before, 5.00 left", lines=[(line_a, "5.01")]
    )
    plan = _plan(w, lines=[(line_a, "5.00")])  # the declined 4.00 took nothing
    assert plan.body["credit"]["lines"][0]["remaining_after"] == "0.00"


def test_unknown_invoice(world: CreditWorld) -> None:
    before = world.snapshot()
    with pytest.raises(InputError, match="invoice 987654 does not exist") as info:
        plan_partial_credit(
            987654, amount="1.00", reason="r", ticket="T-1", settings=world.settings, cfs=world.cfs()
        )
    assert info.value.field == "invoice_id"
    assert world.snapshot() == before


def test_freeze_account(world: CreditWorld) -> None:
    _refused(world, PlanError, r"cfs_accounts.status\) is FREEZE", invoice="freeze", amount="1.00")


def test_cfs_invoice_missing(world: CreditWorld) -> None:
    _refused(world, PlanError, "CFS has no invoice REG", invoice="cfs_missing", amount="1.00")


def test_inactive_distribution_code(world: CreditWorld) -> None:
    _refused(world, PlanError, "is not active today", invoice="expired_gl", amount="1.00")


def test_stale_plan(world: CreditWorld) -> None:
    w = world
    plan = _plan(w, amount="2.00")
    w.execute("UPDATE payment_accounts SET pad_credit = 7.00 WHERE id = :a", a=w.ids["account"])
    before = w.snapshot()
    with pytest.raises(StalePlanError, match="data changed since the plan"):
        apply_partial_credit(plan, plan.sha256, settings=w.settings, cfs=w.cfs())
    assert w.snapshot() == before
    assert before["cfs_memos"] == 0 and before["intents"] == 0


def test_wrong_confirm_hash(world: CreditWorld) -> None:
    w = world
    plan = _plan(w, amount="2.00")
    before = w.snapshot()
    for confirm in ("", "0" * 64, plan.sha256[:-1] + ("0" if plan.sha256[-1] != "0" else "1")):
        with pytest.raises(ConfirmMismatch):
            apply_partial_credit(plan, confirm, settings=w.settings, cfs=w.cfs())
    # an edited plan no longer matches the hash that was reviewed
    edited = Plan.from_dict({**plan.to_dict(), "body": {**plan.body, "reason": "changed"}})
    with pytest.raises(ConfirmMismatch):
        apply_partial_credit(edited, plan.sha256, settings=w.settings, cfs=w.cfs())
    assert w.snapshot() == before


# -- more input checks -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "field", "match"),
    [
        ({"amount": "1.00", "reason": " "}, "reason", "a reason is required"),
        ({"amount": "1.00", "ticket": ""}, "ticket", "a ticket is required"),
        ({"amount": "1.00", "ticket": "OPS 1; drop"}, "ticket", "letters, digits"),
        ({}, "lines", "give either"),
        ({"amount": "1.00", "lines": [(1, "1.00")]}, "lines", "give either"),
        ({"lines": []}, "lines", "no lines given"),
        ({"lines": [(1, "1.00", "TIPS")]}, "lines[0].refund_type", "is not a refund type"),
        ({"lines": [(1, "1.00"), (1, "2.00")]}, "lines[1]", "appears twice"),
        ({"lines": [("x", "1.00")]}, "lines[0].payment_line_item_id", "not a payment line item id"),
    ],
)
def test_request_checks(world: CreditWorld, kwargs: dict, field: str, match: str) -> None:
    err = _refused(world, InputError, match, **kwargs)
    assert err.field == field


@pytest.mark.parametrize("invoice_id", [0, -3, True, "12"])
def test_bad_invoice_id(invoice_id: object) -> None:
    # refused before any database or CFS is asked
    with pytest.raises(InputError, match="not an invoice id"):
        plan_partial_credit(invoice_id, amount="1.00", reason="r", ticket="T")  # type: ignore[arg-type]


def test_plan_after_apply_says_already_applied(world: CreditWorld) -> None:
    w = world
    plan = _plan(w, amount="1.00")
    apply_partial_credit(plan, plan.sha256, settings=w.settings, cfs=w.cfs())
    with pytest.raises(CreditAlreadyApplied, match="already"):
        _plan(w, amount="1.00")
    assert _plan(w, amount="1.00", ticket="OPS-201").body["invoice"]["refund"] == "1.00"


def test_plan_is_stable_and_read_only(world: CreditWorld) -> None:
    w = world
    before = w.snapshot()
    first, second = _plan(w, amount="3.00"), _plan(w, amount="3.00")
    assert first.sha256 == second.sha256  # nothing in a plan moves by itself with time
    assert w.snapshot() == before


def test_candidate_invoice_comes_from_the_sandbox_side(world: CreditWorld) -> None:
    """ops no longer reads the sandbox's scenarios: the lookup is the sandbox's, the notebook takes a parameter."""
    import sqlalchemy as sa

    from paynb.ops.pad.view import resolve_invoice
    from paynb.sandbox.scenarios import scenario_ids

    eng = world.admin()
    try:
        with eng.connect() as conn:
            assert scenario_ids(conn, "pad_partial_credit_candidate", "invoices") == [world.ids["pad"]["id"]]
    finally:
        eng.dispose()
    assert resolve_invoice(world.ids["pad"]["id"]) == world.ids["pad"]["id"]
    with pytest.raises(InputError, match="invoice_id.*paynb sandbox scenarios"):
        resolve_invoice(0)
    assert "sandbox" not in Path("paynb/ops/pad/credit_plan.py").read_text().split('"""', 2)[2]
    del sa


@pytest.mark.parametrize("text", ["$1.00", "1.00$", "CAD 1.00", "1.00 CAD", "1,000.00", "€1"])
def test_amount_with_a_currency_sign_or_separator_is_refused(text: str) -> None:
    with pytest.raises(InputError, match="field 'amount'.*(currency sign|comma)"):
        parse_amount(text, "amount")


def test_cli_refuses_a_dollar_amount(
    world: CreditWorld, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from paynb.cli import main

    monkeypatch.setenv("PAYNB_DATABASE_URL", world.db_url)
    monkeypatch.setenv("PAYNB_ENV_FILE", str(tmp_path / "none.env"))
    before = world.snapshot()
    code = main(
        [
            "pad",
            "credit",
            "plan",
            "--invoice",
            str(world.ids["pad"]["id"]),
            "--amount",
            "$1.00",
            "--reason",
            "r",
            "--ticket",
            "T-1",
        ]
    )
    assert code == 2 and world.snapshot() == before


# -- pure rules --------------------------------------------------------------------------------------------------
def _line(i: int, total: str, service: str, credited: str = "0", sgst: str = "0") -> LineFacts:
    return LineFacts(
        i,
        1,
        f"line {i}",
        "ACTIVE",
        Decimal(total),
        Decimal(service),
        Decimal(sgst),
        Decimal("0"),
        1,
        Decimal(credited),
    )


def test_spread_is_deterministic_fees_then_service_per_line() -> None:
    lines = [_line(2, "20.00", "1.50"), _line(1, "30.00", "1.50", credited="29.00")]
    entries, gst = spread_amount(Decimal("4.00"), lines)
    assert [(e.payment_line_item_id, e.refund_type, str(e.amount)) for e in entries] == [
        (1, "BASE_FEES", "1.00"),
        (1, "SERVICE_FEES", "1.50"),
        (2, "BASE_FEES", "1.50"),
    ]
    assert gst == []
    entries, gst = spread_amount(Decimal("22.00"), [*lines[:1], _line(3, "0", "0", sgst="0.50")])
    assert sum(e.amount for e in entries) == Decimal("21.50") and [g.amount for g in gst] == [Decimal("0.50")]


def test_amount_parsing_and_key() -> None:
    assert parse_amount("1.500", "a") == Decimal("1.50")
    assert parse_amount(Decimal("2"), "a") == Decimal("2.00")
    assert normalize_lines([{"payment_line_item_id": 5, "amount": "1"}]) == [
        (5, Decimal("1.00"), "BASE_FEES")
    ]
    k1 = idempotency_key(
        1, [(2, Decimal("1.00"), "BASE_FEES"), (3, Decimal("2.00"), "SERVICE_FEES")], None, "T"
    )
    k2 = idempotency_key(
        1, [(3, Decimal("2.00"), "SERVICE_FEES"), (2, Decimal("1.00"), "BASE_FEES")], None, "T"
    )
    assert k1 == k2 and k1.startswith("pcr-") and len(k1) == 28
    assert k1 != idempotency_key(1, [(2, Decimal("1.00"), "BASE_FEES")], None, "T")
    assert idempotency_key(1, None, Decimal("1.00"), "T") != idempotency_key(1, None, Decimal("1.00"), "U")


def test_edited_plan_with_its_own_hash_is_refused(world: CreditWorld) -> None:
    """Someone edits the plan file and confirms the edited file's hash: nothing happens."""
    import copy

    w = world
    plan = _plan(w, amount="2.00")
    before = w.snapshot()
    body = copy.deepcopy(plan.body)
    body["pay_db"]["refunds_partial"]["insert"][0]["refund_amount"] = "20.00"
    edited = Plan.from_dict({**plan.to_dict(), "body": body})
    with pytest.raises(PlanError, match=r"does not add up \(refunds_partial\)"):
        apply_partial_credit(edited, edited.sha256, settings=w.settings, cfs=w.cfs())
    body = copy.deepcopy(plan.body)
    body["reason"] = "another reason"  # consistent, but not what pay-db gives today
    edited = Plan.from_dict({**plan.to_dict(), "body": body})
    with pytest.raises(StalePlanError):
        apply_partial_credit(edited, edited.sha256, settings=w.settings, cfs=w.cfs())
    assert w.snapshot() == before
