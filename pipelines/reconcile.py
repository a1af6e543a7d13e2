"""Deleted-rows reconciliation: remove (or mark) destination rows whose PK_ID is gone in Caspio.

Runs on its own schedule (``caspio-sync reconcile``, e.g. nightly while ``run`` is hourly)
because it costs one call per 1,000 rows of every table, where an unchanged incremental table
costs one call. Per table:

1. read the destination's keys first (a snapshot; rows loaded after it are never touched, so a
   sync running at the same time cannot lose a row it just inserted);
2. read Caspio's live keys (``sources.caspio.deletes.scan_keys``: ``ceil(rows/1000)`` calls);
3. in one destination transaction, ``DELETE`` the missing keys, or, with
   ``table_options.<T>.deletes = "mark"``, add ``_caspio_deleted_at`` if it is missing and set it
   to the pass's timestamp on rows not yet marked.

Cost per pass: ``1`` (the ``/tables`` list, to tell tables from views and skip tables dropped in
Caspio) ``+ sum over tables of max(1, ceil(rows / 1000))`` (+1 token call when no cached token).
Views are not reconciled: their rows are recomputed joins without a stable key of their own.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fnmatch
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from dlt.common.normalizers.naming.snake_case import NamingConvention as SnakeCaseNaming
from dlt.pipeline.pipeline import Pipeline
from typing_extensions import Unpack

from sources.caspio import (
    DELETED_AT_COLUMN,
    PK_FIELD,
    CaspioClient,
    CaspioConfigError,
    DeleteMode,
    missing_keys,
    scan_keys,
    validate_table_options,
)

from .setup import SyncArgs, open_sync

_DELETE_CHUNK = 1000
"""Keys per DELETE/UPDATE statement: keeps statements short on every warehouse."""

_TIMESTAMP_TZ_TYPES = {
    "snowflake": "TIMESTAMP_TZ",
    "bigquery": "TIMESTAMP",
    "mssql": "DATETIMEOFFSET",
    "synapse": "DATETIMEOFFSET",
    "clickhouse": "DateTime64(6, 'UTC')",
}
"""Column type of ``_caspio_deleted_at`` where SQL's ``TIMESTAMP WITH TIME ZONE`` is not it."""


@dataclasses.dataclass
class TableReconcile:
    """What the pass did to one table."""

    table: str
    mode: DeleteMode
    destination_rows: int
    live_rows: int
    missing: int
    applied: int
    api_calls: int


@dataclasses.dataclass
class ReconcileReport:
    """The whole pass: per table, and the API calls it spent (token and /tables included)."""

    destination: str
    dataset_name: str
    tables: list[TableReconcile]
    api_calls: int
    seconds: float
    skipped: dict[str, str] = dataclasses.field(default_factory=dict)

    def summary(self) -> str:
        width = max([len(t.table) for t in self.tables] + [5])
        lines = [f"{'table'.ljust(width)}  mode    live rows  gone  applied  calls"]
        for t in self.tables:
            lines.append(
                f"{t.table.ljust(width)}  {t.mode:<6} {t.live_rows:>10,} {t.missing:>5,} "
                f"{t.applied:>8,} {t.api_calls:>6,}"
            )
        for table, reason in sorted(self.skipped.items()):
            lines.append(f"{table.ljust(width)}  skipped: {reason}")
        gone = sum(t.applied for t in self.tables)
        lines.append(
            f"{gone:,} deleted rows reconciled in {self.destination} dataset "
            f"'{self.dataset_name}' in {self.seconds:.1f}s; Caspio API calls: {self.api_calls:,}"
        )
        return "\n".join(lines)


def _selected(names: Sequence[str], patterns: Sequence[str] | None) -> list[str]:
    if not patterns:
        return list(names)

    def matches(name: str, pattern: str) -> bool:
        return fnmatch.fnmatchcase(name.lower(), pattern.lower())

    chosen = [n for n in names if any(matches(n, p) for p in patterns)]
    unknown = [p for p in patterns if not any(matches(n, p) for n in names)]
    if unknown:
        raise CaspioConfigError(
            f"reconcile: no Caspio table matches {', '.join(map(repr, unknown))}; tables: "
            f"{', '.join(sorted(names)) or 'none'}"
        )
    return chosen


