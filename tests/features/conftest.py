"""Fixtures shared by the feature tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers import destination_for


@pytest.fixture(params=["duckdb", "postgres"])
def destination(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Any, str]:
    """(dlt destination, dataset name): a DuckDB file, or a fresh PostgreSQL schema."""
    if request.param == "duckdb":
        return destination_for("duckdb", tmp_path), "caspio"
    dsn = request.getfixturevalue("postgres_dsn")
    return destination_for("postgres", tmp_path, dsn), request.getfixturevalue("postgres_dataset")
