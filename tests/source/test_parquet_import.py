"""The DuckDB path that writes each object's Parquet file itself (``parquet_import.py``): what
lands is what dlt's own Parquet path lands, and every case where dlt must see the rows (a
user's map, a schema contract, dlt's own columns, a changed field type) still takes dlt's path.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from dlt.pipeline.exceptions import PipelineStepFailed

from sources.caspio import CaspioClient, CaspioQuotaExceededError, caspio
from tests.helpers import design

from .conftest import credentials_for
from .test_pipeline import OBJECTS, make_pipeline, query

MakeClient = Callable[..., CaspioClient]


def loaded_parquet_files(tmp_path: Path, name: str) -> list[Path]:
    return sorted((tmp_path / "pipelines" / name / "load" / "loaded").rglob("*.parquet"))


def uses_dictionaries(path: Path) -> bool:
    """dlt's writer dictionary-encodes text columns; ours never does (PARQUET_OPTIONS)."""
    meta = pq.ParquetFile(path).metadata
    row_group = meta.row_group(0)
    return any(
        "RLE_DICTIONARY" in row_group.column(i).encodings for i in range(row_group.num_columns)
    )


def has_statistics(path: Path) -> bool:
    """Min/max per column chunk: dlt's writer keeps them; ours skips them (read by nothing)."""
    row_group = pq.ParquetFile(path).metadata.row_group(0)
    return any(row_group.column(i).is_stats_set for i in range(row_group.num_columns))


def notes_dataset(priority_type: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "tables": {
            "Notes": {
                "fields": [
                    {"Name": "Body", "Type": "STRING"},
                    {"Name": "Priority", "Type": priority_type},
                    {
                        "Name": "Updated",
                        "Type": "TIMESTAMP",
                        "OnInsert": True,
                        "OnUpdate": True,
                        "TimeZone": "UTC",
                    },
                ],
                "rows": rows,
            }
        }
    }


def test_imported_files_land_exactly_what_dlts_writer_lands(
    caspio_emulator: Any, make_client: MakeClient, tmp_path: Path
) -> None:
    emu = caspio_emulator
    ours = make_pipeline(tmp_path, "ours")
    # "evolve" is dlt's default behaviour, but any contract sends the pages through dlt
    theirs = make_pipeline(tmp_path, "theirs")

    def sync_both() -> None:
        ours.run(caspio(credentials=credentials_for(emu), client=make_client(emu), tables=OBJECTS))
        theirs.run(
            caspio(
                credentials=credentials_for(emu),
                client=make_client(emu),
                tables=OBJECTS,
                schema_contract={"columns": "evolve"},
            )
        )

    sync_both()  # full: replace
    assert emu.update("Customers", "PK_ID <= 3", {"City": "Changed City"}) == 3
    sync_both()  # incremental: a merge of the changed customers and the view rows they touch
    assert query(
        tmp_path, "SELECT count(*) FROM caspio.customers WHERE city = 'Changed City'", "ours"
    ) == [(3,)]
    our_files = loaded_parquet_files(tmp_path, "ours")
    their_files = loaded_parquet_files(tmp_path, "theirs")
    assert len(our_files) == len(their_files) > len(OBJECTS)
    assert not any(uses_dictionaries(f) for f in our_files), "our writer made these files"
    assert all(uses_dictionaries(f) for f in their_files), "dlt's writer made these files"
    assert not any(has_statistics(f) for f in our_files)
    assert all(has_statistics(f) for f in their_files)
    # the files written inside the extract package went away with it
    assert not list((tmp_path / "pipelines").rglob("caspio_parquet"))

    columns_sql = (
        "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns"
        " WHERE table_schema = 'caspio' ORDER BY table_name, ordinal_position"
    )
    assert query(tmp_path, columns_sql, "ours") == query(tmp_path, columns_sql, "theirs")
    for table in ("customers", "products", "orders", "order_items", "customer_orders"):
        sql = f"SELECT * FROM caspio.{table} ORDER BY ALL"
        rows = query(tmp_path, sql, "ours")
        assert rows, table
        assert rows == query(tmp_path, sql, "theirs"), table


def test_a_users_map_still_sees_the_rows(
    caspio_emulator: Any, make_client: MakeClient, tmp_path: Path
) -> None:
    emu = caspio_emulator
    source = caspio(credentials=credentials_for(emu), client=make_client(emu), tables=["Products"])
    source.resources["products"].add_map(lambda table: table.slice(0, 1))
    make_pipeline(tmp_path).run(source)
    assert len(emu.table_rows("Products")) > 1
    assert query(tmp_path, "SELECT count(*) FROM caspio.products") == [(1,)]


