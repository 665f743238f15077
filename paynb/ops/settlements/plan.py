"""The read-only replay plan: the guard row, the rows to replay, the filtered CSV and the queue message
(docs/settlement-replay.md)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine

from paynb import db
from paynb.canonical import sha256_hex
from paynb.errors import InputError, ParseError
from paynb.formats.settlement_csv import (
    SettlementFile,
    SettlementRow,
    parse_settlement_csv,
    write_settlement_csv,
)
from paynb.ops.settlements.classify import (
    DELETE_GUARD_SQL,
    FINISH_GUARD_SQL,
    INSERT_GUARD_SQL,
    Disposition,
    RowPlan,
    _classify,
    _load_context,
    guard_rows,
    guard_state,
)
from paynb.ops.settlements.files import (
    AR_FOLDER,
    SettlementFileRef,
    read_settlement_ref,
    resolve_settlement_file,
    settlement_sources,
)
from paynb.plan import Plan
from paynb.settings import Settings, get_settings
from paynb.store import Store

if TYPE_CHECKING:
    from paynb.context import Env

EVENT_TYPE = "bc.registry.payment.casSettlementUploaded"
EVENT_SOURCE = "sbc-pay-FTP-POLLER"  # what the poller sends; a replay looks exactly like it
DEFAULT_TOPIC = "ftp-poller-payment-reconciliation-dev"
PLAN_KIND = "settlement.replay"


def filtered_name(file_name: str, content: bytes) -> str:
    stem = file_name[:-4] if file_name.lower().endswith(".csv") else file_name
    return f"{stem}.replay-{sha256_hex(content)[:8]}.csv"


def queue_message(file_name: str, event_id: str) -> dict[str, Any]:
    """The CloudEvent the ftp-poller publishes for a new file in ``ar/`` (structured JSON mode)."""
    return {
        "specversion": "1.0",
        "type": EVENT_TYPE,
        "source": EVENT_SOURCE,
        "id": event_id,
        "datacontenttype": "application/json",
        "data": {"fileSource": "GOOGLE_BUCKET", "location": AR_FOLDER, "fileName": file_name},
    }


def gcloud_command(message: Mapping[str, Any]) -> str:
    import json

    body = json.dumps(message, separators=(",", ":"), sort_keys=True)
    return f"gcloud pubsub topics publish \"${{FTP_POLLER_TOPIC:-{DEFAULT_TOPIC}}}\" --message='{body}'"


def _guard_dict(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "file_name": row["file_name"],
        "received_on": row["received_on"],
        "processed_on": row["processed_on"],
    }


def plan_replay(
    file_key_or_path: str,
    *,
    env: Env | None = None,
    settings: Settings | None = None,
    engine: Engine | None = None,
    store: Store | None = None,
    legacy_store: Store | None = None,
    write_filtered: bool = False,
) -> Plan:
    """Plan the re-processing of one settlement CSV. Read-only: writing the filtered CSV is the
    ``settlement.replay`` fix's apply (:func:`apply_replay`), after a confirm. ``write_filtered=True`` is
    refused (it used to write without one).

    ``store`` is the current bucket (``ar/`` folder) and the place the filtered CSV goes; ``legacy_store``
    the pre-2025 ``payment-sftp`` bucket. Both default to the settings (``env.settings``).
    """
    if write_filtered:
        raise InputError(
            "writing the filtered CSV needs a reviewed plan and its confirm hash",
            field="write_filtered",
            hint="paynb settlement replay plan FILE --out plan.json, then"
            " paynb settlement replay apply --plan plan.json --confirm <sha256>",
        )
    if env is not None:
        settings = settings or env.settings
        engine = engine or env.engine
    if engine is None or (store is None and legacy_store is None):
        settings = settings or get_settings()
    sources, problems = settlement_sources(settings, store=store, legacy_store=legacy_store)
    ref = resolve_settlement_file(file_key_or_path, sources)
    data = read_settlement_ref(ref, sources)
    if not data.strip():
        raise ParseError("empty file: no header row", file=ref.ref, line=1, field="header")
    parsed = parse_settlement_csv(data, file=ref.ref)
    engine = engine or db.create_engine(settings)

    filtered_rows: list[SettlementRow] = []
    row_plans: list[RowPlan] = []
    with db.read_connection(engine) as conn:
        ctx = _load_context(conn, parsed)
        for row in parsed.rows:
            disposition, reason, changes = _classify(row, ctx)
            row_plans.append(
                RowPlan(
                    row.line_number,
                    row.record_type,
                    row.source_transaction_number,
                    row.target_transaction_type,
                    row.target_transaction_number,
                    row.target_transaction_status,
                    row.application_amount,
                    row.customer_account,
                    disposition,
                    reason,
                    row.is_nsf_risk,
                    changes,
                )
            )
            if disposition == Disposition.APPLY:
                filtered_rows.append(row)
        header_style = parsed.header_style if parsed.header_style in ("test", "parser") else "parser"
        filtered = write_settlement_csv(filtered_rows, header_style).encode("utf-8") if filtered_rows else b""
        new_name = filtered_name(ref.file_name, filtered) if filtered_rows else None
        guards = guard_rows(conn, [ref.file_name, *([new_name] if new_name else [])])

    counts = {d: 0 for d in Disposition.ALL}
    for rp in row_plans:
        counts[rp.disposition] += 1
    original_guard = guards.get(ref.file_name, [])
    warnings = _warnings(ref, row_plans, original_guard, problems)
    body: dict[str, Any] = {
        "file": {
            **ref.to_dict(),
            "sha256": sha256_hex(data),
            "rows": len(parsed.rows),
            "header_style": parsed.header_style,
        },
        "guard": {
            "file_name": ref.file_name,
            "state": guard_state(original_guard),
            "rows": [_guard_dict(r) for r in original_guard],
        },
        "rows": [rp.to_dict() for rp in row_plans],
        "counts": counts,
        "invoices_to_change": sorted({c["invoice_id"] for rp in row_plans for c in rp.changes}),
        "nsf_risk_lines": [rp.line for rp in row_plans if rp.nsf_risk],
        "unsupported_lines": [rp.line for rp in row_plans if rp.disposition == Disposition.UNSUPPORTED],
        "params": {"file": ref.ref},
        "filtered_csv": None,
        "queue_message": None,
        "gcloud_command": None,
        "guard_change": None,
    }
    if new_name is not None:
        key = f"{AR_FOLDER}/{new_name}"
        digest = sha256_hex(filtered)
        body["filtered_csv"] = {
            "key": key,
            "file_name": new_name,
            "sha256": digest,
            "bytes": len(filtered),
            "rows": len(filtered_rows),
            "lines": [r.line_number for r in filtered_rows],
            "header_style": header_style,
        }
        message = queue_message(new_name, f"paynb-replay-{digest[:8]}")
        body["queue_message"] = message
        body["gcloud_command"] = gcloud_command(message)
        body["guard_change"] = _guard_change(
            ref.file_name, original_guard, new_name, guards.get(new_name, [])
        )
    return Plan(kind=PLAN_KIND, body=body, summary=_summary(ref, counts, body), warnings=tuple(warnings))


def _guard_change(
    original: str, original_rows: list[dict], new_name: str, new_rows: list[dict]
) -> dict[str, Any]:
    statements = [
        {
            "sql": DELETE_GUARD_SQL,
            "params": {"id": r["id"], "file_name": new_name},
            "row": _guard_dict(r),
            "why": "an earlier publish of this same filtered file left this row; it blocks processing",
        }
        for r in new_rows
    ]
    state = guard_state(original_rows)
    keep = {
        "absent": "the original never reached pay-queue: apply inserts its guard row, processed, as pay-queue"
        " would have, so the original (with the excluded rows) is never processed",
        "processing_failed": "apply sets processed_on on this row, as pay-queue would have at the end of the file;"
        " the row stays, so the unfiltered original is never processed again",
        "processed": "keep this row: the original was processed; only the filtered rows are replayed",
    }[state]
    original_statements: list[dict[str, Any]] = []
    if state == "absent":
        original_statements.append(
            {
                "sql": INSERT_GUARD_SQL,
                "params": {"file_name": original},
                "row": None,
                "expect_rows": 1,
                "why": "guard the original as pay-queue does for every file it takes",
            }
        )
    for r in original_rows:
        if r.get("processed_on") is None:
            original_statements.append(
                {
                    "sql": FINISH_GUARD_SQL,
                    "params": {"id": r["id"], "file_name": original},
                    "row": _guard_dict(r),
                    "expect_rows": 1,
                    "why": "the replay finishes what this file started; monitors stop flagging it",
                }
            )
    return {
        "published_file": new_name,
        "statements": [{**st, "expect_rows": 1} for st in statements],
        "original": {
            "file_name": original,
            "state": state,
            "rows": [_guard_dict(r) for r in original_rows],
            "statements": original_statements,
            "note": keep,
        },
        "note": (
            f"pay-queue inserts cas_settlements(file_name='{new_name}', received_on=now()) itself when the message "
            "arrives and sets processed_on when the whole file (incl. the credit sync) succeeded"
        ),
    }


def _warnings(
    ref: SettlementFileRef,
    rows: Sequence[RowPlan],
    guard: Sequence[Mapping[str, Any]],
    problems: Sequence[str],
) -> list[str]:
    out: list[str] = []
    for rp in rows:
        if rp.nsf_risk:
            out.append(
                f"NSF RISK line {rp.line} ({rp.record_type} {rp.target_number}, {rp.status}): {rp.reason}. "
                "Excluded from the filtered CSV."
            )
    paid_numbers = {rp.target_number for rp in rows if rp.disposition == Disposition.APPLY}
    for number in sorted({rp.target_number for rp in rows if rp.nsf_risk} & paid_numbers):
        lines = [str(rp.line) for rp in rows if rp.target_number == number]
        out.append(
            f"{number} has both NSF-risk and paid rows (lines {', '.join(lines)}): confirm with CAS which one is "
            "current before replaying"
        )
    for rp in rows:
        if rp.disposition == Disposition.BLOCKED and "aborts" in rp.reason:
            out.append(f"line {rp.line}: {rp.reason}")
        elif rp.disposition == Disposition.UNSUPPORTED:
            out.append(f"line {rp.line}: unsupported row ({rp.record_type}): {rp.reason}")
    state = guard_state(guard)
    if state == "processing_failed":
        out.append(
            f"{ref.file_name} started processing but never finished (cas_settlements.processed_on is NULL): "
            "find the cause in the reconciliation error email before replaying"
        )
    if not any(rp.disposition == Disposition.APPLY for rp in rows):
        out.append("nothing to replay: no row is both safe and not yet applied")
    out.extend(f"store: {p}" for p in problems)
    return out


def _summary(ref: SettlementFileRef, counts: Mapping[str, int], body: Mapping[str, Any]) -> str:
    parts = [f"{ref.file_name}: {counts[Disposition.APPLY]} row(s) to replay"]
    n_inv = len(body["invoices_to_change"])
    if n_inv:
        parts.append(f"{n_inv} invoice(s) change status")
    for d in (
        Disposition.ALREADY_APPLIED,
        Disposition.NSF_RISK,
        Disposition.BLOCKED,
        Disposition.NO_EFFECT,
        Disposition.UNSUPPORTED,
    ):
        if counts[d]:
            parts.append(f"{counts[d]} {d.replace('_', ' ')}")
    parts.append(f"guard {body['guard']['state']}")
    return "; ".join(parts)


def iter_rows_for_numbers(parsed: SettlementFile, numbers: set[str]) -> Iterator[SettlementRow]:
    """Rows of ``parsed`` whose target is one of ``numbers``."""
    return (r for r in parsed.rows if r.target_transaction_number in numbers)
