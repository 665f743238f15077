"""Airflow example: the daily reconciliation as a `paynb run` in a BashOperator (docs/reconciliation.md).

Copy this file into the DAGs folder of an Airflow whose workers have paynb installed. Credentials
(PAYNB_DATABASE_URL, PAYNB_DW_URL, PAYNB_S3_*, PAYNB_HMAC_KEY) come from the worker's environment or an
Airflow connection exported as environment variables, never as notebook parameters. `paynb run` exits
non-zero when the run fails (an unreachable warehouse, an incomplete report), so the task fails too.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.bash import BashOperator

PAYNB = "paynb"  # the paynb executable on the worker
ARCHIVE = "s3://paynb-archive/"

with DAG(
    dag_id="paynb_reconcile_daily",
    schedule="30 6 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,  # a run is evidence; never two at once
    default_args={"retries": 0, "execution_timeout": timedelta(minutes=60)},
    tags=["paynb", "reconciliation"],
) as dag:
    BashOperator(
        task_id="reconcile_daily",
        bash_command=(
            f"{PAYNB} run notebooks/jobs/reconcile_daily.ipynb "
            "-p date_to {{ macros.ds_add(ds, -1) }} -p days_back 7 -p job reconcile_daily "
            f"--archive {ARCHIVE} --timeout 1800"
        ),
        env={"PAYNB_ACTOR": "airflow/paynb_reconcile_daily"},
        append_env=True,
    )
