"""EJV operations: FEEDBACK health, invoice search across FEEDBACK/INBOX files, INBOX re-dating.

* :func:`paynb.ops.ejv.health.ejv_health` — what is wrong with EJV right now, each finding with its action
* :func:`paynb.ops.ejv.search.search_feedback` — every FEEDBACK/INBOX record naming some invoices (indexed)
* :func:`paynb.ops.ejv.redate.plan_redate` / :func:`~paynb.ops.ejv.redate.apply_redate` — re-send an INBOX
  whose FEEDBACK never came, under a new name with effective dates in the open period
"""

from __future__ import annotations
