"""Read a query into a DataFrame through COPY: on a million rows it is several times faster than fetching
rows one by one, which is what makes the set-based reconciliation fit in seconds. Money comes as whole
cents (bigint), so comparisons are exact without floats; :func:`paynb.ops.reconcile.report.cents` turns
cents back into Decimal."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import pandas as pd
from sqlalchemy.engine import Connection


def copy_frame(
    conn: Connection, sql: str, params: Mapping[str, Any], dtypes: Mapping[str, Any]
) -> pd.DataFrame:
    """``sql`` uses ``%(name)s`` placeholders (psycopg2 binds them); ``dtypes`` fixes column types."""
    raw = conn.connection.dbapi_connection
    buf = io.StringIO()
    with raw.cursor() as cur:
        query = cur.mogrify(sql, dict(params)).decode()
        cur.copy_expert(f"COPY ({query}) TO STDOUT WITH (FORMAT csv, HEADER)", buf)
    buf.seek(0)
    frame = pd.read_csv(
        buf,
        dtype={k: v for k, v in dtypes.items() if v is not None},
        keep_default_na=False,
        na_values={k: [""] for k in dtypes},
    )
    return frame
