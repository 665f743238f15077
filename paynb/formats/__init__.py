"""Pure parsers and writers for the sbc-pay file formats (no DB, no network).

* :mod:`paynb.formats.feedback` — CGI FEEDBACK (EJV GA/GI and AP batches), fixed-width offsets of docs/files.md#feedback
* :mod:`paynb.formats.inbox` — CGI INBOX (GS-separated), byte-exact writer, re-dating, field diff
* :mod:`paynb.formats.settlement_csv` — CAS settlement CSV (``BCR_PAYMENT_APPL_YYYYMMDD.csv``)
* :mod:`paynb.formats.flowthrough` — the ``<invoice>[-<disbursement>][-PR]`` / ``<invoice>-PR-<id>`` key

Every malformed line raises :class:`paynb.errors.ParseError` with ``file``, ``line`` (1-based) and ``field``.
"""

from __future__ import annotations

from paynb.formats.feedback import (
    FeedbackFile,
    FeedbackRecord,
    parse_feedback,
    parse_feedback_file,
    parse_feedback_name,
    render_feedback,
)
from paynb.formats.flowthrough import Flowthrough, format_flowthrough, parse_flowthrough
from paynb.formats.inbox import (
    FieldChange,
    InboxFile,
    InboxRecord,
    diff_inbox,
    format_inbox_name,
    parse_inbox,
    parse_inbox_file,
    parse_inbox_name,
    redate_inbox,
    trigger_name,
    write_inbox,
)
from paynb.formats.settlement_csv import (
    RecordType,
    SettlementFile,
    SettlementRow,
    TargetStatus,
    TargetType,
    filter_rows,
    parse_settlement_csv,
    parse_settlement_file,
    write_settlement_csv,
)

__all__ = [
    "FeedbackFile",
    "FeedbackRecord",
    "FieldChange",
    "Flowthrough",
    "InboxFile",
    "InboxRecord",
    "RecordType",
    "SettlementFile",
    "SettlementRow",
    "TargetStatus",
    "TargetType",
    "diff_inbox",
    "filter_rows",
    "format_flowthrough",
    "format_inbox_name",
    "parse_feedback",
    "parse_feedback_file",
    "parse_feedback_name",
    "parse_flowthrough",
    "parse_inbox",
    "parse_inbox_file",
    "parse_inbox_name",
    "parse_settlement_csv",
    "parse_settlement_file",
    "redate_inbox",
    "render_feedback",
    "trigger_name",
    "write_inbox",
    "write_settlement_csv",
]
