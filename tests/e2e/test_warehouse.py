"""The pipeline into PostgreSQL (a real server) equals the emulator, value for value.

After a full load and after an incremental run that follows inserts, updates and deletes made
through the API, every row of every object is compared with the emulator's own rows: every
column, values of exact types, computed by the tests (``tests/wire_oracle.py``), not by the
connector or its DuckDB output.
"""

from __future__ import annotations

from typing import Any

import dlt
import psycopg2
import pytest

from pipelines.caspio_pipeline import run_sync
from sources.caspio import CaspioClient, CaspioCredentials
from tests import wire_oracle

OBJECTS = ["Customers", "Orders", "Order_Items", "Products", "Customer_Orders"]


def _credentials(emulator: Any) -> CaspioCredentials:
    return CaspioCredentials(
        client_id=emulator.client_id,
        client_secret=emulator.client_secret,
        integration_url=emulator.base_url,
    )


def _postgres_rows(dsn: str, schema: str, table: str) -> tuple[list[str], list[dict[str, Any]]]:
    """(data columns, rows by column) of a PostgreSQL table, values as psycopg2 gives them."""
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "select column_name from information_schema.columns "
            "where table_schema = %s and table_name = %s and column_name not like '\\_dlt%%'",
            [schema, table],
        )
        columns = sorted(row[0] for row in cur.fetchall())
        cols = ", ".join(f'"{c}"' for c in columns)
        cur.execute(f'select {cols} from "{schema}"."{table}"')
        rows = [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]
        return columns, rows


def _assert_equals_emulator(emulator: Any, dsn: str, schema: str, objects: list[str]) -> None:
    """Every PostgreSQL row is the emulator's row: every field a column (passwords none),
    every value of the type the field's Caspio type loads as (``tests/wire_oracle.py``)."""
    for obj in objects:
        fields = wire_oracle.field_types(emulator, obj)
        loaded_fields = {n: f for n, f in fields.items() if f["Type"] != "PASSWORD"}
        columns, rows = _postgres_rows(dsn, schema, obj.lower())
        assert columns == sorted(["pk_id", *(n.lower() for n in loaded_fields)]), obj
        wire = {str(r["PK_ID"]): r for r in emulator.table_rows(obj)}
        got = {str(r["pk_id"]): r for r in rows}
        assert len(rows) == len(got), f"{obj}: duplicate pk_id"
        assert set(got) == set(wire), obj
        for pk, w in wire.items():
            for name, value in w.items():
                field = None if name == "PK_ID" else loaded_fields[name]
                want = wire_oracle.expected(field, value)
                have = wire_oracle.loaded(got[pk][name.lower()])
                assert wire_oracle.same(want, have), (obj, pk, name, value, have, want)


@pytest.mark.postgres
def test_postgres_equals_duckdb_full_and_incremental(
    caspio_emulator: Any, postgres_dsn: str, postgres_dataset: str
) -> None:
    credentials = _credentials(caspio_emulator)
    postgres = dlt.destinations.postgres(credentials=postgres_dsn)

    def sync() -> dict[str, int]:
        report = run_sync(
            destination=postgres,
            dataset_name=postgres_dataset,
            pipeline_name="pg_e2e",
            credentials=credentials,
        )
        return dict(report.rows_by_table)

    first = sync()
    assert set(first) == {o.lower() for o in OBJECTS}
    _assert_equals_emulator(caspio_emulator, postgres_dsn, postgres_dataset, OBJECTS)

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

    second = sync()
    # only what changed is re-read: the new customer, the 3 updated orders (and their view
    # rows), and Products in full (it has no cursor field, so it is replaced)
    assert second.get("customers") == 1
    assert second.get("orders") == 3
    _assert_equals_emulator(caspio_emulator, postgres_dsn, postgres_dataset, OBJECTS)


@pytest.mark.postgres
def test_a_schema_update_that_loses_a_race_is_loaded_again(
    caspio_emulator: Any, postgres_dsn: str, postgres_dataset: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A parallel task of the same dataset creates a table a moment before this load does:
    PostgreSQL refuses the second CREATE (the Airflow DAG's table tasks met this on the call
    ledger's copy). Played for real: an object named like the table appears just before dlt's
    DDL, and is gone when the load runs again; the sync ends equal to the API."""
    from dlt.destinations.impl.postgres.postgres import PostgresClient

    original = PostgresClient.update_stored_schema
    raced: list[str] = []

    def update_stored_schema(client: Any, *args: Any, **kwargs: Any) -> Any:
        if raced or client.sql_client.dataset_name != postgres_dataset:
            return original(client, *args, **kwargs)
        raced.append("customers")
        with psycopg2.connect(postgres_dsn) as conn, conn.cursor() as cur:
            cur.execute(f'CREATE TYPE "{postgres_dataset}"."customers" AS (x int)')
        try:
            return original(client, *args, **kwargs)
        finally:
            with psycopg2.connect(postgres_dsn) as conn, conn.cursor() as cur:
                cur.execute(f'DROP TYPE "{postgres_dataset}"."customers"')

    monkeypatch.setattr(PostgresClient, "update_stored_schema", update_stored_schema)
    report = run_sync(
        destination=dlt.destinations.postgres(credentials=postgres_dsn),
        dataset_name=postgres_dataset,
        pipeline_name="pg_race",
        credentials=_credentials(caspio_emulator),
    )
    assert raced, "the race was never played"
    assert set(report.rows_by_table) == {o.lower() for o in OBJECTS}
    _assert_equals_emulator(caspio_emulator, postgres_dsn, postgres_dataset, OBJECTS)
