"""Helpers for end-to-end tests: point dlt config at an emulator, read destinations back."""

from __future__ import annotations

from typing import Any

import duckdb
import pytest


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
                "where table_schema = ? and table_name not like '_dlt%'",
                [dataset],
            ).fetchall()
        ]
        return {
            name: conn.execute(f'select count(*) from "{dataset}"."{name}"').fetchone()[0]  # type: ignore[index]
            for name in names
        }
