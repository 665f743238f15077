"""Routing slip void fault injection: a crash at every step boundary (both modes, with and without a child
slip), random crashes with CFS faults and lost answers, and SIGKILLed processes; then re-runs.

Whatever happens, the slip ends untouched or fully voided with its invoices re-associated, each receipt is
reversed once, and (``reverse_receipts`` mode) no receipt is ever reversed while an invoice is detached.
In ``job`` mode sbc-pay's job itself reverses the receipts while the invoices are detached (it refuses a
slip with invoices); paynb re-attaches them on the next apply (docs/routing-slips.md).

Crashes are raised from the ``faults`` hook as a ``BaseException`` (no ``except Exception`` can swallow
them, like a real kill); lost answers are the CFS server's ``drop_rate``/``fail_next`` knobs.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from paynb import ledger
from paynb.errors import AfterCommitError, CfsError
from paynb.ops.routing_slips.apply import JOB_STEPS, VoidWaitingForJob, apply_void
from paynb.ops.routing_slips.plan import plan_void
from paynb.plan import Plan
from paynb.sandbox.routing_slips import run_void_job
from tests.rs_world import CONNECTOR, FAS_ID, FAS_SECRET, OPERATOR, RsWorld, open_world

pytestmark = pytest.mark.faults

SEED = int(os.environ.get("RS_FAULT_SEED", "20261205"))
SEQUENCES = int(os.environ.get("RS_FAULT_SEQUENCES", "12"))


class Crash(BaseException):
    """A simulated crash at a step boundary."""


def crash_at(step: str):
    def hook(name: str) -> None:
        if name == step:
            raise Crash(step)

    return hook


def reverse_steps(receipts: int) -> list[str]:
    per = [s for i in range(receipts) for s in (f"before_reverse:{i}", f"after_reverse:{i}")]
    return [
        "before_void_tx",
        "mid_void_tx",
        "after_void_tx",
        *per,
        "before_finish_tx",
        "after_finish_tx",
        "after_done",
    ]


CASES = [
    *[("reverse_receipts", "ready", s) for s in reverse_steps(1)],
    *[("reverse_receipts", "parent", s) for s in reverse_steps(2)],
    *[("job", "ready", s) for s in JOB_STEPS],
    *[("job", "parent", s) for s in JOB_STEPS],
]
assert len(CASES) >= 30


@pytest.fixture
def world(empty_db_url: str, tmp_path: Path) -> Iterator[RsWorld]:
    yield from open_world(empty_db_url, tmp_path)


def _plan(w: RsWorld, name: str, mode: str, ticket: str = "OPS-1") -> Plan:
    return plan_void(
        w.numbers[name],
        reason="cheque returned",
        ticket=ticket,
        reverse_receipts=mode == "reverse_receipts",
        env=w.env(),
    )


def _apply(w: RsWorld, plan: Plan, **overrides: Any) -> Any:
    return apply_void(plan, plan.sha256, env=w.env(**overrides))


def _job(w: RsWorld) -> list[str]:
    eng = sa.create_engine(w.db_url, poolclass=NullPool)
    try:
        with eng.connect() as conn:
            return run_void_job(conn, w.fas())
    finally:
        eng.dispose()


def assert_at_rest(w: RsWorld, name: str, plan: Plan, *, job_ran: bool = False) -> str:
    """The slip is in one of the states a crash may leave; returns which. In every one of them a reversed
    receipt means the slip is VOID with every planned invoice attached (job mode: unless the job reversed
    it and paynb has not re-attached yet, which is ``job_done``)."""
    s = w.state(name)
    ids = sorted(int(i["id"]) for i in plan.body["invoices"])
    rev = [r for r, st in s["receipts"].items() if st == "REV"]
    assert len(s["receipts"]) == len(plan.body["receipts"])
    if s["status"] == plan.body["slip"]["status"]:
        assert (s["attached"], rev, s["suffix"], s["cfs_account"]) == (ids, [], 1, "ACTIVE"), s
        return "untouched"
    assert s["status"] == "VOID", s
    if s["suffix"] == 2 and s["attached"] == ids and len(rev) == len(s["receipts"]):
        assert s["cfs_account"] == "INACTIVE" and s["remaining"] == 0, s
        return "voided"
    if plan.body["mode"] == "reverse_receipts":
        assert s["attached"] == ids and s["cfs_account"] == "INACTIVE" and s["suffix"] == 1, s
        return "voided, reversing"
    if s["attached"] == [] and not rev:
        assert s["cfs_account"] == "ACTIVE" and s["suffix"] == 1, s
        return "waiting for job"
    assert job_ran and s["attached"] == [] and len(rev) == len(s["receipts"]) and s["suffix"] == 2, s
    return "job done"


def assert_fully_voided(w: RsWorld, name: str, plan: Plan) -> None:
    assert assert_at_rest(w, name, plan, job_ran=True) == "voided"
    intent = ledger.get_intent(plan.body["key"], settings=w.settings)
    assert intent is not None and intent.state == "confirmed"
    # each receipt reversed exactly once: CFS refuses a second reversal, so a second call would have failed
    paths = w.server.stats()["paths"]
    for r in plan.body["receipts"]:
        calls = sum(
            n
            for p, n in paths.items()
            if p.startswith("POST ") and p.endswith(f"/rcpts/{r['receipt_number']}/reverse")
        )
        assert calls <= 1, (r["receipt_number"], calls)


def waiting(err: BaseException) -> bool:
    """The apply stopped because sbc-pay's job has not run (raised as is on a resumed apply, wrapped in
    AfterCommitError when this apply committed the detach)."""
    return isinstance(err, VoidWaitingForJob) or isinstance(err.__cause__, VoidWaitingForJob)


def finish(w: RsWorld, plan: Plan, name: str, *, rounds: int = 6) -> Any:
    """Re-run the apply (running the job when it waits for it) until it is done."""
    for _ in range(rounds):
        try:
            return _apply(w, plan)
        except (AfterCommitError, VoidWaitingForJob) as err:
            if not waiting(err):
                raise
            assert assert_at_rest(w, name, plan) == "waiting for job"
            _job(w)
            assert assert_at_rest(w, name, plan, job_ran=True) in ("job done", "voided")
    raise AssertionError(f"{name} did not converge")


@pytest.mark.parametrize(("mode", "name", "step"), CASES, ids=[f"{m}-{n}-{s}" for m, n, s in CASES])
def test_crash_at_each_boundary_then_rerun(world: RsWorld, mode: str, name: str, step: str) -> None:
    w = world
    plan = _plan(w, name, mode)
    w.server.reset_stats()
    with pytest.raises((Crash, AfterCommitError)) as caught:
        _apply(w, plan, faults=crash_at(step))
    if caught.type is AfterCommitError:  # job mode stops before the job ran: that is not the crash yet
        assert isinstance(caught.value.__cause__, VoidWaitingForJob) and mode == "job"
        assert assert_at_rest(w, name, plan) == "waiting for job"
        _job(w)
        with pytest.raises(Crash):
            _apply(w, plan, faults=crash_at(step))
    state = assert_at_rest(w, name, plan, job_ran=True)
    if step in ("before_void_tx", "mid_void_tx", "before_detach_tx", "mid_detach_tx"):
        assert state == "untouched"
    result = finish(w, plan, name)
    assert result.outcome.status in ("applied", "resumed", "already_applied")
    assert result.verification["verified"]
    assert_fully_voided(w, name, plan)
    again = _apply(w, plan)
    assert again.outcome.status == "already_applied"
    assert_fully_voided(w, name, plan)


def test_lost_reversal_answer_is_settled_by_reading_the_receipt(world: RsWorld) -> None:
    w = world
    plan = _plan(w, "parent", "reverse_receipts")
    w.server.set_knobs(fail_next=[[r"/rcpts/[^/]+/reverse$", 0]])  # drop the connection before acting
    with pytest.raises(AfterCommitError):
        _apply(w, plan)
    assert assert_at_rest(w, "parent", plan) == "voided, reversing"
    # the next reversal acts, then its answer is lost half-way
    w.server.set_knobs(drop_rate=1.0)
    with pytest.raises((AfterCommitError, CfsError)):
        _apply(w, plan)
    w.server.set_knobs(drop_rate=0.0)
    assert assert_at_rest(w, "parent", plan) in ("voided, reversing", "voided")
    result = _apply(w, plan)
    assert result.verification["verified"]
    # the dropped calls reached the server (its counters) but CFS acted once per receipt: a second
    # reversal would have been refused with 400 and failed the apply
    assert assert_at_rest(w, "parent", plan) == "voided"


def test_randomized_crashes_and_cfs_faults(world: RsWorld) -> None:
    """Random slips (0-2 children), random mode, 1-3 crashes at random boundaries, random CFS faults and
    dropped answers; the job runs at random moments. Every slip ends fully voided, at every rest point
    the invariant holds, and no receipt is reversed twice."""
    w = world
    rng = random.Random(SEED)
    crashes = waits = faults = 0
    for n in range(SEQUENCES):
        name = f"rnd{n}"
        kids = rng.randint(0, 2)
        w.add_slip(name, children=kids, invoices=rng.randint(1, 3))
        mode = rng.choice(["reverse_receipts", "job"])
        plan = _plan(w, name, mode, ticket=f"RND-{n}")
        steps = reverse_steps(1 + kids) if mode == "reverse_receipts" else list(JOB_STEPS)
        pending = [rng.choice(steps) for _ in range(rng.randint(1, 3))]
        noisy = rng.random() < 0.4
        if noisy:
            w.server.set_knobs(fault_rate=0.15, drop_rate=0.1, seed=n)
            faults += 1
        job_ran = False
        done = None
        for _attempt in range(30):
            step = pending.pop(0) if pending else None
            try:
                done = _apply(w, plan, faults=crash_at(step) if step else None)
                break
            except Crash:
                crashes += 1
            except (AfterCommitError, VoidWaitingForJob) as err:
                if waiting(err):
                    waits += 1
                    if rng.random() < 0.8:
                        w.server.set_knobs(fault_rate=0.0, drop_rate=0.0)
                        _job(w)
                        job_ran = True
                        if noisy:
                            w.server.set_knobs(fault_rate=0.15, drop_rate=0.1)
            except CfsError:
                crashes += 1  # CFS kept failing: the operator re-runs
            w.server.set_knobs(fault_rate=0.0, drop_rate=0.0)
            assert_at_rest(w, name, plan, job_ran=job_ran)
            if noisy:
                w.server.set_knobs(fault_rate=0.15, drop_rate=0.1)
        w.server.set_knobs(fault_rate=0.0, drop_rate=0.0)
        assert done is not None, f"sequence {n} ({mode}) did not converge"
        assert done.verification["verified"]
        assert assert_at_rest(w, name, plan, job_ran=True) == "voided"
        assert _apply(w, plan).outcome.status == "already_applied"
    print(
        f"\nrouting slip void faults: {SEQUENCES} random sequences (seed {SEED}), {crashes} crashes, "
        f"{waits} waits for the job, {faults} noisy CFS runs"
    )


KILL_SCRIPT = """
import os, signal, sys
from paynb.ops.routing_slips.apply import apply_void
from paynb.plan import Plan

