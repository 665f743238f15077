"""Rebuild the fixture notebooks (one per behaviour of ``paynb run``): ``python tests/notebooks/build.py``.

They are stored without outputs, like every paynb notebook.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).parent
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def params(source: str) -> nbformat.NotebookNode:
    return new_code_cell(source, metadata={"tags": ["parameters"]})


NOTEBOOKS: dict[str, list[nbformat.NotebookNode]] = {
    "success": [
        new_markdown_cell(
            "# Success\nEvery supported parameter type arrives typed; the run reports its results."
        ),
        params(
            "from datetime import date\n"
            "from decimal import Decimal\n"
            "from typing import Literal\n\n"
            "invoice_id: int = 0  # the invoice to look at\n"
            'label: str = "0042"  # text that looks like a number stays text\n'
            "as_of: date = date(2026, 1, 31)\n"
            'amount: Decimal = Decimal("0.00")\n'
            "dry_run: bool = True\n"
            "methods: list[str] = []\n"
            'mode: Literal["summary", "detail"] = "summary"\n'
            'account_name: str = ""  # paynb: redact'
        ),
        new_code_cell(
            "import os\n\n"
            "import paynb.jobs\n\n"
            "assert type(invoice_id) is int and type(label) is str and type(as_of) is date\n"
            "assert type(amount) is Decimal and type(dry_run) is bool and type(methods) is list\n"
            'print("run", os.environ.get("PAYNB_RUN_ID", "(not run by paynb)"))\n'
            'print("label", repr(label), "as_of", as_of.isoformat(), "amount", amount, "methods", methods, mode)'
        ),
        new_code_cell(
            "paynb.jobs.record(rows_affected=invoice_id, dry_run=dry_run,\n"
            '                  summary={"methods": methods, "amount": amount}, label=label)'
        ),
    ],
    "refused_confirm": [
        new_markdown_cell(
            "# Refused apply\nA data fix run with dry_run=False and a missing or wrong confirm."
        ),
        params('dry_run: bool = True\nconfirm: str = ""  # the plan\'s sha256'),
        new_code_cell(
            "from paynb.plan import Plan, check_confirm\n\n"
            'plan = Plan(kind="demo", body={"invoice": 1, "amount": "1.00"})\n'
            "if not dry_run:\n"
            "    check_confirm(plan, confirm)\n"
            '    print("applied")'
        ),
    ],
    "cell_error": [
        params('label: str = "cell error"'),
        new_code_cell('print("before the failure")'),
        new_code_cell('raise ValueError("deliberate failure for the test")'),
        new_code_cell('print("never runs")'),
    ],
    "timeout": [
        params("seconds: int = 30"),
        new_code_cell('import time\n\nprint("sleeping", flush=True)\ntime.sleep(seconds)'),
        new_code_cell('print("never runs")'),
    ],
    "dead_kernel": [
        params('label: str = "dead kernel"'),
        new_code_cell('import os\n\nprint("about to exit", flush=True)\nos._exit(1)'),
        new_code_cell('print("never runs")'),
    ],
    "no_parameters": [
        new_markdown_cell("No cell is tagged `parameters`."),
        new_code_cell("invoice_id: int = 0\nprint(invoice_id)"),
    ],
    "secret_output": [
        params('label: str = "prints a configured secret"'),
        new_code_cell(
            'import os\n\nprint("client secret is", os.environ.get("PAYNB_CFS_CLIENT_SECRET", ""))'
        ),
    ],
    "secret_default": [
        params('endpoint: str = "postgresql://pay:hunter2-hunter2@db.example/pay"'),
        new_code_cell("print(endpoint)"),
    ],
    "bad_param_type": [
        params("rate: float = 0.5"),
        new_code_cell("print(rate)"),
    ],
}


# what a report notebook might try to change pay-db with; every route must fail on the reader role
WRITE_ROUTES = (
    "import os\n\n"
    "import psycopg2\n"
    "from sqlalchemy.engine import make_url\n\n"
    "from paynb import db\n\n"
    'BUMP = "UPDATE invoices SET total = total + 1 WHERE id = (SELECT min(id) FROM invoices)"\n'
    'if route == "read_connection":\n'
    "    with db.read_connection() as conn:\n"
    '        conn.exec_driver_sql("SET TRANSACTION READ WRITE")\n'
    "        conn.exec_driver_sql(BUMP)\n"
    "        conn.commit()\n"
    'elif route == "write_transaction":\n'
    "    with db.write_transaction() as conn:\n"
    "        conn.exec_driver_sql(BUMP)\n"
    'elif route == "psycopg2":\n'
    '    url = make_url(os.environ["PAYNB_DATABASE_URL"])\n'
    "    raw = psycopg2.connect(\n"
    "        host=url.host, port=url.port, user=url.username, password=url.password, dbname=url.database\n"
    "    )\n"
    "    with raw.cursor() as cur:\n"
    '        cur.execute("SET TRANSACTION READ WRITE")\n'
    "        cur.execute(BUMP)\n"
    "    raw.commit()\n"
    'elif route == "write_engine":\n'
    "    with db.write_transaction(db.create_write_engine()) as conn:\n"
    "        conn.exec_driver_sql(BUMP)\n"
    'print("the write went through:", route)'
)


def stale_report_that_writes() -> nbformat.NotebookNode:
    """The stale-invoice report with a ``route`` parameter and a cell that tries to write pay-db."""
    nb = nbformat.read(HERE.parents[1] / "notebooks" / "reports" / "stale_invoices.ipynb", as_version=4)
    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    nb.cells[
        index
    ].source += '\nroute: str = "read_connection"  # read_connection | write_transaction | psycopg2'
    nb.cells.insert(index + 2, new_code_cell(WRITE_ROUTES))
    return nb


def build() -> None:
    for name, cells in NOTEBOOKS.items():
        nb = new_notebook(cells=cells, metadata={"kernelspec": KERNELSPEC})
        for i, cell in enumerate(nb.cells):
            cell.id = f"{name.replace('_', '-')}-{i}"  # stable ids keep the files byte-identical
        nbformat.write(nb, HERE / f"{name}.ipynb")
    nb = stale_report_that_writes()
    for i, cell in enumerate(nb.cells):
        cell.id = f"stale-writes-{i}"
    nbformat.write(nb, HERE / "stale_report_writes.ipynb")


if __name__ == "__main__":
    build()
