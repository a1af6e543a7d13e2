"""Several pipelines load into one dataset at once, and none loses another's staged rows.

Every sync merges the call ledger's copy into one table through dlt's staging table. Named
pipelines stage apart, so three syncs in threads of one process (as Dagster or Prefect run
tasks) end with every pipeline's ledger rows, each staged in its own schema."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import dlt
import pytest

from pipelines.caspio_pipeline import run_sync
from pipelines.staging import with_own_staging
from sources.caspio import CaspioCredentials
from tests.helpers import with_password

TABLES = {"Contacts": 20, "Notes": 5, "Big": 3000}
PIPELINES = {"Contacts": "caspio", "Notes": "caspio_hourly", "Big": "caspio_nightly"}
DATASET: dict[str, Any] = {
    "tables": {
        "Contacts": {
            "fields": [{"Name": "Name", "Type": "STRING"}],
            "rows": [{"Name": f"c{i}"} for i in range(TABLES["Contacts"])],
        },
        "Notes": {"fields": [{"Name": "Body", "Type": "TEXT"}], "rows": [{"Body": "n"}] * 5},
    }
}


@pytest.mark.postgres
def test_pipelines_in_threads_stage_apart_and_keep_every_ledger_row(
    caspio_emulator_factory: Any, postgres_dsn: str, postgres_dataset: str, tmp_path: Path
) -> None:
    import psycopg2

    emu = caspio_emulator_factory(dataset=DATASET, generate={"Big": TABLES["Big"]})
    credentials = CaspioCredentials(
        client_id=emu.client_id, client_secret=emu.client_secret, integration_url=emu.base_url
    )
    started = threading.Barrier(len(TABLES))

    def sync(table: str) -> int:
        started.wait(timeout=60)  # all three load at once, or the barrier breaks
        report = run_sync(
            destination=dlt.destinations.postgres(credentials=with_password(postgres_dsn)),
            dataset_name=postgres_dataset,
            pipeline_name=PIPELINES[table],
            pipelines_dir=str(tmp_path / "pipelines"),
            credentials=credentials,
            tables=[table],
        )
        return report.total_rows

    with ThreadPoolExecutor(len(TABLES)) as pool:
        rows = dict(zip(TABLES, pool.map(sync, TABLES), strict=True))
    assert rows == TABLES

    with psycopg2.connect(postgres_dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = "
            "'_caspio_call_ledger' AND table_schema LIKE %s",
            (f"{postgres_dataset}\\_staging%",),
        )
        staged = sorted(row[0] for row in cur.fetchall())
        cur.execute(
            f'SELECT DISTINCT "table" FROM "{postgres_dataset}"._caspio_call_ledger'
            " WHERE kind = 'records'"
        )
        ledger_tables = sorted(row[0] for row in cur.fetchall())
    assert staged == [
        f"{postgres_dataset}_staging",  # the default pipeline keeps dlt's layout
        f"{postgres_dataset}_staging_caspio_hourly",
        f"{postgres_dataset}_staging_caspio_nightly",
    ]
    assert ledger_tables == sorted(TABLES)


def _layout(destination: Any) -> str | None:
    return None if isinstance(destination, str) else destination.config_params.get(LAYOUT)


LAYOUT = "staging_dataset_name_layout"


def test_a_named_pipeline_stages_apart_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DESTINATION__STAGING_DATASET_NAME_LAYOUT", raising=False)
    monkeypatch.delenv("DESTINATION__POSTGRES__STAGING_DATASET_NAME_LAYOUT", raising=False)
    assert _layout(with_own_staging("postgres", "nightly", "caspio")) == "%s_staging_nightly"
    factory = dlt.destinations.postgres()
    own = with_own_staging(factory, "nightly", "caspio")
    assert _layout(own) == "%s_staging_nightly" and _layout(factory) is None  # a copy
    # left as they are: the default pipeline, DuckDB, a layout the user chose
    assert with_own_staging("postgres", "caspio", "caspio") == "postgres"
    assert with_own_staging("duckdb", "nightly", "caspio") == "duckdb"
    chosen = dlt.destinations.postgres(staging_dataset_name_layout="stage_%s")
    assert with_own_staging(chosen, "nightly", "caspio") is chosen
    for variable in (
        "DESTINATION__STAGING_DATASET_NAME_LAYOUT",
        "DESTINATION__POSTGRES__STAGING_DATASET_NAME_LAYOUT",
    ):
        with monkeypatch.context() as configured:
            configured.setenv(variable, "stage_%s")
            assert with_own_staging("postgres", "nightly", "caspio") == "postgres"
