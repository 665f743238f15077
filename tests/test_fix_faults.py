"""Fault campaign over the three write paths (EJV redate, settlement replay, statement generation): seeded
random faults at step boundaries (a kill before or after a store write or the pay-db commit, a pay-db
outage, a store outage), then the operator's recovery (apply again; on "the data changed", plan again and
apply). Every sequence must end consistent: the write happened exactly once, and the ledger says so.

A kill is simulated in-process: a ``Killed`` (BaseException) raised at the step, with ``apply-failed``
suppressed, so the ledger holds what a SIGKILL leaves: ``apply-started`` and the intents written so far.
Outages are real: a pay-db engine on a closed port, a store whose ``put`` fails (the S3 server itself is
shared by the session, so it is not stopped).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from paynb.context import Env
from paynb.errors import PaynbError, StalePlanError, StoreError
from paynb.fixes import apply_fix, protocol
from paynb.ledger import open_ledger
from paynb.settings import get_settings
from paynb.store import Store
from tests import pad_scenarios
from tests.fix_ledger import LedgerView
from tests.toy_fix import role_urls

pad_env = pad_scenarios.pad_env  # the fixture

SEEDS = range(8)  # per path: 24 sequences in all


class Killed(BaseException):
    """The process died here."""


class Faults:
    """One planned fault: ``step`` is where it strikes, ``kind`` what it is (kill or error)."""

    def __init__(self, step: str, kind: str) -> None:
        self.step = step
        self.kind = kind
        self.fired = False

    def hit(self, step: str) -> None:
        if self.fired or step != self.step:
            return
        self.fired = True
        if self.kind == "kill":
            raise Killed(step)
        raise StoreError(f"injected store outage at {step}")


class FaultyStore(Store):
    """A real store whose ``put`` passes the fault points around each write."""

    def __init__(self, inner: Store, faults: Faults) -> None:
        self.inner = inner
        self.url = inner.url
        self.faults = faults
        self.puts = 0

    def list(self, prefix: str = "", recursive: bool = True, *, start_after: str | None = None):  # type: ignore[no-untyped-def]
        return self.inner.list(prefix, recursive, start_after=start_after)

    def get(self, key: str, *, version_id: str | None = None, verify: bool = True) -> bytes:
        return self.inner.get(key, version_id=version_id, verify=verify)

    def stat(self, key: str, *, version_id: str | None = None):  # type: ignore[no-untyped-def]
        return self.inner.stat(key, version_id=version_id)

    def put(self, key, data, *, metadata=None, content_type=None, overwrite=False):  # type: ignore[no-untyped-def]
        self.puts += 1
        self.faults.hit(f"before_put_{self.puts}")
        out = self.inner.put(key, data, metadata=metadata, content_type=content_type, overwrite=overwrite)
        self.faults.hit(f"after_put_{self.puts}")
        return out

    def url_for(self, key: str) -> str:
        return self.inner.url_for(key)


@pytest.fixture
def kill_switch(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Faults]]:
    """Install the fault points around the pay-db commit, and make a kill leave no apply-failed entry."""
    active: list[Faults] = []
    original_tx = protocol.FixRun.transaction
    original_failure = protocol._record_failure

    @contextmanager
    def transaction(self: protocol.FixRun) -> Iterator[Any]:
        with original_tx(self) as conn:
            yield conn
            for f in active:
                f.hit("before_commit")
        for f in active:
            f.hit("after_commit")

    def record_failure(ledger: Any, started: Any, exc: BaseException, run: Any) -> None:
        if not isinstance(exc, Killed):
            original_failure(ledger, started, exc, run)

    monkeypatch.setattr(protocol.FixRun, "transaction", transaction)
    monkeypatch.setattr(protocol, "_record_failure", record_failure)
    yield active


def _dead_engine() -> sa.Engine:
    return sa.create_engine(
        "postgresql+psycopg2://paynb@127.0.0.1:1/pay?connect_timeout=1", poolclass=NullPool
    )


def _attempt(apply: Any) -> str:
    """Run one apply; what happened: ok, killed, or the error class."""
    try:
        apply()
    except Killed:
        return "killed"
    except PaynbError as err:
        return type(err).__name__
    except sa.exc.SQLAlchemyError as err:
        return type(err).__name__
    return "ok"


def _recover(make_plan: Any, apply: Any) -> Any:
    """The operator: apply the reviewed plan again; if the data changed, plan again and apply that."""
    plan = make_plan()
    try:
        return apply(plan)
    except StalePlanError:
        return apply(make_plan())


def _ledger_story(kind: str) -> list[tuple[str, str]]:
    return [(event, status) for event, k, status in LedgerView().applies() if k == kind]


# -- EJV redate ---------------------------------------------------------------------------------------------
EJV_FAULTS = [
    ("before_put_1", "kill"),
    ("after_put_1", "kill"),
    ("after_put_2", "kill"),
    ("before_put_1", "store"),
    ("before_put_2", "store"),
    ("pay_db", "outage"),
]


@pytest.fixture
def ejv(sandbox_db_url: str, s3_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    from tests.test_ejv_support import make_ejv_sandbox

    return make_ejv_sandbox(sandbox_db_url, s3_server, tmp_path, monkeypatch)


@pytest.mark.parametrize("seed", SEEDS)
def test_ejv_redate_under_faults(seed: int, ejv: Any, kill_switch: list[Faults]) -> None:
    from paynb.ops.ejv.redate import RedateFix
    from tests.test_ejv_redate import _as_of, _no_feedback_file, _poller_moves

    rng = random.Random(seed)
    step, kind = rng.choice(EJV_FAULTS)
    poller_runs = rng.random() < 0.5  # the SFTP poller moves what it finds before the operator recovers
    _file_id, file_ref = _no_feedback_file(ejv)
    faults = Faults(step, kind)
    kill_switch.append(faults)
    today = _as_of(ejv)
    env = Env(settings=get_settings())
    plan = RedateFix(today=today).plan(env, files=[file_ref])
    (f,) = plan.body["files"]

    faulty = RedateFix(store=FaultyStore(ejv.store, faults), today=today)
    if kind == "outage":
        env_down = Env(settings=env.settings, overrides={"engine": _dead_engine()})
        outcome = _attempt(lambda: apply_fix(faulty, plan, plan.sha256, env=env_down))
    else:
        outcome = _attempt(lambda: apply_fix(faulty, plan, plan.sha256, env=env))
    assert outcome != "ok", (step, kind)
    present = {k for k in (f["target"]["key"], f["trigger"]["key"]) if ejv.store.stat(k) is not None}
    story = _ledger_story("ejv.inbox_redate")
    if kind == "outage":
        assert present == set() and story == []  # refused while re-planning: nothing written, nothing chained
    else:
        assert story and story[0][0] == "started"
        intents = {i.payload["object"]: i.state for i in open_ledger(env.settings).all_intents()}
        for key in present:  # every object written is journalled as an intent
            assert ejv.store.url_for(key) in intents
    if poller_runs and present:
        _poller_moves(ejv, *(k.split("/", 1)[1] for k in sorted(present)))

    kill_switch.clear()
    result = _recover(lambda: plan, lambda p: apply_fix(RedateFix(today=today), p, p.sha256, env=env))
    # exactly once: one copy of each object, in cgi_processing/ or (moved) cgi_processed/, never both
    for obj in (f["target"], f["trigger"]):
        where = [
            folder
            for folder in ("cgi_processing/", "cgi_processed/")
            if ejv.store.stat(folder + obj["name"]) is not None
        ]
        assert len(where) == 1, (obj["name"], where)
    copies = [o.key for o in ejv.store.list("cgi_processing/")] + [
        o.key for o in ejv.store.list("cgi_processed/") if o.key.endswith(f["target"]["name"][-14:])
    ]
    assert sum(1 for k in copies if k.endswith(f["target"]["name"])) == 1
    expected = "already_applied" if len(present) == 2 else "applied"
    assert result.outcome.status == expected
    assert _ledger_story("ejv.inbox_redate")[-1] == ("finished", expected)
    assert all(i.state == "confirmed" for i in open_ledger(env.settings).all_intents())


# -- settlement replay ----------------------------------------------------------------------------------------
SETTLEMENT_FAULTS = [
    ("before_put_1", "kill"),
    ("after_put_1", "kill"),
    ("before_commit", "kill"),
    ("after_commit", "kill"),
    ("before_put_1", "store"),
    ("pay_db", "outage"),
]


@pytest.mark.parametrize("seed", SEEDS)
def test_settlement_replay_under_faults(seed: int, pad_env: Any, kill_switch: list[Faults]) -> None:
    from paynb.ops.settlements import ReplayFix
    from paynb.store import open_store
    from tests.pad_scenarios import day_name

    rng = random.Random(100 + seed)
    step, kind = rng.choice(SETTLEMENT_FAULTS)
    name = day_name(rng.choice([8, 10]))  # failed mid-way (guard row, processed_on NULL) or never processed
    store = open_store(f"s3://{pad_env.bucket}", pad_env.settings)
    faults = Faults(step, kind)
    kill_switch.append(faults)
    env = Env(settings=get_settings())
    fix = ReplayFix(store=FaultyStore(store, faults), legacy_store=None)
    plan = fix.plan(env, file=f"ar/{name}")
    key = plan.body["filtered_csv"]["key"]

    if kind == "outage":
        env_down = Env(settings=env.settings, overrides={"write_engine": _dead_engine()})
        outcome = _attempt(lambda: apply_fix(fix, plan, plan.sha256, env=env_down))
    else:
        outcome = _attempt(lambda: apply_fix(fix, plan, plan.sha256, env=env))
    assert outcome != "ok", (step, kind)
    written = store.stat(key) is not None
    guard_done = _guard(pad_env, name) == [True]
    story = _ledger_story("settlement.replay")
    if kind == "outage":  # the CSV went out, then pay-db refused: the error says what was committed
        assert outcome == "AfterCommitError" and written and not guard_done
        assert story[-1][0] == "failed"
    if guard_done:
        assert written  # the object is always first

    kill_switch.clear()
    result = _recover(
        lambda: ReplayFix(store=store).plan(env, file=f"ar/{name}"),
        lambda p: apply_fix(ReplayFix(store=store), p, p.sha256, env=env),
    )
    assert sum(1 for o in store.list("ar/") if ".replay-" in o.key) == 1
    assert _guard(pad_env, name) == [True]  # one guard row for the original, closed
    expected = "already_applied" if guard_done else "applied"
    assert result.outcome.status == expected
    assert _ledger_story("settlement.replay")[-1] == ("finished", expected)


def _guard(pad: Any, name: str) -> list[bool]:
    with pad.world.engine.connect() as c:
        rows = c.execute(
            sa.text("SELECT processed_on IS NOT NULL FROM cas_settlements WHERE file_name = :f ORDER BY id"),
            {"f": name},
        ).all()
    return [bool(r[0]) for r in rows]


# -- statement generation -----------------------------------------------------------------------------------
STATEMENT_FAULTS = [("before_commit", "kill"), ("after_commit", "kill"), ("pay_db", "outage")]


@pytest.mark.parametrize("seed", SEEDS)
def test_statement_generation_under_faults(
    seed: int, empty_db_url: str, monkeypatch: pytest.MonkeyPatch, kill_switch: list[Faults]
) -> None:
    from paynb.ops.statements.apply import GenerateFix
    from tests.test_statements_rules import RUN, Data

    rng = random.Random(200 + seed)
    step, kind = rng.choice(STATEMENT_FAULTS)
    for name, value in role_urls(empty_db_url).items():  # reader and writer roles (docs/roles.md)
        monkeypatch.setenv(name, value)
    data = Data(empty_db_url)
    for n in range(rng.randint(1, 3)):
        a = data.account(f"{9100 + n}")
        data.setting(a, "DAILY", "2025-06-01")
        data.invoice(a, "2025-06-05 20:00:00")
    day = "2025-06-05"
    env = Env(settings=get_settings())
    fix = GenerateFix(run_time=RUN)
    params = {"from_date": day, "to_date": day, "account": None, "override": True, "missing_only": False}
    plan = fix.plan(env, **params)
    faults = Faults(step, kind)
    kill_switch.append(faults)
    if kind == "outage":
        env_down = Env(settings=env.settings, overrides={"write_engine": _dead_engine()})
        outcome = _attempt(lambda: apply_fix(fix, plan, plan.sha256, env=env_down))
    else:
        outcome = _attempt(lambda: apply_fix(fix, plan, plan.sha256, env=env))
    assert outcome != "ok"
    committed = len(data.statements(day)) > 0
    assert committed == (step == "after_commit")  # a kill before the commit or an outage writes nothing
    story = _ledger_story("statements.generate")
    assert story[0][0] == "started" and ("finished", "applied") not in story

    kill_switch.clear()
    result = _recover(
        lambda: GenerateFix(run_time=RUN).plan(env, **params),
        lambda p: apply_fix(GenerateFix(run_time=RUN), p, p.sha256, env=env),
    )
    rows = data.statements(day)
    assert len(rows) == len({(r["account"], r["frequency"]) for r in rows})  # one statement per period
    assert result.outcome.status in (("applied", "nothing_to_do") if committed else ("applied",))
    assert _ledger_story("statements.generate")[-1][0] == "finished"
    data.engine.dispose()
