"""Helpers of the lifecycle tests: small accounts, design changes over HTTP, an exact oracle.

The oracle reads the emulator's wire rows and converts them by hand (``Decimal`` for CURRENCY,
``zoneinfo`` for the UTC stamps): it never calls the connector's own converters.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import requests

PEOPLE_FIELDS = [
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


def duckdb_rows(path: str, table: str, columns: list[str], dataset: str = "caspio") -> list[Any]:
    """``(pk_id, *columns)`` of a DuckDB table, sorted by pk_id; timestamps as aware UTC."""
    with duckdb.connect(path, read_only=True) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        names = ", ".join(f'"{c.lower()}"' for c in ["PK_ID", *columns])
        rows = conn.execute(f'select {names} from "{dataset}"."{table}" order by 1').fetchall()
    return [tuple(_utc(v) for v in row) for row in rows]


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
