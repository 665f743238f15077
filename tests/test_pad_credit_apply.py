"""PAD credit apply: partial and full credits end to end (real PostgreSQL, real HTTP to the CFS sandbox),
a re-run is a no-op, and two concurrent applies post exactly one memo."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from paynb.ops.pad.credit import apply_partial_credit, plan_partial_credit
from paynb.plan import Plan
from tests.test_pad_credit_support import CreditWorld, open_world


@pytest.fixture
def world(empty_db_url: str, tmp_path: Path) -> Iterator[CreditWorld]:
    yield from open_world(empty_db_url, tmp_path)


def _plan(world: CreditWorld, invoice: str = "pad", **kw):
    kw.setdefault("reason", "duplicate filing")
    kw.setdefault("ticket", "OPS-100")
    return plan_partial_credit(world.ids[invoice]["id"], settings=world.settings, cfs=world.cfs(), **kw)


def test_partial_credit_by_lines(world: CreditWorld) -> None:
    w = world
    inv = w.ids["pad"]
    line_a, line_b = inv["lines"]
    plan = _plan(w, lines=[(line_a, "5.00"), (line_b, "1.50", "SERVICE_FEES")])
    body = plan.body
    assert body["credit"]["total"] == "6.50"
    assert body["credit"]["status_after"] == "PAID"
    memo = body["cfs"]["credit_memo"]["payload"]
    assert memo["batch_source"] == "MANUAL-OTHER" and memo["cust_trx_type"] == "BC_REG_CREDIT_MEMO"
    assert body["idempotency_key"] in memo["comments"]
    assert [ln["unit_price"] for ln in memo["lines"]] == ["-5.00", "-1.50"]
    assert memo["lines"][0]["distribution"][0]["account"] == "112.32363.34725.4375.3200000.000000.0000"
    assert memo["lines"][1]["description"] == "Service Fee"

    result = apply_partial_credit(plan, plan.sha256, settings=w.settings, cfs=w.cfs())
    assert result.outcome == "applied", result.message
    assert result.verified, result.problems
    # credits, refunds, payment_accounts_history, 2 refunds_partial, payment_accounts and invoices updated
    assert result.rows_affected == 7
    # what sbc-pay's refund API writes (docs/pad-credit.md)
    refund = w.scalar("SELECT row_to_json(r)::text FROM refunds r WHERE invoice_id = :i", i=inv["id"])
    import json as _json

    refund = _json.loads(refund)
    assert refund["type"] == "INVOICE" and refund["status"] == "APPROVAL_NOT_REQUIRED"
    assert refund["requested_by"] == body["requested_by"] and refund["reason"] == "OPS-100: duplicate filing"
    assert refund["decision_made_by"] is None and refund["requested_date"] is not None
    assert result.refund_id == refund["id"]
    assert (
        w.scalar("SELECT count(*) FROM refunds_partial WHERE refund_id = :r AND version = 1", r=refund["id"])
        == 2
    )
    assert w.scalar("SELECT count(*) FROM refunds_partial_history") == 0  # inserts leave no history
    assert w.scalar("SELECT version FROM payment_accounts WHERE id = :a", a=w.ids["account"]) == 2
    hist = _json.loads(
        w.scalar(
            "SELECT row_to_json(h)::text FROM payment_accounts_history h WHERE id = :a", a=w.ids["account"]
        )
    )
    assert hist["version"] == 1 and hist["pad_credit"] == 0 and hist["changed"] is not None
    assert hist["name"] == "Credit Co"
    assert len(w.memos(body["idempotency_key"])) == 1
    assert w.scalar("SELECT refund FROM invoices WHERE id = :i", i=inv["id"]) == Decimal("6.50")
    assert w.scalar("SELECT invoice_status_code FROM invoices WHERE id = :i", i=inv["id"]) == "PAID"
    assert w.scalar("SELECT pad_credit FROM payment_accounts WHERE id = :i", i=w.ids["account"]) == Decimal(
        "6.50"
    )
    assert (
        w.scalar(
            "SELECT count(*) FROM refunds_partial WHERE invoice_id = :i AND is_credit "
            "AND status = 'REFUND_PROCESSED'",
            i=inv["id"],
        )
        == 2
    )
    frame = result.to_frame()
    assert {"payment_accounts", "invoices", "credits", "refunds_partial"} <= set(frame["where"])

    again = apply_partial_credit(plan, plan.sha256, settings=w.settings, cfs=w.cfs())
    assert again.outcome == "already_applied" and again.no_op and again.rows_affected == 0
    assert "already applied" in again.message
    assert len(w.memos(body["idempotency_key"])) == 1
    assert w.scalar("SELECT count(*) FROM credits") == 1


def test_full_credit_by_amount_with_gst(world: CreditWorld) -> None:
    w = world
    plan = _plan(w, "pad_gst", amount="12.08")
    assert plan.body["credit"]["full"] is True
    assert plan.body["credit"]["status_after"] == "CREDITED"
    assert {g["kind"] for g in plan.body["credit"]["gst"]} == {"statutory_fees_gst", "service_fees_gst"}
    result = apply_partial_credit(plan, plan.sha256, settings=w.settings, cfs=w.cfs())
    assert result.outcome == "applied" and result.verified, result.problems
    inv = w.ids["pad_gst"]["id"]
    assert w.scalar("SELECT invoice_status_code FROM invoices WHERE id = :i", i=inv) == "CREDITED"
    assert w.scalar("SELECT refund FROM invoices WHERE id = :i", i=inv) == Decimal("12.08")


def test_concurrent_applies_post_one_memo(world: CreditWorld) -> None:
    w = world
    plan = _plan(w, amount="2.00")
    results, errors = [], []

    def run() -> None:
        try:
            results.append(apply_partial_credit(plan, plan.sha256, settings=w.settings, cfs=w.cfs()))
        except Exception as err:  # collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=run, daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "an apply did not finish within 60 s"
    assert not errors, errors
    assert sorted(r.outcome for r in results) == ["already_applied", "applied"]
    assert len(w.memos(plan.body["idempotency_key"])) == 1
    assert w.scalar("SELECT count(*) FROM credits") == 1


def _cli_env(w: CreditWorld, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tests.test_pad_credit_support import CFS_ID, CFS_SECRET, CONNECTOR

    env = {
        **w.db_env(),
        "PAYNB_CFS_BASE_URL": w.server.url,
        "PAYNB_CFS_CLIENT_ID": CFS_ID,
        "PAYNB_CFS_CLIENT_SECRET": CFS_SECRET,
        "PAYNB_PAY_CONNECTOR_AUTH": CONNECTOR,
        "PAYNB_DATA_DIR": str(w.settings.data_dir),
        "PAYNB_ENV_FILE": str(tmp_path / "none.env"),
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)


def test_cli_plan_then_apply(world: CreditWorld, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from paynb.cli import cli

    w = world
    _cli_env(w, monkeypatch, tmp_path)
    line_a, line_b = w.ids["pad"]["lines"]
    out = tmp_path / "plan.json"
    runner = CliRunner()
    args = [
        "pad",
        "credit",
        "plan",
        "--invoice",
        str(w.ids["pad"]["id"]),
        "--line",
        str(line_a),
        "5.00",
        "--line",
        str(line_b),
        "1.50",
        "service_fees",
        "--reason",
        "filed twice",
        "--ticket",
        "OPS-9",
        "--out",
        str(out),
    ]
    res = runner.invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "plan sha256:" in res.output and "paynb pad credit apply --plan" in res.output
    assert "SERVICE_FEES" in res.output and "pad_credit" in res.output
    res_json = runner.invoke(cli, [*args[:-2], "--json"])
    data = json.loads(res_json.output)
    assert data["plan"]["body"]["credit"]["total"] == "6.50"
    sha = data["sha256"]
    assert w.snapshot()["credits"] == 0  # planning wrote nothing

    bad = runner.invoke(cli, ["pad", "credit", "apply", "--plan", str(out), "--confirm", "0" * 64])
    assert bad.exit_code == 7 and "does not match the plan" in bad.output  # refused, nothing written
    ok = runner.invoke(cli, ["pad", "credit", "apply", "--plan", str(out), "--confirm", sha])
    assert ok.exit_code == 0, ok.output
    assert "applied: credit memo" in ok.output and "verified" in ok.output
    again = runner.invoke(cli, ["pad", "credit", "apply", "--plan", str(out), "--confirm", sha, "--json"])
    assert again.exit_code == 0 and json.loads(again.output)["outcome"] == "already_applied"


def test_cli_line_option_needs_an_amount(
    world: CreditWorld, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from paynb.cli import cli

    _cli_env(world, monkeypatch, tmp_path)
    res = CliRunner().invoke(
        cli, ["pad", "credit", "plan", "--invoice", "1", "--line", "5", "--reason", "r", "--ticket", "T"]
    )
    assert res.exit_code != 0 and "ITEM_ID AMOUNT [TYPE]" in res.output
    help_text = CliRunner().invoke(cli, ["pad", "credit", "plan", "--help"]).output
    assert "Example:" in help_text


def test_ledger_holds_the_intent_and_the_reconciliation_note(world: CreditWorld) -> None:
    from paynb import ledger

    w = world
    plan = _plan(w, amount="1.75")
    result = apply_partial_credit(plan, plan.sha256, settings=w.settings, cfs=w.cfs())
    intent = ledger.get_intent(plan.body["idempotency_key"], settings=w.settings)
    assert intent.state == "confirmed"
    assert [h["state"] for h in intent.history] == ["pending", "pending", "sent", "confirmed"]
    evidence = intent.evidence
    assert evidence["credit_memo_number"] == result.credit_memo_number
    assert evidence["plan_sha256"] == plan.sha256 and "CMAP" in evidence["note"]
    assert evidence["refunds_partial_ids"] == result.refunds_partial_ids


def test_cli_refusal_names_the_resume_command_and_resume_verify_work(
    world: CreditWorld, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Plans A and B together above the invoice total; B stops after its memo was posted. The CLI refuses A
    (exit 1) naming `resume`; `resume` finishes B; `verify` re-checks it; A stays refused."""
    import json

    from click.testing import CliRunner

    from paynb.cli import main

    w = world
    _cli_env(w, monkeypatch, tmp_path)
    inv = str(w.ids["pad"]["id"])
    files = {}
    for name, amount in (("A", "30.00"), ("B", "30.00")):
        files[name] = tmp_path / f"{name}.json"
        code = main(
            [
                "pad",
                "credit",
                "plan",
                "--invoice",
                inv,
                "--amount",
                amount,
                "--reason",
                "over-credit",
                "--ticket",
                f"OPS-{name}",
                "--out",
                str(files[name]),
            ]
        )
        assert code == 0
    plan_b = Plan.read(files["B"])
    plan_a = Plan.read(files["A"])

    class Crash(BaseException):
        pass

    def die(step: str) -> None:
        if step == "after_post":
            raise Crash(step)

    with pytest.raises(Crash):
        apply_partial_credit(plan_b, plan_b.sha256, settings=w.settings, cfs=w.cfs(), faults=die)
    runner = CliRunner()
    refused = runner.invoke(
        cli_group(), ["pad", "credit", "apply", "--plan", str(files["A"]), "--confirm", plan_a.sha256]
    )
    assert refused.exit_code == 7, refused.output  # refused: nothing written
    text = refused.output
    assert (
        "stopped half-way" in text
        and f"paynb pad credit resume --key {plan_b.body['idempotency_key']}" in text
    )
    assert w.memos(plan_a.body["idempotency_key"]) == []

    resumed = runner.invoke(
        cli_group(),
        [
            "pad",
            "credit",
            "resume",
            "--key",
            plan_b.body["idempotency_key"],
            "--confirm",
            plan_b.sha256,
            "--json",
        ],
    )
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.output)["outcome"] == "resumed"
    checked = runner.invoke(cli_group(), ["pad", "credit", "verify", "--plan", str(files["B"])])
    assert checked.exit_code == 0 and "verified" in checked.output, checked.output
    again = runner.invoke(
        cli_group(), ["pad", "credit", "apply", "--plan", str(files["A"]), "--confirm", plan_a.sha256]
    )
    assert again.exit_code != 0 and w.memos(plan_a.body["idempotency_key"]) == []


