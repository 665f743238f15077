"""PAD credit money safety: the over-credit sequence of issue #10 and randomized fault sequences.

The over-credit sequence: plans A and B on one invoice, together above its total. Apply B is killed after
CFS created its memo but before the pay-db rows; apply A must then refuse (B's intent is unfinished, and
B's memo is an orphan that would put CFS credit above the total); B is re-run and finishes; A stays refused.
Repeated with seeded random kill points (in-process crashes from the ``faults`` hook, and a few real
SIGKILLs of a subprocess), it never leaves CFS credit above the invoice total, and CFS and pay-db agree.

The randomized sequences mix crashes at every step, CFS faults (the sandbox CFS server's knobs: 500s,
dropped connections, 429 bursts, lost answers) and pay-db outages (a TCP proxy in front of PostgreSQL,
cut at a random step), then re-run or verify; each ends with CFS and pay-db consistent.

``CREDIT_OVERCREDIT_SEQUENCES`` / ``CREDIT_MIXED_SEQUENCES`` / ``CREDIT_FAULT_SEED`` change the counts
and the seed.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from paynb.context import Env
from paynb.errors import AfterCommitError, CfsError, InputError, PlanError
from paynb.ops.pad import intents
from paynb.ops.pad.credit import (
    ApplyResult,
    CreditInProgress,
    CreditOutcomeUnknown,
    OverCredit,
    apply_partial_credit,
    plan_partial_credit,
    resolve_credit,
    resume_credit,
    verify_plan,
)
from paynb.ops.pad.view import invoice_memos_frame
from paynb.plan import Plan
from paynb.sandbox.postgres import READER, WRITER
from paynb.secrets import Secret
from tests.plugins.db import as_role
from tests.tcp_proxy import TcpProxy
from tests.test_pad_credit_support import CFS_ID, CFS_SECRET, CONNECTOR, CreditWorld, open_world

OVERCREDIT = int(os.environ.get("CREDIT_OVERCREDIT_SEQUENCES", "20"))
MIXED = int(os.environ.get("CREDIT_MIXED_SEQUENCES", "20"))
SEED = int(os.environ.get("CREDIT_FAULT_SEED", "20261205"))
TOTAL = Decimal("53.00")  # every invoice of the world: 30.00 + 1.50 and 20.00 + 1.50
AFTER_MEMO = ("after_post", "before_db", "mid_db")  # B's memo exists, its pay-db rows do not
SUBPROCESS_EVERY = 10  # every 10th over-credit sequence kills a real process


class Crash(BaseException):
    """A simulated crash at a step boundary (a BaseException, like a kill: nothing in paynb catches it)."""


def crash_at(step: str | None):
    def hook(name: str) -> None:
        if name == step:
            raise Crash(step)

    return hook


@pytest.fixture
def world(empty_db_url: str, tmp_path: Path) -> Iterator[CreditWorld]:
    yield from open_world(empty_db_url, tmp_path, extra_invoices=OVERCREDIT + MIXED)


def _plan(w: CreditWorld, invoice_id: int, ticket: str, **kw: Any) -> Plan:
    return plan_partial_credit(
        invoice_id, reason="over-credit test", ticket=ticket, settings=w.settings, cfs=w.cfs(), **kw
    )


def _apply(w: CreditWorld, plan: Plan, **kw: Any) -> ApplyResult:
    return apply_partial_credit(plan, plan.sha256, settings=w.settings, cfs=w.cfs(), **kw)


def _cents(rng: random.Random, low: str, high: str) -> Decimal:
    lo, hi = int(Decimal(low) * 100), int(Decimal(high) * 100)
    return Decimal(rng.randint(lo, hi)) / 100


def _invoice_memos(w: CreditWorld, invoice_id: int) -> list[dict]:
    return [m for m in w.memos() if f"credit for {invoice_id} (" in m["comments"]]


def assert_consistent(w: CreditWorld, invoice_id: int, total: Decimal = TOTAL) -> Decimal:
    """CFS and pay-db agree on the invoice, CFS credit is within its total, nothing is left half-way."""
    memos = _invoice_memos(w, invoice_id)
    cfs_credit = -sum((Decimal(str(m["total"])) for m in memos), Decimal("0"))
    assert cfs_credit <= total, f"invoice {invoice_id}: CFS credit {cfs_credit} above its total {total}"
    numbers = {str(m["credit_memo_number"]) for m in memos}
    rows = w.scalar(
        "SELECT coalesce(string_agg(cfs_identifier, ',' ORDER BY cfs_identifier), '') FROM credits "
        "WHERE created_invoice_id = :i",
        i=invoice_id,
    )
    assert set(filter(None, rows.split(","))) == numbers, (
        f"invoice {invoice_id}: memos {numbers}, credits {rows}"
    )
    pay_db = w.scalar(
        "SELECT coalesce(sum(amount), 0)::numeric(19,2) FROM credits WHERE created_invoice_id = :i",
        i=invoice_id,
    )
    refund = w.scalar("SELECT coalesce(refund, 0) FROM invoices WHERE id = :i", i=invoice_id)
    partials = w.scalar(
        "SELECT coalesce(sum(refund_amount), 0) FROM refunds_partial WHERE invoice_id = :i", i=invoice_id
    )
    assert cfs_credit == pay_db == refund == partials, (invoice_id, cfs_credit, pay_db, refund, partials)
    # one refunds row per credit, every refunds_partial row linked to one
    assert w.scalar("SELECT count(*) FROM refunds WHERE invoice_id = :i", i=invoice_id) == len(numbers)
    assert (
        w.scalar(
            "SELECT count(*) FROM refunds_partial WHERE invoice_id = :i AND refund_id IS NULL", i=invoice_id
        )
        == 0
    )
    assert intents.open_intents_for_invoice(invoice_id, settings=w.settings) == []
    return cfs_credit


def assert_account_books(w: CreditWorld) -> None:
    """pad_credit is the sum of every credit; one history row and one version step per credit."""
    acct = w.ids["account"]
    credits = w.scalar("SELECT count(*) FROM credits WHERE account_id = :a", a=acct)
    assert w.scalar("SELECT coalesce(pad_credit, 0) FROM payment_accounts WHERE id = :a", a=acct) == w.scalar(
        "SELECT coalesce(sum(amount), 0)::numeric(19,2) FROM credits WHERE account_id = :a", a=acct
    )
    assert w.scalar("SELECT version FROM payment_accounts WHERE id = :a", a=acct) == 1 + credits
    assert w.scalar("SELECT count(*) FROM payment_accounts_history WHERE id = :a", a=acct) == credits


KILL_SCRIPT = """
import os, signal, sys
from paynb.ops.pad.credit import apply_partial_credit
from paynb.plan import Plan

