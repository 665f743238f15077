"""Deterministic synthetic pay-db for the sandbox and the tests.

Everything is computed on the server with set-based SQL (``sql/gen_*.sql``); pseudo-randomness is a hash
of (seed, stream tag, row number), so the same (scale, seed, as_of) always gives the same rows.

* :mod:`.core`: the entry point :func:`generate`, the static catalogue, scenario choice, bookkeeping and
  the summary;
* one module per family of named scenarios, adding the few rows they need after the bulk load:
  :mod:`.pad`, :mod:`.ejv`, :mod:`.disbursements`, :mod:`.routing_slip`, :mod:`.statements`;
* :mod:`.settlement_csvs`: the settlement CSVs of the bucket, written through ``paynb.formats``.

What is copied from sbc-pay, and from which file: docs/sandbox-generator.md.
"""

from paynb.sandbox.generator.core import (
    CSV_HEADER,
    FEE_SCHEDULES,
    GENERATOR_VERSION,
    SCALES,
    STALE_DAYS,
    WINDOW_DAYS,
    GenerationSummary,
    Scale,
    catalogue_rows,
    csv_name,
    generate,
    revenue_gl_id,
    sql_steps,
)
from paynb.sandbox.generator.settlement_csvs import render_settlement_csv

__all__ = [
    "CSV_HEADER",
    "FEE_SCHEDULES",
    "GENERATOR_VERSION",
    "SCALES",
    "STALE_DAYS",
    "WINDOW_DAYS",
    "GenerationSummary",
    "Scale",
    "catalogue_rows",
    "csv_name",
    "generate",
    "render_settlement_csv",
    "revenue_gl_id",
    "sql_steps",
]