def test_dlt_load_id_column_when_the_user_asks_for_it(
    caspio_emulator: Any, make_client: MakeClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID", "true")
    emu = caspio_emulator
    pipeline = make_pipeline(tmp_path)
    info = pipeline.run(
        caspio(credentials=credentials_for(emu), client=make_client(emu), tables=["Products"])
    )
    assert query(tmp_path, "SELECT DISTINCT _dlt_load_id FROM caspio.products") == [
        (info.loads_ids[0],)
    ]


def test_a_contract_that_discards_a_new_column_is_obeyed(
    caspio_emulator_factory: Callable[..., Any], make_client: MakeClient, tmp_path: Path
) -> None:
    dataset = notes_dataset("INTEGER", [{"Body": "a", "Priority": 1}])
    dataset["tables"]["Notes"]["fields"].pop(1)
    dataset["tables"]["Notes"]["rows"] = [{"Body": "a"}]
    emu = caspio_emulator_factory(dataset=dataset)
    pipeline = make_pipeline(tmp_path)
    contract: Any = {"columns": "discard_value"}

    def sync() -> None:
        pipeline.run(
            caspio(
                credentials=credentials_for(emu),
                client=make_client(emu),
                tables=["Notes"],
                schema_contract=contract,
            )
        )

    sync()
    design(emu, "POST", "tables/Notes/fields", {"Name": "Priority", "Type": "INTEGER"})
    emu.insert("Notes", {"Body": "b", "Priority": 1})
    sync()  # the second run meets the new Priority column
    columns = {
        name
        for (name,) in query(
            tmp_path,
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'notes'",
        )
    }
    assert "priority" not in columns
    assert query(tmp_path, "SELECT body FROM caspio.notes ORDER BY pk_id") == [("a",), ("b",)]


def test_a_field_whose_type_changed_stops_the_sync_before_any_load(
    caspio_emulator_factory: Callable[..., Any], make_client: MakeClient, tmp_path: Path
) -> None:
    emu = caspio_emulator_factory(dataset=notes_dataset("INTEGER", [{"Body": "a", "Priority": 1}]))
    pipeline = make_pipeline(tmp_path)
    pipeline.run(caspio(credentials=credentials_for(emu), client=make_client(emu)))
    design(emu, "PUT", "tables/Notes/fields/Priority", {"Type": "STRING"})
    emu.update("Notes", "PK_ID = 1", {"Priority": "high"})
    client = make_client(emu)
    emu.reset_log()
    # /fields shows the new type before any page is read: the sync stops, nothing loaded
    with pytest.raises(PipelineStepFailed) as failed:
        pipeline.run(caspio(credentials=credentials_for(emu), client=client))
    assert failed.value.step == "extract"
    assert "Priority from INTEGER to STRING (column bigint -> text)" in str(failed.value)
    assert "--full-refresh" in str(failed.value)
    assert client.stats.by_call["fields"] == 1
    assert not any(e.path.endswith("/records") for e in emu.log)
    assert query(tmp_path, "SELECT priority FROM caspio.notes") == [(1,)], "nothing lost"
    # a full refresh (caspio-sync run --full-refresh) rebuilds the table with the new type
    pipeline.run(
        caspio(credentials=credentials_for(emu), client=make_client(emu)),
        refresh="drop_resources",
    )
    assert query(tmp_path, "SELECT priority FROM caspio.notes") == [("high",)]


def test_values_that_stop_fitting_after_the_first_page_fail_clearly_and_lose_nothing(
    caspio_emulator_factory: Callable[..., Any], make_client: MakeClient, tmp_path: Path
) -> None:
    first = [{"Body": str(i), "Priority": i} for i in range(10)]
    emu = caspio_emulator_factory(dataset=notes_dataset("INTEGER", first))
    pipeline = make_pipeline(tmp_path)
    pipeline.run(caspio(credentials=credentials_for(emu), client=make_client(emu)))
    fields_then = make_client(emu).get_fields("tables", "Notes")
    # retyped to text right after the next run read /fields (the client below answers /fields
    # as it was): the first page's values still read as integers, the second page's do not
    design(emu, "PUT", "tables/Notes/fields/Priority", {"Type": "STRING"})
    emu.update("Notes", "PK_ID > 5", {"Priority": "high"})
    client = make_client(emu)
    client.get_fields = lambda kind, name: fields_then  # type: ignore[method-assign]
    with pytest.raises(PipelineStepFailed) as failed:
        pipeline.run(
            caspio(
                credentials=credentials_for(emu),
                client=client,
                page_size=5,
                max_workers=1,
                table_options={"Notes": {"cursor_field": False}},
            )
        )
    assert "do not fit the field types" in str(failed.value)
    assert query(tmp_path, "SELECT count(*), sum(priority) FROM caspio.notes") == [(10, 45)]


def test_a_failed_read_leaves_no_file_and_the_next_run_loads_every_row_once(
    caspio_emulator: Any, make_client: MakeClient, tmp_path: Path
) -> None:
    emu = caspio_emulator
    rows = len(emu.table_rows("Customers"))
    pipeline = make_pipeline(tmp_path)
    emu.configure(quota=4)  # the listing, /fields and two pages of five rows, then refusals
    with pytest.raises(Exception) as failed:
        pipeline.run(
            caspio(
                credentials=credentials_for(emu),
                client=make_client(emu),
                tables=["Customers"],
                page_size=5,
                max_workers=1,
            )
        )
    assert any(isinstance(e, CaspioQuotaExceededError) for e in _chain(failed.value)), failed.value
    assert not list((tmp_path / "pipelines").rglob("*.parquet"))
    emu.configure(quota=None)
    pipeline.run(
        caspio(credentials=credentials_for(emu), client=make_client(emu), tables=["Customers"])
    )
    assert query(tmp_path, "SELECT count(*), count(DISTINCT pk_id) FROM caspio.customers") == [
        (rows, rows)
    ]


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def test_outside_a_pipeline_the_resource_yields_arrow(
    caspio_emulator: Any, make_client: MakeClient
) -> None:
    emu = caspio_emulator
    source = caspio(credentials=credentials_for(emu), client=make_client(emu), tables=["Products"])
    items = list(source.resources["products"])
    assert sum(item.num_rows for item in items) == len(emu.table_rows("Products"))