def reconcile(
    pipeline: Pipeline,
    client: CaspioClient,
    tables: Sequence[str] | None = None,
    table_options: Mapping[str, Any] | None = None,
    mode: DeleteMode | None = None,
) -> ReconcileReport:
    """Reconcile deletes for the Caspio tables already loaded by ``pipeline``.

    ``mode`` overrides every table's ``deletes`` option (the CLI's ``--mode``).
    """
    started = time.perf_counter()
    calls_before = client.stats.snapshot()["calls"]
    pipeline.sync_destination()  # a fresh machine restores schema and state from the warehouse
    options = validate_table_options(table_options)
    caspio_tables = client.list_tables()
    results: list[TableReconcile] = []
    skipped: dict[str, str] = {}
    naming = pipeline.default_schema.naming if pipeline.default_schema_name else SnakeCaseNaming()
    for table in _selected(caspio_tables, tables):
        table_mode = mode or options.for_object(table).deletes
        if table_mode == "off":
            skipped[table] = "deletes = 'off'"
            continue
        # the destination decides what is loaded (not this pipeline's schema: a per-table
        # pipeline restored on a fresh worker may hold another table's copy of the schema)
        result = _reconcile_table(pipeline, client, table, naming, table_mode)
        if result is None:
            skipped[table] = "not loaded into this dataset yet"
        else:
            results.append(result)
    return ReconcileReport(
        destination=pipeline.destination.destination_name,
        dataset_name=pipeline.dataset_name,
        tables=results,
        api_calls=client.stats.snapshot()["calls"] - calls_before,
        seconds=time.perf_counter() - started,
        skipped=skipped,
    )


def _reconcile_table(
    pipeline: Pipeline, client: CaspioClient, table: str, naming: Any, mode: DeleteMode
) -> TableReconcile | None:
    """One table's pass, or ``None`` when the destination has no such table (nothing to do)."""
    dest_table = naming.normalize_table_identifier(table)
    pk_column = naming.normalize_identifier(PK_FIELD)
    mark_column = naming.normalize_identifier(DELETED_AT_COLUMN)
    with pipeline.destination_client() as job_client:
        exists, columns = job_client.get_storage_table(dest_table)  # type: ignore[attr-defined]
    if not exists or pk_column not in columns:
        return None
    has_mark = mark_column in columns
    with pipeline.sql_client() as sql:
        qualified = sql.make_qualified_table_name(dest_table)
        pk = sql.escape_column_name(pk_column)
        mark = sql.escape_column_name(mark_column)
        only_live = f" WHERE {mark} IS NULL" if has_mark else ""
        # 1. the destination's keys, before Caspio is read (see the module docstring)
        rows = sql.execute_sql(f"SELECT {pk} FROM {qualified}{only_live}") or []
        destination_keys = np.asarray([r[0] for r in rows if r[0] is not None], dtype=np.int64)
        # 2. Caspio's live keys
        scan = scan_keys(client, table)
        gone = missing_keys(destination_keys, scan.keys)
        # 3. one transaction per table
        applied = 0
        with sql.begin_transaction():
            if mode == "mark" and not has_mark:
                column_type = _TIMESTAMP_TZ_TYPES.get(
                    pipeline.destination.destination_name, "TIMESTAMP WITH TIME ZONE"
                )
                sql.execute_sql(f"ALTER TABLE {qualified} ADD COLUMN {mark} {column_type}")
            stamp = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
            for chunk in _chunks(gone):
                keys = ", ".join(str(int(k)) for k in chunk)
                if mode == "mark":
                    sql.execute_sql(
                        f"UPDATE {qualified} SET {mark} = %s WHERE {pk} IN ({keys})", stamp
                    )
                else:
                    sql.execute_sql(f"DELETE FROM {qualified} WHERE {pk} IN ({keys})")
                applied += len(chunk)
    return TableReconcile(
        table=table,
        mode=mode,
        destination_rows=len(destination_keys),
        live_rows=len(scan.keys),
        missing=len(gone),
        applied=applied,
        api_calls=scan.calls,
    )


def _chunks(keys: np.ndarray) -> Iterator[np.ndarray]:
    for start in range(0, len(keys), _DELETE_CHUNK):
        yield keys[start : start + _DELETE_CHUNK]


def run_reconcile(
    mode: DeleteMode | None = None,
    table_options: Mapping[str, Any] | None = None,
    **args: Unpack[SyncArgs],
) -> ReconcileReport:
    """The ``caspio-sync reconcile`` entry point: same pipeline, dataset and settings as
    ``run_sync`` (``tables`` and ``table_options`` default to ``[sources.caspio]``'s)."""
    if table_options is not None:
        args["source_options"] = {
            **(args.get("source_options") or {}),
            "table_options": table_options,
        }
    setup = open_sync(**args)
    settings = setup.settings
    return reconcile(
        setup.pipeline,
        setup.client,
        tables=settings.tables,
        table_options=settings.table_options,
        mode=mode,
    )
