"""What each Airflow task of the Caspio DAG runs: plain functions, importable without Airflow.

Kept apart from ``caspio_dag.py`` so they are tested (and usable from any other scheduler:
Dagster, Prefect, a Kubernetes CronJob) without installing Airflow.

Why one pipeline *name* per table: two dlt pipelines must never share a working directory and
state at the same time, and parallel Airflow tasks do run at the same time (possibly on
different workers). Each table gets ``caspio__<table>`` (its own state and incremental marks,
restored from the warehouse on a fresh worker); all of them load into one dataset, as dlt's own
"parallel-isolated" Airflow decomposition does. ``prepare_dataset`` runs first so parallel
tasks never race to create dlt's system tables.

Each task's pipeline, being named, stages its merges in a dataset of its own,
``<dataset>_staging_caspio_<table>``, so parallel tasks never share a staging table (see
``pipelines/staging.py``).
"""

from __future__ import annotations

import os
import re
from typing import Any

import dlt

from pipelines.caspio_pipeline import DEFAULT_DATASET_NAME, resolve_credentials, run_sync
from pipelines.reconcile import run_reconcile
from sources.caspio import CaspioClient

DEFAULT_DESTINATION = "postgres"
"""A warehouse: DuckDB is one file with one writer, so parallel tasks cannot share it."""


def _setting(name: str, default: str) -> str:
    return os.environ.get(name) or default


def pipeline_name_for(table: str) -> str:
    """``caspio__orders`` for ``Orders``: a stable, filesystem-safe name per table."""
    return f"caspio__{re.sub(r'[^0-9a-z]+', '_', table.lower()).strip('_')}"


def list_tables(include_views: bool = True) -> list[str]:
    """The account's tables (and views): 2 API calls, made when the DAG *runs*, never when the
    scheduler parses the DAG file (which it does every 30 seconds)."""
    client = CaspioClient(resolve_credentials())
    names = client.list_tables()
    if include_views:
        names += client.list_views()
    wanted = [t.strip() for t in _setting("CASPIO_TABLES", "").split(",") if t.strip()]
    if wanted:
        lowered = {w.lower() for w in wanted}
        names = [n for n in names if n.lower() in lowered]
    return names


def prepare_dataset(destination: Any = None, dataset_name: str | None = None) -> None:
    """Create dlt's system tables in the dataset once, before tables load in parallel."""
    pipeline = dlt.pipeline(
        pipeline_name="caspio__prepare",
        destination=destination or _setting("CASPIO_DESTINATION", DEFAULT_DESTINATION),
        dataset_name=dataset_name or _setting("CASPIO_DATASET", DEFAULT_DATASET_NAME),
    )
    pipeline.run([], table_name="caspio_prepare", schema=dlt.Schema("caspio"))


def _table_task(table: str, destination: Any, dataset_name: str | None) -> dict[str, Any]:
    """The arguments every table task passes: its table, pipeline, destination and dataset."""
    return {
        "destination": destination or _setting("CASPIO_DESTINATION", DEFAULT_DESTINATION),
        "tables": [table],
        "dataset_name": dataset_name or _setting("CASPIO_DATASET", DEFAULT_DATASET_NAME),
        "pipeline_name": pipeline_name_for(table),
    }


def sync_table(
    table: str,
    destination: Any = None,
    dataset_name: str | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Sync one table with its own pipeline; returns what Airflow shows in XCom (no secrets)."""
    report = run_sync(**_table_task(table, destination, dataset_name), **kwargs)
    print(report.summary())
    return {"table": table, "rows": report.total_rows, "api_calls": report.api_calls}


def reconcile_table(
    table: str,
    destination: Any = None,
    dataset_name: str | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """The nightly deleted-rows pass for one table, on that table's own pipeline."""
    report = run_reconcile(**_table_task(table, destination, dataset_name), **kwargs)
    print(report.summary())
    return {
        "table": table,
        "removed": sum(t.applied for t in report.tables),
        "api_calls": report.api_calls,
    }
