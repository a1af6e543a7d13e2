"""Airflow DAGs for Caspio: hourly sync with one parallel task per table, nightly reconcile.

Copy ``deploy/airflow/`` into the DAGs folder of an Airflow 2.4+ deployment where this project
is installed (``pip install -e .`` or a wheel; tested under Airflow 2.11.2's scheduler with the
LocalExecutor: ``tests/features/test_airflow_dag.py``, docs/scheduling.md), and give the
workers the credentials as
environment variables (``SOURCES__CASPIO__CREDENTIALS__CLIENT_ID`` / ``__CLIENT_SECRET`` /
``__INTEGRATION_URL``, ``DESTINATION__POSTGRES__CREDENTIALS``), e.g. from a secrets backend.
Optional: ``CASPIO_TABLES`` (comma-separated), ``CASPIO_DESTINATION``, ``CASPIO_DATASET``.

Shape of a run: ``list_tables`` (2 calls) -> ``prepare_dataset`` -> ``sync_table`` mapped over
the tables (dynamic task mapping: one task instance per table, run in parallel up to
``max_active_tis_per_dag``; a failed table retries alone and does not hold the others back).

The task bodies live in ``caspio_tasks.py`` and import without Airflow; this module defines
DAGs only when Airflow is importable, so it can be imported (and its callables tested) anywhere.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

try:  # this file is also imported by the project's tests, where Airflow is not installed
    from airflow.decorators import dag, task

    AIRFLOW = True
except ImportError:  # pragma: no cover - depends on the machine
    AIRFLOW = False

try:
    from . import caspio_tasks  # imported as part of the deploy package (tests)
except ImportError:  # loaded by Airflow as a top-level file from the DAGs folder
    import caspio_tasks  # type: ignore[no-redef]

DEFAULT_ARGS: dict[str, Any] = {
    "retries": 2,
    "retry_delay": timedelta(minutes=5),
    "execution_timeout": timedelta(hours=2),
}


def build_sync_dag() -> Any:
    @dag(
        dag_id="caspio_sync",
        schedule="17 * * * *",
        start_date=datetime(2024, 1, 1),
        catchup=False,
        max_active_runs=1,  # never two syncs of one table's pipeline at once
        default_args=DEFAULT_ARGS,
        tags=["caspio", "dlt"],
    )
    def caspio_sync() -> None:
        @task
        def list_tables() -> list[str]:
            return caspio_tasks.list_tables()

        @task
        def prepare_dataset() -> None:
            caspio_tasks.prepare_dataset()

        @task(max_active_tis_per_dag=4)
        def sync_table(table: str) -> dict[str, Any]:
            return caspio_tasks.sync_table(table)

        tables = list_tables()
        prepared = prepare_dataset()
        synced = sync_table.expand(table=tables)
        tables >> prepared >> synced

    return caspio_sync()


def build_reconcile_dag() -> Any:
    @dag(
        dag_id="caspio_reconcile",
        schedule="43 2 * * *",
        start_date=datetime(2024, 1, 1),
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["caspio", "dlt"],
    )
    def caspio_reconcile() -> None:
        @task
        def list_tables() -> list[str]:
            return caspio_tasks.list_tables(include_views=False)

        @task(max_active_tis_per_dag=4)
        def reconcile_table(table: str) -> dict[str, Any]:
            return caspio_tasks.reconcile_table(table)

        reconcile_table.expand(table=list_tables())

    return caspio_reconcile()


if AIRFLOW:
    sync_dag = build_sync_dag()
    reconcile_dag = build_reconcile_dag()
