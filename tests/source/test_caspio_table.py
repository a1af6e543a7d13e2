"""``caspio_table``: one Caspio object as a resource of a user's own source, with the same read,
state and checks as ``caspio()``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import dlt
import duckdb

from sources.caspio import CaspioClient, caspio_table

from .conftest import credentials_for

MakeClient = Callable[..., CaspioClient]


def test_one_table_in_a_source_of_ones_own(
    caspio_emulator: Any, make_client: MakeClient, tmp_path: Path
) -> None:
    emu = caspio_emulator

    @dlt.source(name="mine")
    def mine() -> Any:
        yield caspio_table("Orders", credentials=credentials_for(emu), client=make_client(emu))
        yield dlt.resource([{"id": 1}], name="other")

    db = str(tmp_path / "mine.duckdb")
    pipeline = dlt.pipeline(
        "mine", destination=dlt.destinations.duckdb(db), pipelines_dir=str(tmp_path / "p")
    )
    pipeline.run(mine())
    with duckdb.connect(db, read_only=True) as conn:
        got = conn.execute("select pk_id from mine_dataset.orders order by 1").fetchall()
    assert [r[0] for r in got] == sorted(r["PK_ID"] for r in emu.table_rows("Orders"))

    # incremental as in caspio(): one /fields and one page when nothing changed
    emu.reset_log()
    pipeline.run(mine())
    assert [e.path.rsplit("/", 1)[1] for e in emu.log] == ["fields", "records"]


def test_options_and_settings_of_that_one_object(
    caspio_emulator: Any, make_client: MakeClient, tmp_path: Path
) -> None:
    emu = caspio_emulator
    resource = caspio_table(
        "Customers",
        credentials=credentials_for(emu),
        options={"fields": ["Name"], "cursor_field": False},
        client=make_client(emu),
    )
    pipeline = dlt.pipeline(
        "one",
        destination=dlt.destinations.duckdb(str(tmp_path / "one.duckdb")),
        pipelines_dir=str(tmp_path / "p"),
    )
    pipeline.run(resource)
    with duckdb.connect(str(tmp_path / "one.duckdb"), read_only=True) as conn:
        columns = {
            r[0]
            for r in conn.execute(
                "select column_name from information_schema.columns where table_name = 'customers'"
            ).fetchall()
        }
    assert {"pk_id", "name"} <= columns and "segment" not in columns
