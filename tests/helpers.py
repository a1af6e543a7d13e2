"""Helpers every test module shares: emulator credentials and accounts, API writes and design
changes, and independent readers of DuckDB and PostgreSQL destinations.

The oracles here read the emulator's wire rows and convert them by hand (``Decimal`` for
CURRENCY, ``zoneinfo`` for UTC stamps): they never call the connector's own converters.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import dlt
import duckdb
import pytest
import requests

from sources.caspio import CaspioClient, CaspioCredentials


def use_emulator_credentials(monkeypatch: pytest.MonkeyPatch, emulator: Any) -> None:
    """Configure the source exactly as a user would: through SOURCES__CASPIO__ env vars."""
    monkeypatch.setenv("SOURCES__CASPIO__CREDENTIALS__CLIENT_ID", emulator.client_id)
    monkeypatch.setenv("SOURCES__CASPIO__CREDENTIALS__CLIENT_SECRET", emulator.client_secret)
    monkeypatch.setenv("SOURCES__CASPIO__CREDENTIALS__INTEGRATION_URL", emulator.base_url)


def duckdb_tables(path: str, dataset: str = "caspio") -> dict[str, int]:
    """Row counts of the data tables (dlt's own tables left out) in a DuckDB dataset."""
    with duckdb.connect(path, read_only=True) as conn:
        names = [
            row[0]
            for row in conn.execute(
                "select table_name from information_schema.tables "
                "where table_schema = ? and table_name not like '\\_dlt%' escape '\\' "
                "and table_name <> '_caspio_call_ledger'",
                [dataset],
            ).fetchall()
        ]
        return {
            name: conn.execute(f'select count(*) from "{dataset}"."{name}"').fetchone()[0]  # type: ignore[index]
            for name in names
        }


CONTACTS_AND_NOTES: dict[str, Any] = {
    "tables": {
        "Contacts": {
            "fields": [
                {"Name": "Name", "Type": "STRING"},
                {"Name": "Score", "Type": "INTEGER"},
                {
                    "Name": "Updated",
                    "Type": "TIMESTAMP",
                    "OnInsert": True,
                    "OnUpdate": True,
                    "TimeZone": "UTC",
                },
            ],
            "rows": [{"Name": f"contact {i}", "Score": i} for i in range(1, 31)],
        },
        "Notes": {
            "fields": [{"Name": "Body", "Type": "TEXT"}],
            "rows": [{"Body": f"note {i}"} for i in range(1, 13)],
        },
    }
}
"""A dataset with one incremental table (Contacts) and one replaced in full (Notes)."""


def credentials_for(emu: Any) -> CaspioCredentials:
    return CaspioCredentials(
        client_id=emu.client_id, client_secret=emu.client_secret, integration_url=emu.base_url
    )


def client_for(emu: Any) -> CaspioClient:
    return CaspioClient(credentials_for(emu))


def api_delete(emu: Any, table: str, where: str) -> int:
    """Delete rows through the REST API, as a Caspio user's app would (counted by the emulator)."""
    token = emu.access_token()
    resp = requests.delete(
        f"{emu.v3_url}/tables/{table}/records",
        params={"q.where": where},
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        timeout=10,
    )
    resp.raise_for_status()
    return int(resp.json()["RecordsAffected"])


def destination_for(kind: str, tmp_path: Path, postgres_dsn: str | None = None) -> Any:
    if kind == "duckdb":
        return dlt.destinations.duckdb(credentials=str(tmp_path / "features.duckdb"))
    return dlt.destinations.postgres(credentials=with_password(postgres_dsn or ""))


def with_password(dsn: str) -> str:
    """dlt's PostgresCredentials insist on a password; a trust-auth server ignores this one."""
    parts = urlsplit(dsn)
    if parts.password is not None or not parts.username:
        return dsn
    netloc = f"{parts.username}:unused@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def read_rows(pipeline: Any, table: str, order_by: str = "pk_id") -> list[dict[str, Any]]:
    """Every row of a destination table (dlt's load columns left out), ordered by key."""
    with pipeline.sql_client() as sql:
        qualified = sql.make_qualified_table_name(table)
        with sql.execute_query(f"SELECT * FROM {qualified} ORDER BY {order_by}") as cur:
            names = [d[0] for d in cur.description]
            rows = cur.fetchall()
    return [
        {k: v for k, v in zip(names, row, strict=True) if not k.startswith("_dlt")} for row in rows
    ]


PEOPLE_FIELDS: list[dict[str, Any]] = [
    {"Name": "Name", "Type": "STRING"},
    {"Name": "Age", "Type": "INTEGER"},
    {"Name": "Balance", "Type": "CURRENCY"},
    {"Name": "Updated", "Type": "TIMESTAMP", "OnInsert": True, "OnUpdate": True, "TimeZone": "UTC"},
]


def people_account(rows: int, first_name: str = "P", host: str | None = None) -> dict[str, Any]:
    """A one-table account: ``People`` with ``rows`` rows of known values."""
    account: dict[str, Any] = {
        "tables": {
            "People": {
                "fields": PEOPLE_FIELDS,
                "rows": [
                    {
                        "Name": f"{first_name}{i}",
                        "Age": 20 + i % 50,
                        "Balance": i * 1.25,
                        "Updated": f"2024-01-{1 + i % 28:02d}T10:00:00",
                    }
                    for i in range(1, rows + 1)
                ],
            }
        }
    }
    if host:
        account["account"] = {"host": host}
    return account


def design(emu: Any, method: str, path: str, body: dict[str, Any] | None = None) -> int:
    """One table design call (``POST tables/People/fields`` ...) through Caspio's REST API."""
    answer = requests.request(
        method,
        f"{emu.v3_url}/{path}",
        json=body,
        headers={
            "Authorization": f"Bearer {emu.access_token()}",
            "Content-Type": "application/json",
        },
        timeout=10,
    )
    assert answer.status_code in (200, 201, 204), (answer.status_code, answer.text)
    return answer.status_code


def expected_value(value: Any, caspio_type: str) -> Any:
    """A wire value as the destination must hold it (hand-written, per type)."""
    if value is None:
        return None
    if caspio_type == "CURRENCY":
        return Decimal(str(value)).quantize(Decimal("0.0001"))
    if caspio_type == "TIMESTAMP":
        return dt.datetime.fromisoformat(value).replace(tzinfo=ZoneInfo("UTC"))
    if caspio_type == "NUMBER":
        return float(value)
    return value


def expected_rows(emu: Any, table: str, types: dict[str, str]) -> list[tuple[Any, ...]]:
    """The API's rows of ``table`` as ``(PK_ID, *fields in types' order)``, sorted by PK_ID."""
    rows = sorted(emu.table_rows(table), key=lambda r: r["PK_ID"])
    return [
        (row["PK_ID"], *(expected_value(row.get(name), t) for name, t in types.items()))
        for row in rows
    ]


def duckdb_values(path: str, table: str, columns: list[str], dataset: str = "caspio") -> list[Any]:
    """``(pk_id, *columns)`` of a DuckDB table, sorted by pk_id; timestamps as aware UTC."""
    with duckdb.connect(path, read_only=True) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        names = ", ".join(f'"{c.lower()}"' for c in ["PK_ID", *columns])
        rows = conn.execute(f'select {names} from "{dataset}"."{table}" order by 1').fetchall()
    return [tuple(_utc(v) for v in row) for row in rows]


PEOPLE_TYPES: dict[str, str] = {field["Name"]: field["Type"] for field in PEOPLE_FIELDS}


def assert_people_equal_to_api(emu: Any, path: str, dataset: str = "caspio") -> None:
    """The ``people`` table of the DuckDB file at ``path`` holds what ``People`` holds in Caspio."""
    assert duckdb_values(path, "people", list(PEOPLE_TYPES), dataset) == expected_rows(
        emu, "People", PEOPLE_TYPES
    )


def postgres_rows(dsn: str, schema: str, table: str, columns: list[str]) -> list[Any]:
    import psycopg2

    names = ", ".join(f'"{c.lower()}"' for c in ["PK_ID", *columns])
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SET TIME ZONE 'UTC'")
        cur.execute(f'select {names} from "{schema}"."{table}" order by 1')
        return [tuple(_utc(v) for v in row) for row in cur.fetchall()]


def _utc(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(ZoneInfo("UTC"))
    return value


def sync_on_a_fresh_machine_after_a_change(
    emu: Any, monkeypatch: pytest.MonkeyPatch, machine: Path, sync: Callable[[], int]
) -> None:
    """Two ``People`` rows change in Caspio, then ``sync()`` runs as on a fresh machine (dlt's
    data directory new at ``machine``, the same ``caspio_sync.duckdb``): it restores the state
    from the destination, reads incrementally (one records call, filtered on ``Updated``) and
    ends equal to the API."""
    emu.set_clock(None)
    emu.update("People", "PK_ID IN (3, 4)", {"Age": 99})
    monkeypatch.setenv("DLT_DATA_DIR", str(machine))
    emu.reset_log()
    assert sync() == 0
    records = [e for e in emu.log if e.path.endswith("/records")]
    assert len(records) == 1 and "Updated" in str(records[0].query), "state restored: incremental"
    assert_people_equal_to_api(emu, "caspio_sync.duckdb")


def drop_dataset(dsn: str, dataset: str) -> None:
    """A PostgreSQL dataset's schema and its staging schemas (``<dataset>_staging``, and a named
    pipeline's ``<dataset>_staging_<pipeline>``)."""
    import psycopg2

    conn = psycopg2.connect(dsn, connect_timeout=10)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname = %s OR nspname LIKE %s",
                (dataset, f"{dataset}\\_staging%"),
            )
            for (schema,) in cur.fetchall():
                cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        conn.close()
