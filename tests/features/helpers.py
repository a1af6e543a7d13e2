"""Helpers for the feature tests: emulator credentials, API writes, reading destinations back."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import dlt
import requests

from sources.caspio.client import CaspioClient
from sources.caspio.credentials import CaspioCredentials

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