step = sys.argv[2]

def die(name):
    if name == step:
        os.kill(os.getpid(), signal.SIGKILL)

plan = Plan.read(sys.argv[1])
apply_void(plan, plan.sha256, faults=die)
print("not killed")
"""


def _kill_env(w: RsWorld, tmp_path: Path) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("PAYNB_")},
        "PAYNB_ENVIRONMENT": "test",
        "PAYNB_DATABASE_URL": w.settings.database_url.reveal(),  # the reader and writer roles
        "PAYNB_DATABASE_WRITE_URL": w.settings.database_write_url.reveal(),
        "PAYNB_CFS_BASE_URL": w.server.url,
        "PAYNB_CFS_CLIENT_ID": "unused",
        "PAYNB_CFS_CLIENT_SECRET": "unused-secret",
        "PAYNB_CFS_FAS_CLIENT_ID": FAS_ID,
        "PAYNB_CFS_FAS_CLIENT_SECRET": FAS_SECRET,
        "PAYNB_PAY_CONNECTOR_AUTH": CONNECTOR,
        "PAYNB_DATA_DIR": str(w.settings.data_dir),
        "PAYNB_RS_VOID_OPERATORS": OPERATOR,
        "PAYNB_OPERATOR": OPERATOR,
        "PAYNB_ENV_FILE": str(tmp_path / "no.env"),
    }


@pytest.mark.parametrize("draw", range(4))
def test_random_sigkill_then_rerun(world: RsWorld, tmp_path: Path, draw: int) -> None:
    """A real process killed (SIGKILL) at a random boundary, then a re-run in this process."""
    w = world
    rng = random.Random(SEED + draw)
    mode = rng.choice(["reverse_receipts", "job"])
    name = "parent" if rng.random() < 0.5 else "ready"
    # job mode: the first apply stops at the wait for the job, so only its first transaction can be hit
    steps = reverse_steps(2 if name == "parent" else 1) if mode == "reverse_receipts" else list(JOB_STEPS[:3])
    step = rng.choice(steps)
    plan = _plan(w, name, mode)
    path = plan.write(tmp_path / "plan.json")
    proc = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, str(path), step],
        env=_kill_env(w, tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert proc.returncode == -signal.SIGKILL, (step, proc.stdout[-500:], proc.stderr[-2000:])
    assert_at_rest(w, name, plan)
    finish(w, plan, name)
    assert_fully_voided(w, name, plan)
