"""One entry point that fills a sandbox database: schema, synthetic rows, and the files for the bucket.

The sandbox manager and the test templates both call :func:`seed_sandbox`, so a test sees exactly
what ``paynb sandbox up`` gives an operator.
"""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from sqlalchemy.pool import NullPool


def apply_schema_to(url: str) -> None:
    from paynb.sandbox.schema import apply_schema

    eng = sa.create_engine(url, poolclass=NullPool)
    try:
        with eng.begin() as conn:
            apply_schema(conn)
    finally:
        eng.dispose()


def seed_sandbox(
    url: str, *, scale: str = "small", seed: int = 42, as_of: date | None = None, progress: bool = False
):
    """Generate the synthetic pay-db into ``url`` (schema already applied), then render the EJV
    INBOX/FEEDBACK files that match its rows into ``paynb_sandbox.store_objects``.

    Returns the generator's summary.
    """
    from paynb.sandbox.ejv_files import seed_ejv_files
    from paynb.sandbox.generator import generate

    summary = generate(url, scale=scale, seed=seed, as_of=as_of, progress=progress)
    eng = sa.create_engine(url, poolclass=NullPool)
    try:
        with eng.begin() as conn:
            seed_ejv_files(conn, as_of=summary.as_of)
    finally:
        eng.dispose()
    return summary
