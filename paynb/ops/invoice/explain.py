"""``explain_invoices``: pay-db, CFS and the pay bucket's files about some invoices, a timeline, and a
diagnosis with the next command. Read-only everywhere (reader role, CFS GETs, store reads)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from paynb.canonical import to_jsonable
from paynb.context import Env, resolve_env
from paynb.errors import CfsError, InputError, PaynbError
from paynb.ops.invoice.diagnose import Situation, diagnose
from paynb.ops.invoice.facts import InvoiceFacts, load_facts
from paynb.ops.invoice.resolve import resolve_ids
from paynb.ops.invoice.timeline import Event, build_timeline
from paynb.timez import to_naive_utc, utcnow_naive

CFS_METHODS = frozenset({"PAD", "ONLINE_BANKING", "EFT"})
LIVE_REFERENCES = frozenset({"ACTIVE", "COMPLETED"})


@dataclass
class Explanation:
    invoice_id: int
    asked_as: tuple[str, ...]
    facts: InvoiceFacts
    cfs: dict[str, Any] = field(default_factory=dict)
    feedback: list[dict[str, Any]] = field(default_factory=list)
    csv_rows: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[Event] = field(default_factory=list)
    situations: list[Situation] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.situations

    def to_dict(self) -> dict[str, Any]:
        f = self.facts
        return to_jsonable(
            {
                "invoice_id": self.invoice_id,
                "asked_as": list(self.asked_as),
                "diagnosis": [s.to_dict() for s in self.situations] or "no trouble found",
                "pay_db": {
                    "invoice": f.invoice,
                    "account": f.account,
                    "cfs_accounts": f.cfs_accounts,
                    "lines": f.lines,
                    "references": f.references,
                    "payments": f.payments,
                    "receipts": f.receipts,
                    "refunds": f.refunds,
                    "refunds_partial": f.refunds_partial,
                    "credits": f.credits,
                    "statements": f.statements,
                    "ejv": f.ejv,
                    "partner_disbursements": f.partner_disbursements,
                    "nsf": f.nsf,
                    "routing_slip": f.routing_slip,
                },
                "cfs": self.cfs,
                "files": {"feedback": self.feedback, "settlement_csv": self.csv_rows},
                "timeline": [e.to_dict() for e in self.timeline],
                "problems": self.problems,
            }
        )


@dataclass
class ExplainReport:
    explanations: list[Explanation]
    unknown: tuple[str, ...]
    as_of: datetime

    @property
    def complete(self) -> bool:
        return not any(e.problems for e in self.explanations)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": 1,
            "as_of": to_jsonable(self.as_of),
            "unknown": list(self.unknown),
            "complete": self.complete,
            "invoices": [e.to_dict() for e in self.explanations],
        }


def explain_invoices(
    ids: Iterable[str | int],
    *,
    env: Env | None = None,
    now: datetime | None = None,
    use_cfs: bool = True,
    use_files: bool = True,
) -> ExplainReport:
    """Explain every invoice the ids name. Unknown ids are listed, not fatal, unless none is known."""
    env = resolve_env(env)
    as_of = to_naive_utc(now) if now else utcnow_naive()
    given = [str(i) for i in ids]
    with env.read() as conn:
        resolved = resolve_ids(conn, given)
        if not resolved.found:
            raise InputError(
                f"no invoice matches {', '.join(resolved.unknown)}",
                field="ID",
                hint="give pay-db invoice ids, REG numbers (invoice_references) or CFS numbers",
            )
        facts = load_facts(conn, resolved.invoice_ids)
    asked: dict[int, list[str]] = {}
    for raw, ids_for in resolved.found.items():
        for i in ids_for:
            asked.setdefault(i, []).append(raw)
    explanations = [Explanation(i, tuple(asked[i]), facts[i]) for i in resolved.invoice_ids if i in facts]
    if use_cfs:
        _add_cfs(env, explanations)
    if use_files:
        _add_feedback(env, explanations)
        _add_csv_rows(env, explanations)
    verdicts = _pad_verdicts(env, explanations, as_of) if use_cfs else {}
    for e in explanations:
        statements = _statement_findings(env, e, as_of)
        e.timeline = build_timeline(e.facts, feedback=e.feedback, csv_rows=e.csv_rows)
        e.situations = diagnose(
            e.facts,
            as_of=as_of,
            pad_verdict=verdicts.get(e.invoice_id),
            memos=e.cfs.get("credit_memos", []),
            statement_findings=statements,
        )
    return ExplainReport(explanations, resolved.unknown, as_of)


def _site(facts: InvoiceFacts) -> dict[str, Any] | None:
    method = facts.invoice["payment_method_code"]
    same = [c for c in facts.cfs_accounts if c.get("payment_method") == method]
    live = [c for c in same if c.get("status") != "INACTIVE"] or same
    row = max(live, key=lambda c: c["id"]) if live else None
    if row and row.get("cfs_party") and row.get("cfs_account") and row.get("cfs_site"):
        return row
    return None


def _add_cfs(env: Env, explanations: list[Explanation]) -> None:
    wanted = [e for e in explanations if e.facts.invoice["payment_method_code"] in CFS_METHODS]
    if not wanted:
        return
    try:
        client = env.cfs
    except PaynbError as err:
        for e in wanted:
            e.problems.append(f"CFS not read: {str(err).splitlines()[0]}")
        return
    cache: dict[tuple[str, ...], Any] = {}
    for e in wanted:
        site = _site(e.facts)
        numbers = [r["invoice_number"] for r in e.facts.references if r.get("status_code") in LIVE_REFERENCES]
        if site is None or not numbers:
            continue
        where = (site["cfs_party"], site["cfs_account"], site["cfs_site"])
        invoices, memos = [], {}
        for number in dict.fromkeys(numbers):
            key = (*where, number)
            try:
                if key not in cache:
                    found = client.get_invoice(*where, number)
                    cache[key] = (found, client.list_credit_memos_for_invoice(*where, number))
                found, found_memos = cache[key]
            except CfsError as err:
                if getattr(err, "status", None) == 404:
                    invoices.append({"invoice_number": number, "status": "not_found"})
                    continue
                e.problems.append(f"CFS {number}: {str(err).splitlines()[0]}")
                continue
            invoices.append(found)
            for m in found_memos:
                memos[str(m.get("credit_memo_number"))] = m
        e.cfs = {
            "site": dict(zip(("party", "account", "site"), where, strict=True)),
            "invoices": invoices,
            "credit_memos": list(memos.values()),
        }


def _add_feedback(env: Env, explanations: list[Explanation]) -> None:
    wanted = [e for e in explanations if e.facts.ejv or e.facts.partner_disbursements]
    if not wanted:
        return
    from paynb.ops.ejv.search import search_feedback

    try:
        result = search_feedback(
            [e.invoice_id for e in wanted], settings=env.settings, progress=False, since=_files_since(wanted)
        )
    except PaynbError as err:
        for e in wanted:
            e.problems.append(f"FEEDBACK/INBOX files not searched: {str(err).splitlines()[0]}")
        return
    by_id: dict[int, list[dict[str, Any]]] = {}
    for m in result.mentions:
        by_id.setdefault(m.invoice_id, []).append(m.to_dict())
    for e in wanted:
        e.feedback = by_id.get(e.invoice_id, [])
        if result.problems:
            e.problems.extend(f"{p.file}: {p.error}" for p in result.problems[:5])


# FEEDBACK names are stamped in Pacific time, INBOX names in UTC: two days covers either, and a clock skew
FILES_SLACK = timedelta(days=2)


def _files_since(wanted: list[Explanation]) -> datetime | None:
    """The earliest time a file could name one of these invoices: none is in an INBOX before it exists."""
    created = [e.facts.invoice.get("created_on") for e in wanted]
    if not created or any(not isinstance(c, datetime) for c in created):
        return None
    return min(created) - FILES_SLACK


def _add_csv_rows(env: Env, explanations: list[Explanation]) -> None:
    wanted = [
        e for e in explanations if e.facts.invoice["payment_method_code"] in CFS_METHODS and e.facts.numbers
    ]
    if not wanted:
        return
    from paynb.formats.settlement_csv import parse_settlement_csv
    from paynb.ops import settlements as st

    since = min(e.facts.invoice["created_on"] for e in wanted).date() - timedelta(days=1)
    sources, problems = st.settlement_sources(env.settings)
    refs, list_problems = st.list_settlement_files(sources, since=since)
    problems += list_problems
    numbers = {n: e for e in wanted for n in e.facts.numbers}
    for ref in refs:
        try:
            parsed = parse_settlement_csv(st.read_settlement_ref(ref, sources), file=ref.ref)
        except PaynbError as err:
            problems.append(str(err).splitlines()[0])
            continue
        for row in parsed.rows:
            owner = numbers.get(row.target_transaction_number)
            if owner is None:
                continue
            owner.csv_rows.append(
                {
                    "file": ref.ref,
                    "file_name": ref.file_name,
                    "line": row.line_number,
                    "record_type": row.record_type,
                    "status": row.target_transaction_status,
                    "amount": row.application_amount,
                    "application_date": row.application_date,
                    "nsf_risk": row.is_nsf_risk,
                }
            )
    if problems:
        for e in wanted:
            e.problems.extend(problems[:5])


def _pad_verdicts(env: Env, explanations: list[Explanation], as_of: datetime) -> dict[int, dict[str, Any]]:
    """The PAD triage's verdict for each APPROVED PAD invoice (triage is the one classifier)."""
    stuck = [
        e
        for e in explanations
        if e.facts.invoice["payment_method_code"] == "PAD"
        and e.facts.invoice["invoice_status_code"] == "APPROVED"
    ]
    verdicts: dict[int, dict[str, Any]] = {}
    from paynb.ops.pad.triage import triage_stuck_pad

    for account in sorted({(e.facts.account or {}).get("auth_account_id") for e in stuck} - {None}):
        try:
            report = triage_stuck_pad(
                days=0, account=account, settings=env.settings, now=as_of, progress=False
            )
        except PaynbError as err:
            for e in stuck:
                e.problems.append(f"PAD triage failed: {str(err).splitlines()[0]}")
            continue
        for e in stuck:
            if (e.facts.account or {}).get("auth_account_id") == account:
                try:
                    verdicts[e.invoice_id] = report.row(e.invoice_id).to_dict()
                except (KeyError, PaynbError):
                    continue
                if verdicts[e.invoice_id]["action"] == "unknown_retry":
                    e.problems.append(verdicts[e.invoice_id]["action_text"])
    return verdicts


def _statement_findings(env: Env, e: Explanation, as_of: datetime) -> dict[str, list[dict[str, Any]]]:
    account = (e.facts.account or {}).get("auth_account_id")
    created = e.facts.invoice["created_on"]
    if not account or not isinstance(created, datetime):
        return {}
    from paynb.ops.statements.gaps import find_statement_gaps
    from paynb.timez import pacific_date, pacific_today

    day = pacific_date(created)
    end = min(day + timedelta(days=40), pacific_today() - timedelta(days=1))
    if end < day:
        return {}
    try:
        report = find_statement_gaps(day, end, account=account, engine=env.engine)
    except PaynbError as err:
        e.problems.append(f"statement gaps not checked: {str(err).splitlines()[0]}")
        return {}
    return {
        "missing": _covering(report.missing, day),
    }


def _covering(frame: Any, day: Any) -> list[dict[str, Any]]:
    """Rows of a gaps frame whose period contains ``day``."""
    if frame.empty:
        return []
    return [r for r in frame.to_dict("records") if r["from_date"] <= day <= r["to_date"]]
