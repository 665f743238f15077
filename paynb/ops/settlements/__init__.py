"""CAS settlement CSVs in the object store, and a read-only replay planner (docs/files.md#cas-settlement-csv, docs/files.md#bucket).

Where the files live:

* now: ``ar/<file>`` in the GCS bucket ``settings.bucket`` (``FTP_POLLER_BUCKET_NAME``);
* before 2025-08: bare ``<file>`` in the MinIO bucket ``settings.legacy_settlement_bucket`` (``payment-sftp``).

A file is named by a *reference*: a local path, ``ar/<file>`` (current bucket), ``<legacy bucket>/<file>``
(legacy bucket) or a bare ``<file>`` (looked up in ``ar/`` first, then the legacy bucket).

:func:`plan_replay` answers "what would re-processing this file do?" without changing anything: the
``cas_settlements`` guard row, which rows would move which invoices, which are already applied, the NSF-risk
rows (``Not PAID``, ``PADR``, ``PAYR``), and a filtered CSV holding only the safe, not-yet-applied rows. The
filtered CSV gets a new name (``ar/<stem>.replay-<sha8>.csv``), so publishing it needs no guard deletion and
the original (with its NSF rows) stays guarded.

The ``settlement.replay`` fix (:class:`ReplayFix`, on :mod:`paynb.fixes`) applies a confirmed plan: it
writes the filtered CSV under its new name (an intent first; never over another object), then, in one
pay-db transaction on the writer role, makes the guard change pay-queue would have made for the original
file (``processed_on`` set, or a row inserted when the original never reached pay-queue) so monitors stop
flagging it while the original stays guarded, and prints the queue message and ``gcloud`` command to
publish. Why this choice: ``docs/settlement-replay.md``.

Example::

    plan = plan_replay("ar/BCR_PAYMENT_APPL_20260730.csv")
    plan.sha256, plan.body["counts"], plan.body["queue_message"]
    apply_fix(REPLAY_FIX, plan, confirm=plan.sha256, ticket="OPS-7", reason="file failed mid-way")

The package: ``files`` (where the CSVs are), ``classify`` (what pay-queue would do with each row),
``plan`` (the read-only plan), ``apply`` (the fix), ``view`` (tables and text).
"""

from __future__ import annotations

from paynb.ops.settlements.apply import REPLAY_FIX, ReplayFix, apply_replay
from paynb.ops.settlements.classify import Disposition, RowPlan, guard_rows, guard_state
from paynb.ops.settlements.files import (
    AR_FOLDER,
    SettlementFileRef,
    SettlementSource,
    list_settlement_files,
    load_settlement_file,
    read_settlement_ref,
    resolve_settlement_file,
    settlement_sources,
)
from paynb.ops.settlements.plan import (
    DEFAULT_TOPIC,
    EVENT_SOURCE,
    EVENT_TYPE,
    PLAN_KIND,
    filtered_name,
    gcloud_command,
    iter_rows_for_numbers,
    plan_replay,
    queue_message,
)
from paynb.ops.settlements.view import PLAN_COLUMNS, describe_plan, plan_frame, style_plan_frame

__all__ = [
    "load_settlement_file",
    "AR_FOLDER",
    "DEFAULT_TOPIC",
    "EVENT_SOURCE",
    "EVENT_TYPE",
    "PLAN_COLUMNS",
    "PLAN_KIND",
    "REPLAY_FIX",
    "Disposition",
    "ReplayFix",
    "RowPlan",
    "SettlementFileRef",
    "SettlementSource",
    "apply_replay",
    "describe_plan",
    "filtered_name",
    "gcloud_command",
    "guard_rows",
    "guard_state",
    "iter_rows_for_numbers",
    "list_settlement_files",
    "plan_frame",
    "plan_replay",
    "queue_message",
    "read_settlement_ref",
    "resolve_settlement_file",
    "settlement_sources",
    "style_plan_frame",
]