step = sys.argv[2]

def die(name):
    if name == step:
        os.kill(os.getpid(), signal.SIGKILL)

plan = Plan.read(sys.argv[1])
apply_partial_credit(plan, plan.sha256, faults=die)
print("not killed")
"""


def _kill_in_subprocess(w: CreditWorld, plan: Plan, step: str, tmp_path: Path) -> None:
    path = plan.write(tmp_path / f"{plan.body['idempotency_key']}.json")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PAYNB_")},
        "PAYNB_ENVIRONMENT": "test",
        "PAYNB_DATABASE_URL": as_role(w.db_url, READER),
        "PAYNB_DATABASE_WRITE_URL": as_role(w.db_url, WRITER),
        "PAYNB_CFS_BASE_URL": w.server.url,
        "PAYNB_CFS_CLIENT_ID": CFS_ID,
        "PAYNB_CFS_CLIENT_SECRET": CFS_SECRET,
        "PAYNB_PAY_CONNECTOR_AUTH": CONNECTOR,
        "PAYNB_DATA_DIR": str(w.settings.data_dir),
        "PAYNB_ENV_FILE": str(tmp_path / "no.env"),
    }
    proc = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, str(path), step],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]


def test_over_credit_sequence_with_random_kill_points(world: CreditWorld, tmp_path: Path) -> None:
    w = world
    rng = random.Random(SEED)
    invoices = [inv["id"] for inv in w.ids["pad_extra"][:OVERCREDIT]]
    refusals: dict[str, int] = {}
    for n, invoice_id in enumerate(invoices):
        b_amount = _cents(rng, "20.00", "40.00")
        a_amount = _cents(rng, str(TOTAL - b_amount + Decimal("0.01")), "45.00")
        assert a_amount + b_amount > TOTAL
        plan_a = _plan(w, invoice_id, f"A-{SEED}-{n}", amount=str(a_amount))
        plan_b = _plan(w, invoice_id, f"B-{SEED}-{n}", amount=str(b_amount))
        step = rng.choice(AFTER_MEMO)
        if n % SUBPROCESS_EVERY == 0:
            _kill_in_subprocess(w, plan_b, step, tmp_path)
        else:
            with pytest.raises(Crash):
                _apply(w, plan_b, faults=crash_at(step))
        key_b = plan_b.body["idempotency_key"]
        assert len(w.memos(key_b)) == 1, f"sequence {n}: B's memo must exist after a kill at {step}"
        assert w.scalar("SELECT count(*) FROM credits WHERE created_invoice_id = :i", i=invoice_id) == 0

        # apply A: refused, nothing posted (B is unfinished; its memo is an orphan above the total)
        with pytest.raises(PlanError) as refused:
            _apply(w, plan_a)
        refusals[type(refused.value).__name__] = refusals.get(type(refused.value).__name__, 0) + 1
        assert w.memos(plan_a.body["idempotency_key"]) == []
        # a new plan on the invoice says why and which command resumes B
        with pytest.raises(CreditInProgress) as blocked:
            _plan(w, invoice_id, f"C-{SEED}-{n}", amount="1.00")
        assert f"paynb pad credit resume --key {key_b}" in str(blocked.value)
        # with the ledger's intent gone (lost or resolved by mistake), CFS alone still refuses A
        if n % 4 == 1:
            with pytest.raises(OverCredit, match="Orphan memos"):
                _plan_without_intents(w, invoice_id, plan_a)
            small = _plan_without_intents(w, invoice_id, plan_a, amount="1.00")
            assert any("ORPHAN credit memo" in x for x in small.warnings), small.warnings
            assert list(invoice_memos_frame(small)["pay-db"]) == ["ORPHAN: none"]

        # re-run B, sometimes crashing again after its commit, until it is done
        again = rng.choice([None, "after_commit", "after_done"])
        if again:
            with pytest.raises(Crash):
                _apply(w, plan_b, faults=crash_at(again))
        result = _apply(w, plan_b)
        assert result.verified, result.problems
        assert result.outcome in ("resumed", "already_applied"), result.steps

        # A stays refused: pay-db now holds B
        with pytest.raises((InputError, PlanError)):
            _apply(w, plan_a)
        assert w.memos(plan_a.body["idempotency_key"]) == []
        assert assert_consistent(w, invoice_id) == b_amount
    assert_account_books(w)
    print(f"\nover-credit sequences: {len(invoices)} (seed {SEED}), apply A refused by {refusals}")


def _plan_without_intents(w: CreditWorld, invoice_id: int, plan_a: Plan, amount: str | None = None) -> Plan:
    """Plan A again as if the ledger had no record of B (a lost ledger file): only CFS can tell."""
    lonely = replace(w.settings, data_dir=w.settings.data_dir.parent / f"empty-ledger-{invoice_id}")
    req = plan_a.body["params"]
    return plan_partial_credit(
        invoice_id,
        amount=amount or req["amount"],
        reason=req["reason"],
        ticket=req["ticket"],
        settings=lonely,
        cfs=w.cfs(),
    )


def test_resume_and_resolve_from_the_ledger(world: CreditWorld) -> None:
    """The refusal's commands work: ``resume`` finishes B from the plan its intent keeps; ``resolve`` drops a
    credit that never reached CFS, and refuses one whose memo is in CFS."""
    w = world
    inv = w.ids["pad"]["id"]
    env = Env(settings=w.settings, overrides={"cfs": w.cfs()})
    plan_b = _plan(w, inv, "RES-B", amount="30.00")
    with pytest.raises(Crash):
        _apply(w, plan_b, faults=crash_at("after_post"))
    key_b = plan_b.body["idempotency_key"]
    with pytest.raises(PlanError, match="cannot be dropped: CFS holds its memo"):
        resolve_credit(key_b, "wrong invoice", env=env)
    done = resume_credit(key_b, plan_b.sha256, env=env)
    assert done.outcome == "resumed" and done.verified

    plan_c = _plan(w, inv, "RES-C", amount="2.00")
    with pytest.raises(Crash):
        _apply(w, plan_c, faults=crash_at("after_intent"))  # intent pending, nothing in CFS
    with pytest.raises(CreditInProgress):
        _plan(w, inv, "RES-D", amount="1.00")
    assert resolve_credit(plan_c.body["idempotency_key"], "operator changed their mind", env=env)[
        "state"
    ] == ("abandoned")
    assert _plan(w, inv, "RES-D", amount="1.00").body["credit"]["total"] == "1.00"
    assert_consistent(w, inv)


# -- randomized fault sequences across the whole apply path ---------------------------------------------------
@pytest.fixture
def proxy(world: CreditWorld) -> Iterator[TcpProxy]:
    with TcpProxy.for_url(world.db_url) as p:
        yield p


def test_randomized_fault_sequences_end_consistent(world: CreditWorld, proxy: TcpProxy) -> None:
    """Each sequence: one credit on a fresh invoice, hit by a random fault — a crash at a random step, CFS
    faults, or a pay-db outage at a random step — then re-run (or verified) until done. Every sequence ends
    with the credit exactly once and CFS and pay-db in agreement; an outage right after the commit reports
    the credit as done and names `verify`."""
    w = world
    rng = random.Random(SEED + 1)
    settings = replace(  # both roles through the proxy: an outage hits the writes too (docs/roles.md)
        w.settings,
        database_url=Secret(proxy.url_for(as_role(w.db_url, READER))),
        database_write_url=Secret(proxy.url_for(as_role(w.db_url, WRITER))),
    )
    invoices = [inv["id"] for inv in w.ids["pad_extra"][OVERCREDIT : OVERCREDIT + MIXED]]
    kinds = ["crash", "cfs", "paydb"]
    seen: dict[str, int] = {}
    for n, invoice_id in enumerate(invoices):
        kind = kinds[n % 3] if n < 3 else rng.choice(kinds)
        amount = _cents(rng, "0.50", "53.00")
        plan = _plan(w, invoice_id, f"MIX-{SEED}-{n}", amount=str(amount))

        def apply(plan: Plan = plan, **kw: Any) -> ApplyResult:
            return apply_partial_credit(plan, plan.sha256, settings=settings, cfs=w.cfs(), **kw)

        label = _one_fault(w, rng, kind, apply, proxy, plan, settings)
        seen[label] = seen.get(label, 0) + 1
        w.server.set_knobs(fault_rate=0.0, drop_rate=0.0, burst_429=0, fail_after_cms_create=0)
        proxy.restore()
        final = apply()
        assert final.verified, (n, label, final.problems)
        assert final.outcome == "already_applied" or label.startswith("cfs"), (n, label, final.outcome)
        assert assert_consistent(w, invoice_id) == amount, (n, label)
    assert_account_books(w)
    print(f"\nmixed fault sequences: {len(invoices)} (seed {SEED + 1}): {dict(sorted(seen.items()))}")


def _one_fault(
    w: CreditWorld, rng: random.Random, kind: str, apply: Any, proxy: TcpProxy, plan: Plan, settings: Any
) -> str:
    """Hit one apply with a fault of ``kind``; re-run until it went through. Returns a label for the tally."""
    if kind == "crash":
        step = rng.choice(
            [
                "before_intent",
                "after_intent",
                "after_post",
                "before_db",
                "mid_db",
                "after_commit",
                "after_done",
            ]
        )
        with pytest.raises(Crash):
            apply(faults=crash_at(step))
        apply()
        return f"crash@{step}"
    if kind == "cfs":
        knobs = rng.choice(
            [
                {"fault_rate": 0.3, "seed": rng.randint(1, 999)},
                {"drop_rate": 0.3, "seed": rng.randint(1, 999)},
                {"burst_429": 3},
                {"fail_after_cms_create": 1},
            ]
        )
        w.server.set_knobs(**knobs)
        for _ in range(10):
            try:
                apply()
                break
            except CfsError:
                continue  # CFS kept failing: the operator re-runs
        return "cfs:" + ",".join(k for k in knobs if k != "seed")
    step = rng.choice(["before_intent", "after_post", "before_db", "mid_db", "after_commit"])

    def cut(name: str) -> None:
        if name == step:
            proxy.cut()

    if step == "after_commit":
        # the credit is committed, then pay-db goes away: the apply says it is done and names `verify`
        result = apply(faults=cut)
        assert not result.verified and "The credit is DONE" in result.message, result.message
        assert "paynb pad credit verify" in result.next_step
        proxy.restore()
        checked = verify_plan(plan, env=Env(settings=settings, overrides={"cfs": w.cfs()}))
        assert checked.verified, checked.problems
        return "paydb@after_commit"
    # pay-db goes away before or while the rows are written: the memo is posted, the rows are not (or the
    # commit's fate is unknown); the error says what was committed and what to run, and the re-run
    # finishes the credit exactly once
    with pytest.raises(AfterCommitError) as err:
        apply(faults=cut)
    text = str(err.value)
    assert isinstance(err.value.__cause__, CreditOutcomeUnknown), err.value.__cause__
    assert "committed CFS credit memo" in text and "re-run the same apply" in text, text
    assert f"paynb pad credit resume --key {plan.body['idempotency_key']}" in text, text
    proxy.restore()
    apply()
    return f"paydb@{step}"
