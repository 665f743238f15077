"""Routing slip void: bad inputs and failing preconditions are refused with a clear error naming what
is wrong, and nothing is written (pay-db, CFS, ledger intents). Also show, the CLI and the happy paths."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.pool import NullPool

from paynb.errors import ConfirmMismatch, InputError, PaynbError, PlanEditedError, StalePlanError
from paynb.ops.routing_slips.apply import apply_void
from paynb.ops.routing_slips.plan import OperatorNotAllowed, VoidBlocked, plan_void
from paynb.ops.routing_slips.show import show_slip
from paynb.plan import Plan
from tests.rs_world import RsWorld, open_world


@pytest.fixture
def world(empty_db_url: str, tmp_path: Path) -> Iterator[RsWorld]:
    yield from open_world(empty_db_url, tmp_path)


def snapshot(w: RsWorld) -> dict[str, Any]:
    eng = sa.create_engine(w.db_url, poolclass=NullPool)
    try:
        with eng.connect() as c:
            q = lambda sql: c.execute(sa.text(sql)).all()  # noqa: E731
            snap = {
                "slips": q(
                    "SELECT number, status, remaining_amount, cas_version_suffix FROM routing_slips ORDER BY id"
                ),
                "invoices": q("SELECT id, routing_slip FROM invoices ORDER BY id"),
                "cfs": q("SELECT id, status FROM cfs_accounts ORDER BY id"),
                "comments": q("SELECT count(*) FROM comments"),
            }
    finally:
        eng.dispose()
    with w.server.state.lock:
        snap["receipts"] = sorted((k[3], r["status"]) for k, r in w.server.state.receipts.items())
    db = Path(w.settings.data_dir) / "ledger.sqlite"
    if db.exists():
        eng = sa.create_engine(f"sqlite:///{db}", poolclass=NullPool)
        try:
            with eng.connect() as c:
                has = c.execute(
                    sa.text("SELECT count(*) FROM sqlite_master WHERE name = 'paynb_intents'")
                ).scalar()
                snap["intents"] = (
                    c.execute(sa.text("SELECT count(*) FROM paynb_intents")).scalar() if has else 0
                )
        finally:
            eng.dispose()
    return snap


PLAN_REFUSALS = [
    # (what, slip name or raw number, kwargs, error, words the message must hold)
    ("unknown number", "999999999", {}, InputError, "no routing slip 999999999"),
    ("not a number", "12ab", {}, InputError, "field 'number'"),
    ("empty reason", "ready", {"reason": "  "}, InputError, "field 'reason'"),
    ("reason too long", "ready", {"reason": "x" * 300}, InputError, "under 250"),
    ("bad ticket", "ready", {"ticket": "no spaces please"}, InputError, "field 'ticket'"),
    ("already void", "void", {}, VoidBlocked, "already void"),
    ("NSF slip", "nsf", {}, VoidBlocked, "status NSF"),
    ("refund requested on the slip", "refund_requested", {}, VoidBlocked, "status REFUND_REQUESTED"),
    ("unrefunded invoice", "blocked", {}, VoidBlocked, "is PAID"),
    ("refund pending approval", "refund_pending", {}, VoidBlocked, "PENDING_APPROVAL"),
    ("partial refund not processed", "partial_pending", {}, VoidBlocked, "refunds_partial"),
    ("a linked child", "parent.child0", {}, VoidBlocked, "void the parent"),
    ("child link job not run", "link_stuck", {}, VoidBlocked, "link job has not run"),
    ("CFS account not active", "cfs_inactive", {}, VoidBlocked, "is INACTIVE"),
    ("receipt already reversed", "receipt_reversed", {}, VoidBlocked, "is REV"),
    ("receipt not in CFS", "receipt_missing", {}, VoidBlocked, "is MISSING"),
]


@pytest.mark.parametrize(
    ("what", "slip", "kwargs", "error", "words"), PLAN_REFUSALS, ids=[p[0] for p in PLAN_REFUSALS]
)
def test_plan_refuses(world: RsWorld, what: str, slip: str, kwargs: dict, error: type, words: str) -> None:
    w = world
    before = snapshot(w)
    number = w.numbers.get(slip, slip)
    args = {"reason": "cheque returned", "ticket": "OPS-9", **kwargs}
    with pytest.raises(error) as caught:
        plan_void(number, env=w.env(), **args)
    assert words in str(caught.value), str(caught.value)
    assert snapshot(w) == before


def _applied_refusal(w: RsWorld, mutate: str) -> PaynbError:
    plan = plan_void(
        w.numbers["ready"], reason="cheque returned", ticket="OPS-9", reverse_receipts=True, env=w.env()
    )
    before = snapshot(w)
    env = w.env()
    confirm = plan.sha256
    if mutate == "operator":
        env = w.env(operator="mallory")
    elif mutate == "no operators":
        from dataclasses import replace

        from paynb.context import Env

        env = Env(
            settings=replace(w.settings, rs_void_operators=""), operator="ops-alice", overrides=env.overrides
        )
    elif mutate == "confirm":
        confirm = "0" * 64
    elif mutate == "stale":
        w.execute("UPDATE routing_slips SET remaining_amount = 1 WHERE number = :n", n=w.numbers["ready"])
        before = snapshot(w)
    elif mutate == "edited":
        import copy

        raw = copy.deepcopy(plan.to_dict())
        raw["body"]["invoices"] = raw["body"]["invoices"][:1]
        plan = Plan.from_dict({**raw, "sha256": plan.sha256})
    elif mutate == "other kind":
        plan = Plan(kind="pad.partial_credit", body=plan.body)
        confirm = plan.sha256
    with pytest.raises(PaynbError) as caught:
        apply_void(plan, confirm, env=env)
    assert snapshot(w) == before
    return caught.value


@pytest.mark.parametrize(
    ("mutate", "error", "words"),
    [
        ("operator", OperatorNotAllowed, "'mallory' may not void"),
        ("no operators", OperatorNotAllowed, "PAYNB_RS_VOID_OPERATORS is empty"),
        ("confirm", ConfirmMismatch, "does not match"),
        ("stale", StalePlanError, "the data changed"),
        ("edited", PlanEditedError, "was edited"),
        ("other kind", PaynbError, "pad.partial_credit"),
    ],
)
def test_apply_refuses_and_writes_nothing(world: RsWorld, mutate: str, error: type, words: str) -> None:
    err = _applied_refusal(world, mutate)
    assert isinstance(err, error) and words in str(err), str(err)


def test_show_reports_checks_receipts_and_situations(world: RsWorld) -> None:
    w = world
    found = show_slip(w.numbers["parent"], env=w.env())
    assert [c["number"] for c in found["children"]] == [w.numbers["parent.child0"]]
    assert {r["status"] for r in found["receipts"]} == {"APP"}
    assert [s["situation"] for s in found["situations"]] == ["void_ready"]
    blocked = show_slip(w.numbers["blocked"], env=w.env())
    assert blocked["situations"][0]["situation"] == "void_blocked"
    nsf = show_slip(w.numbers["nsf"], env=w.env())
    assert "nsf_lock" in [s["situation"] for s in nsf["situations"]]
    stuck = show_slip(w.numbers["link_stuck.child0"], env=w.env())
    assert "link_stuck" in [s["situation"] for s in stuck["situations"]]


def test_cli_show_plan_apply(world: RsWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from paynb.cli import cli
    from tests.test_rs_void_faults import _kill_env

    for k, v in _kill_env(world, tmp_path).items():
        monkeypatch.setenv(k, v)
    runner = CliRunner()
    number = world.numbers["hold"]
    shown = runner.invoke(cli, ["routing-slip", "show", number, "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["slip"]["status"] == "HOLD"
    refused = runner.invoke(
        cli, ["routing-slip", "void", "plan", world.numbers["blocked"], "--reason", "r", "--ticket", "OPS-2"]
    )
    assert refused.exit_code == 7 and "is PAID" in refused.output
    out = tmp_path / "void.json"
    planned = runner.invoke(
        cli,
        [
            "routing-slip",
            "void",
            "plan",
            number,
            "--reason",
            "cheque returned",
            "--ticket",
            "OPS-3",
            "--reverse-receipts",
            "--out",
            str(out),
            "--json",
        ],
    )
    assert planned.exit_code == 0, planned.output
    sha = json.loads(planned.output)["sha256"]
    bad = runner.invoke(
        cli, ["routing-slip", "void", "apply", "--plan", str(out), "--confirm", sha, "--operator", "mallory"]
    )
    assert bad.exit_code == 7 and "may not void" in bad.output
    done = runner.invoke(
        cli, ["routing-slip", "void", "apply", "--plan", str(out), "--confirm", sha, "--json"]
    )
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["verification"]["verified"]
    assert world.state("hold")["status"] == "VOID"
