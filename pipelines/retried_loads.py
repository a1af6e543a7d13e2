"""A load job that dlt ran twice may have inserted its file twice: find such rows, remove them.

dlt retries a load job that raised a transient error. DuckDB 1.x can raise after a job's insert
was committed (an out-of-memory error in the checkpoint that follows the commit, or in a
database it then invalidates), so the retried job inserts the same rows again and the run ends
green with a table larger than Caspio's (docs/benchmarks-analysis.md, session 9). Only tables
with a retried job are checked, on their primary key: a run without retries costs nothing. Rows
that repeat a key *and* every other column are copies of one job's file and are removed, one of
each kept; a key that repeats with different values cannot come from a retry, and stops the
run with the table to reload.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from dlt.common.pipeline import LoadInfo
from dlt.destinations.sql_client import SqlClientBase
from dlt.pipeline.pipeline import Pipeline

logger = logging.getLogger(__name__)


class DuplicateRowsError(RuntimeError):
    """A table holds rows that share a key but differ: the destination is not Caspio's."""


def retried_tables(load_info: LoadInfo | None) -> set[str]:
    """Tables of the load's completed jobs that ran more than once (``None``: nothing was
    loaded, as dlt's ``run`` returns when there was nothing to do)."""
    if load_info is None:
        return set()
    return {
        job.job_file_info.table_name
        for package in load_info.load_packages
        for job in package.jobs.get("completed_jobs", [])
        if job.job_file_info.retry_count > 0 and not job.job_file_info.table_name.startswith("_dlt")
    }


def remove_retried_duplicates(pipeline: Pipeline, load_info: LoadInfo | None) -> dict[str, int]:
    """Checks every table with a retried job; returns the duplicate rows removed per table."""
    tables = retried_tables(load_info)
    if not tables:
        return {}
    schema = pipeline.default_schema
    removed: dict[str, int] = {}
    with pipeline.sql_client() as client:
        for table in sorted(tables):
            columns = schema.tables.get(table, {}).get("columns", {})
            key = [name for name, column in columns.items() if column.get("primary_key")]
            if not key:
                continue  # nothing says two equal rows are one: a keyless table keeps them
            name = client.make_qualified_table_name(table)
            count = _duplicates(client, name, key, list(columns), table)
            if count:
                _remove(client, name, key, table)
                removed[table] = count
                logger.warning(
                    "%s: a load job ran twice and inserted its rows twice; removed the %d "
                    "copies, one of each row kept",
                    table,
                    count,
                )
    return removed


def _quoted(client: SqlClientBase[Any], names: Iterable[str]) -> str:
    return ", ".join(client.escape_column_name(name) for name in names)


def _duplicates(
    client: SqlClientBase[Any], table: str, key: list[str], columns: list[str], name: str
) -> int:
    """Rows over one per key; raises when the extra rows are not copies."""
    rows = client.execute_sql(
        f"SELECT count(*), (SELECT count(*) FROM (SELECT DISTINCT {_quoted(client, key)} FROM "
        f"{table}) AS k), (SELECT count(*) FROM (SELECT DISTINCT {_quoted(client, columns)} "
        f"FROM {table}) AS r) FROM {table}"
    )
    total, keys, distinct_rows = (int(value) for value in (rows or [[0, 0, 0]])[0])
    if distinct_rows != keys:
        raise DuplicateRowsError(
            f"{name} holds {distinct_rows - keys} rows whose key repeats with other values: "
            f"not a retried load. Reload the table: caspio-sync run --tables {name} "
            "--full-refresh"
        )
    return total - keys


def _remove(client: SqlClientBase[Any], table: str, key: list[str], name: str) -> None:
    """Keeps the first physical row of each key (DuckDB's ``rowid``). Elsewhere a job loads
    in one transaction and cannot leave copies: if one did, the run stops."""
    if "duckdb" not in type(client).__module__:
        raise DuplicateRowsError(
            f"{name}: a load job ran twice and left copies of its rows; reload the table: "
            f"caspio-sync run --tables {name} --full-refresh"
        )
    client.execute_sql(
        f"DELETE FROM {table} WHERE rowid NOT IN (SELECT min(rowid) FROM {table} "
        f"GROUP BY {_quoted(client, key)})"
    )


__all__ = ["DuplicateRowsError", "remove_retried_duplicates", "retried_tables"]