def cli_group():
    from paynb.cli import cli

    return cli


def test_cli_done_but_unverified_exits_after_commit_and_names_verify() -> None:
    import click

    from paynb.cli.pad_credit import EXIT_UNVERIFIED, _show_result
    from paynb.ops.pad.credit import ApplyResult

    result = ApplyResult(
        outcome="applied",
        message="applied. The credit is DONE: …",
        idempotency_key="pcr-1",
        plan_sha256="0" * 64,
        run_id="r",
        invoice_id=1,
        unverified_reason="DatabaseError: down",
        next_step="paynb pad credit verify --plan p.json",
    )
    with pytest.raises(click.exceptions.Exit) as ex:
        _show_result(result, as_json=False)
    assert ex.value.exit_code == EXIT_UNVERIFIED == 8  # written, not verified (docs/exit-codes.md)


def test_corp_type_needing_approval_records_the_confirming_operator(world: CreditWorld) -> None:
    """sbc-pay's approval flow: corp_types.refund_approval -> refunds APPROVED with decision_made_by and
    decision_date; the plan's operator is requested_by, the confirming operator decides."""
    import json

    from paynb.errors import InputError

    w = world
    w.execute("UPDATE corp_types SET refund_approval = true WHERE code = 'BC'")
    plan = _plan(w, amount="4.00", requested_by="requester-1")
    assert any("needs refund approval" in x for x in plan.warnings)
    assert plan.body["pay_db"]["refunds"]["insert"]["status"] == "APPROVED"
    with pytest.raises(InputError, match="ticket"):
        apply_partial_credit(plan, plan.sha256, settings=w.settings, cfs=w.cfs(), ticket="OPS-999")
    result = apply_partial_credit(plan, plan.sha256, settings=w.settings, cfs=w.cfs(), operator="approver-2")
    assert result.verified, result.problems
    refund = json.loads(
        w.scalar("SELECT row_to_json(r)::text FROM refunds r WHERE id = :i", i=result.refund_id)
    )
    assert refund["status"] == "APPROVED" and refund["type"] == "INVOICE"
    assert refund["requested_by"] == "requester-1" and refund["decision_made_by"] == "approver-2"
    assert refund["decision_date"] is not None
