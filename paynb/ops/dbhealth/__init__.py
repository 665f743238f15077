"""pay-db health: corrupted indexes, duplicate keys, long queries and migration guards.

Front door for notebooks and the CLI (``paynb db …``); see docs/db-health.md.

Example::

    from paynb.ops.dbhealth import check_indexes
    report = check_indexes(tables=["invoices"])
    report.broken            # [] when every index is sound
"""

from __future__ import annotations

from paynb.ops.dbhealth.catalog import IndexInfo, amcheck_available, find_index, list_btree_indexes
from paynb.ops.dbhealth.check import CheckReport, IndexCheck, check_indexes
from paynb.ops.dbhealth.duplicates import DuplicateGroup, DuplicateRow, find_duplicates

__all__ = [
    "CheckReport",
    "DuplicateGroup",
    "DuplicateRow",
    "IndexCheck",
    "IndexInfo",
    "amcheck_available",
    "check_indexes",
    "find_duplicates",
    "find_index",
    "list_btree_indexes",
]
