"""dlt's own hints and run arguments win over the source's defaults, or the run stops in one
line: ``apply_hints(write_disposition=..., primary_key=..., columns=...)`` and
``pipeline.run(..., write_disposition=...)``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dlt.pipeline.exceptions import PipelineStepFailed

from sources.caspio import CaspioClient, CaspioConfigError, caspio, exception_chain
from tests.helpers import people_account

from .conftest import record_calls, reset_log
from .test_windows import credentials_for, pipeline_for

MakeClient = Callable[..., CaspioClient]


def people(emu: Any, client: CaspioClient, **hints: Any) -> Any:
    source = caspio(credentials=credentials_for(emu), client=client, tables=["People"])
    if hints:
        source.resources[next(iter(source.resources))].apply_hints(**hints)
    return source


def names(tmp_path: Path) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as conn:
        return conn.execute("select pk_id, name from caspio.people order by 1").fetchall()


def people_table(pipeline: Any) -> dict[str, Any]:
    return dict(pipeline.default_schema.tables["people"])


def test_run_write_disposition_append_reads_and_appends_only_new_rows(
    caspio_emulator_factory: Any, make_client: MakeClient, tmp_path: Path
) -> None:
    emu = caspio_emulator_factory(dataset=people_account(1400))
    pipeline = pipeline_for(tmp_path)
    pipeline.run(people(emu, make_client(emu)), write_disposition="append")
    emu.set_clock(None)
    emu.update("People", "PK_ID = 1", {"Name": "changed"})  # insert-only: not read again
    emu.insert("People", {"Name": "new1"})
    emu.insert("People", {"Name": "new2"})
    reset_log(emu)
    client = make_client(emu)
    pipeline.run(people(emu, client), write_disposition="append")
    assert client.stats.rows == 2
    assert "PK_ID%20%3E%201400" in record_calls(emu, "People")[0].query.replace("+", "%20")
    rows = names(tmp_path)
    assert len(rows) == 1402 and rows[0] == (1, "P1") and rows[-1] == (1402, "new2")


def test_apply_hints_replace_reads_in_full_and_primary_key_and_columns_land(
    caspio_emulator_factory: Any, make_client: MakeClient, tmp_path: Path
) -> None:
    emu = caspio_emulator_factory(dataset=people_account(1400))
    pipeline = pipeline_for(tmp_path)
    hints: dict[str, Any] = {
        "write_disposition": "replace",
        "primary_key": "name",
        "columns": {"age": {"description": "years", "nullable": True}},
    }
    pipeline.run(people(emu, make_client(emu), **hints))
    reset_log(emu)
    pipeline.run(people(emu, make_client(emu), **hints))
    assert len(record_calls(emu, "People")) == 2, "replace reads the whole table every run"
    table = people_table(pipeline)
    assert table["write_disposition"] == "replace"
    assert table["columns"]["name"].get("primary_key") is True
    assert not table["columns"]["pk_id"].get("primary_key")
    assert table["columns"]["age"]["description"] == "years"
    assert table["columns"]["age"]["data_type"] == "bigint"


def test_the_cursor_column_carries_dlts_incremental_hint(
    caspio_emulator_factory: Any, make_client: MakeClient, tmp_path: Path
) -> None:
    emu = caspio_emulator_factory(dataset=people_account(10))
    pipeline = pipeline_for(tmp_path)
    pipeline.run(people(emu, make_client(emu)))
    columns = people_table(pipeline)["columns"]
    assert columns["updated"].get("incremental") is True
    assert not any(c.get("incremental") for n, c in columns.items() if n != "updated")


@pytest.mark.parametrize(
    ("hints", "message"),
    [
        ({"columns": {"balance": {"data_type": "double"}}}, "columns hint balance.data_type"),
        ({"write_disposition": {"disposition": "merge", "strategy": "scd2"}}, "'scd2'"),
        ({"primary_key": "nope"}, "primary_key hint 'nope'"),
    ],
)
def test_hints_that_would_change_the_data_stop_in_one_line(
    caspio_emulator_factory: Any,
    make_client: MakeClient,
    tmp_path: Path,
    hints: dict[str, Any],
    message: str,
) -> None:
    emu = caspio_emulator_factory(dataset=people_account(10))
    with pytest.raises(PipelineStepFailed) as failed:
        pipeline_for(tmp_path).run(people(emu, make_client(emu), **hints))
    error = next(e for e in exception_chain(failed.value) if isinstance(e, CaspioConfigError))
    assert message in str(error) and "\n" not in str(error)
