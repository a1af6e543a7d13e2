"""The same pipeline into PostgreSQL (a real server) and DuckDB: equal, value for value.

DuckDB parity with the emulator is proven type by type in tests/source; here PostgreSQL must
hold exactly what DuckDB holds after a full load and after an incremental run that follows
inserts, updates and deletes made through the API.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import dlt
import duckdb
import psycopg2
import pytest

from pipelines.caspio_pipeline import run_sync
from sources.caspio import CaspioClient, CaspioCredentials


def _credentials(emulator: Any) -> CaspioCredentials:
    return CaspioCredentials(
        client_id=emulator.client_id,
        client_secret=emulator.client_secret,
        integration_url=emulator.base_url,
    )


def _normalize(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.timezone.utc)
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return value
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, Decimal):
        return value.normalize()
    return value


def _data_columns(cursor: Any, schema: str, table: str) -> list[str]:
    cursor.execute(
        "select column_name from information_schema.columns "
        "where table_schema = %s and table_name = %s and column_name not like '\\_dlt%%' "
        "order by column_name",
        [schema, table],
    )
    return [row[0] for row in cursor.fetchall()]


def _postgres_rows(dsn: str, schema: str, table: str) -> list[dict[str, Any]]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        columns = _data_columns(cur, schema, table)
        cols = ", ".join(f'"{c}"' for c in columns)
        cur.execute(f'select {cols} from "{schema}"."{table}" order by "pk_id"')
        return [
            {c: _normalize(v) for c, v in zip(columns, row, strict=True)} for row in cur.fetchall()
        ]


def _duckdb_rows(path: str, table: str, columns: list[str]) -> list[dict[str, Any]]:
    with duckdb.connect(path, read_only=True) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        cols = ", ".join(f'"{c}"' for c in columns)
        rows = conn.execute(f'select {cols} from caspio."{table}" order by "pk_id"').fetchall()
        return [{c: _normalize(v) for c, v in zip(columns, row, strict=True)} for row in rows]


def _assert_same(dsn: str, schema: str, duckdb_file: str, tables: list[str]) -> None:
    for table in tables:
        pg = _postgres_rows(dsn, schema, table)
        assert pg, f"{table} is empty in PostgreSQL"
        dd = _duckdb_rows(duckdb_file, table, list(pg[0].keys()))
        assert len(pg) == len(dd), table
        assert pg == dd, table


@pytest.mark.postgres
def test_postgres_equals_duckdb_full_and_incremental(
    caspio_emulator: Any, postgres_dsn: str, postgres_dataset: str
) -> None:
    credentials = _credentials(caspio_emulator)
    postgres = dlt.destinations.postgres(credentials=postgres_dsn)

    def sync_both() -> dict[str, int]:
        to_pg = run_sync(
            destination=postgres,
            dataset_name=postgres_dataset,
            pipeline_name="pg_e2e",
            credentials=credentials,
        )
        to_duck = run_sync(
            duckdb_file="e2e.duckdb", pipeline_name="duck_e2e", credentials=credentials
        )
        assert to_pg.rows_by_table == to_duck.rows_by_table
        return to_pg.rows_by_table

    first = sync_both()
    tables = sorted(first)
    assert {"customers", "orders", "order_items", "products", "customer_orders"} <= set(tables)
    _assert_same(postgres_dsn, postgres_dataset, "e2e.duckdb", tables)

    with CaspioClient(credentials, token_cache=False) as api:
        api.request(
            "POST",
            "/tables/Customers/records",
            json={"Name": "Late Arrival Ltd", "Segment": "SMB", "Credit_Limit": 12.5},
        )
        api.request(
            "PUT",
            "/tables/Orders/records",
            params={"q.where": "PK_ID <= 3"},
            json={"Status": "Refunded"},
        )
        api.request("DELETE", "/tables/Products/records", params={"q.where": "PK_ID = 1"})

    second = sync_both()
    # only what changed is re-read: the new customer, the 3 updated orders (and their view
    # rows), and Products in full (it has no cursor field, so it is replaced)
    assert second.get("customers") == 1
    assert second.get("orders") == 3
    _assert_same(postgres_dsn, postgres_dataset, "e2e.duckdb", tables)

    with psycopg2.connect(postgres_dsn) as conn, conn.cursor() as cur:
        cur.execute(
            f'select count(*) from "{postgres_dataset}".orders where status = %s', ["Refunded"]
        )
        assert cur.fetchone()[0] >= 3  # type: ignore[index]
        cur.execute(
            f'select count(*) from "{postgres_dataset}".customers where name = %s',
            ["Late Arrival Ltd"],
        )
        assert cur.fetchone()[0] == 1  # type: ignore[index]
        cur.execute(f'select count(*) from "{postgres_dataset}".products where pk_id = 1')
        assert cur.fetchone()[0] == 0  # type: ignore[index]
