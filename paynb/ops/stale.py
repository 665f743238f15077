"""Invoices stuck in APPROVED (the FAQ's most common question).

The FAQ query compares naive-UTC ``created_on`` with ``now()`` (timestamptz), which silently
depends on the session time zone. Here "now" is computed in Python as naive UTC and bound as a
parameter, so the comparison is exact whatever the server's settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
from sqlalchemy.engine import Engine

from paynb import db
from paynb.aging import BUCKET_EDGES, age_buckets, bucket_label  # noqa: F401 (re-exported)
from paynb.context import Env, resolve_env
from paynb.enums import PaymentMethod
from paynb.errors import InputError
from paynb.extras import require
from paynb.timez import MAX_DAYS, to_naive_utc, utcnow_naive


@dataclass(frozen=True)
class StaleReport:
    """APPROVED invoices older than ``days``, counted and totalled by method and age bucket."""

    days: int
    now_utc: datetime
    method: str | None
    account: str | None
    rows: pd.DataFrame = field(repr=False)
    #: one row per invoice (id, accounts, method, created_on, age, bucket, total), oldest first
    invoices: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)

    @property
    def total_count(self) -> int:
        return int(self.rows["count"].sum()) if not self.rows.empty else 0

    @property
    def total_amount(self) -> Decimal:
        return sum(self.rows["total"], Decimal("0.00")) if not self.rows.empty else Decimal("0.00")

    def to_frame(self) -> pd.DataFrame:
        return self.rows.copy()

    def by_method(self) -> pd.DataFrame:
        if self.rows.empty:
            return pd.DataFrame(columns=["payment_method", "count", "total", "oldest_days"])
        g = self.rows.groupby("payment_method", sort=True)
        return pd.DataFrame(
            {
                "count": g["count"].sum().astype(int),
                "total": g["total"].apply(lambda s: sum(s, Decimal("0.00"))),
                "oldest_days": g["oldest_days"].max().astype(int),
            }
        ).reset_index()

    def pivot(self) -> pd.DataFrame:
        """Counts as a method × bucket grid (for charts)."""
        labels = [b[0] for b in age_buckets(self.days)]
        if self.rows.empty:
            return pd.DataFrame(columns=labels)
        grid = self.rows.pivot_table(
            index="payment_method", columns="age_bucket", values="count", aggfunc="sum"
        )
        return grid.reindex(columns=labels).fillna(0).astype(int)

    def invoice_list(self) -> pd.DataFrame:
        """The invoices behind the totals (``paynb stale --list``)."""
        return self.invoices.copy()

    def to_dict(self, *, include_invoices: bool = False) -> dict[str, Any]:
        extra = {"invoices": self.invoices.to_dict(orient="records")} if include_invoices else {}
        return {
            "schema_version": 1,
            "report": "stale_invoices",
            "days": self.days,
            "now_utc": self.now_utc,
            "method": self.method,
            "account": self.account,
            "total_count": self.total_count,
            "total_amount": self.total_amount,
            "rows": self.rows.to_dict(orient="records"),
            **extra,
        }


_SQL = """
SELECT i.id AS invoice_id, pa.auth_account_id, i.payment_account_id,
       i.payment_method_code AS payment_method, i.created_on,
       floor(extract(epoch FROM (:now - i.created_on)) / 86400)::int AS age_days,
       i.total
  FROM invoices i
  LEFT JOIN payment_accounts pa ON pa.id = i.payment_account_id
 WHERE i.invoice_status_code = 'APPROVED'
   AND i.created_on < :cutoff
   AND (CAST(:method AS varchar) IS NULL OR i.payment_method_code = :method)
   AND (CAST(:account AS varchar) IS NULL OR pa.auth_account_id = :account)
 ORDER BY i.created_on, i.id
"""


def find_stale_invoices(
    days: int = 20,
    *,
    method: str | None = None,
    account: str | None = None,
    now: datetime | None = None,
    env: Env | None = None,
    engine: Engine | None = None,
) -> StaleReport:
    """Count and total APPROVED invoices created more than ``days`` days before ``now`` (UTC).
    Reads pay-db through ``env`` (default: the environment's settings); ``engine`` still overrides it."""
    env = resolve_env(env, engine=engine)
    if days < 0:
        raise InputError(f"must be 0 or more, got {days}", field="days")
    if days > MAX_DAYS:  # further back than datetime can go
        raise InputError(f"must be at most {MAX_DAYS} (a century), got {days}", field="days")
    if method is not None:
        method = method.upper()
        if method not in PaymentMethod.__members__:
            raise InputError(
                f"unknown payment method {method!r} (one of {', '.join(PaymentMethod.__members__)})",
                field="method",
            )
    now_utc = to_naive_utc(now) if now else utcnow_naive()
    cutoff = now_utc - timedelta(days=days)
    detail = db.query_df(
        _SQL, {"now": now_utc, "cutoff": cutoff, "method": method, "account": account}, engine=env.engine
    )
    invoice_columns = [
        "invoice_id",
        "auth_account_id",
        "payment_account_id",
        "payment_method",
        "created_on",
        "age_days",
        "age_bucket",
        "total",
    ]
    if detail.empty:
        rows = pd.DataFrame(columns=["payment_method", "age_bucket", "count", "total", "oldest_days"])
        invoices = pd.DataFrame(columns=invoice_columns)
    else:
        detail["age_bucket"] = [bucket_label(int(a), days) for a in detail["age_days"]]
        order = {label: i for i, (label, _, _) in enumerate(age_buckets(days))}
        grouped = detail.groupby(["payment_method", "age_bucket"], sort=False)
        rows = pd.DataFrame(
            {
                "count": grouped.size(),
                "total": grouped["total"].apply(lambda s: sum(s, Decimal("0.00"))),
                "oldest_days": grouped["age_days"].max(),
            }
        ).reset_index()
        rows["_o"] = rows["age_bucket"].map(order)
        rows = rows.sort_values(["payment_method", "_o"]).drop(columns="_o").reset_index(drop=True)
        rows["count"] = rows["count"].astype(int)
        rows["oldest_days"] = rows["oldest_days"].astype(int)
        invoices = detail[invoice_columns].reset_index(drop=True)
    return StaleReport(
        days=days, now_utc=now_utc, method=method, account=account, rows=rows, invoices=invoices
    )


def plot_age_buckets(report: StaleReport) -> Any:
    """A stacked bar per payment method, split by age bucket (a matplotlib Figure; needs ``paynb[lab]``)."""
    plt = require("matplotlib.pyplot", "the stale-invoice chart")
    grid = report.pivot()
    fig, ax = plt.subplots(figsize=(8, 0.6 * max(len(grid), 1) + 1.5))
    if grid.empty:
        ax.text(0.5, 0.5, "Nothing is stale", ha="center", va="center")
        ax.set_axis_off()
    else:
        grid.plot(kind="barh", stacked=True, ax=ax, colormap="viridis")
        ax.set_xlabel("invoices")
        ax.set_ylabel("")
    ax.set_title(f"APPROVED for more than {report.days} days")
    fig.tight_layout()
    plt.close(fig)  # the caller displays it; do not also draw it twice in a notebook
    return fig
