"""Deleted-rows reconciliation against the emulator over HTTP, into DuckDB and PostgreSQL."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipelines.caspio_pipeline import build_pipeline, run_sync
from pipelines.reconcile import reconcile
from sources.caspio import validate_table_options
from sources.caspio.deletes import DELETED_AT_COLUMN, missing_keys, scan_cost
from sources.caspio.errors import CaspioConfigError
from tests.helpers import (
    CONTACTS_AND_NOTES,
    api_delete,
    client_for,
    read_rows,
)

BIG_ROWS = 2500


def _sync(emu: Any, destination: Any, dataset: str, tmp_path: Path) -> Any:
    client = client_for(emu)
    run_sync(
        destination=destination,
        dataset_name=dataset,
        pipeline_name="deletes_test",
        credentials=client.credentials,
        pipelines_dir=str(tmp_path / "pipelines"),
        client=client,
    )
    return build_pipeline(
        destination, dataset, "deletes_test", pipelines_dir=str(tmp_path / "pipelines")
    )


def _all_rows(pipeline: Any) -> dict[str, list[dict[str, Any]]]:
    return {t: read_rows(pipeline, t) for t in ("contacts", "notes", "big")}


def test_deleted_rows_disappear_and_nothing_else_changes(
    caspio_emulator_factory: Any, destination: tuple[Any, str], tmp_path: Path
) -> None:
    emu = caspio_emulator_factory(dataset=CONTACTS_AND_NOTES, generate={"Big": BIG_ROWS})
    dest, dataset = destination
    pipeline = _sync(emu, dest, dataset, tmp_path)
    before = _all_rows(pipeline)
    assert len(before["big"]) == BIG_ROWS

    assert api_delete(emu, "Contacts", "PK_ID IN (1, 7, 30)") == 3
    assert api_delete(emu, "Big", "PK_ID IN (1, 1000, 1001, 2500)") == 4

    client = client_for(emu)
    client.get("/tables")  # warm the token so the pass's count is the documented one
    calls_before = emu.calls
    report = reconcile(pipeline, client, table_options={})
    spent = emu.calls - calls_before

    by_table = {t.table: t for t in report.tables}
    assert by_table["Contacts"].applied == 3
    assert by_table["Big"].applied == 4
    assert by_table["Notes"].applied == 0
    # documented cost: 1 (/tables) + max(1, ceil(rows / 1000)) per table, rows as Caspio has them
    expected = 1 + sum(scan_cost(n) for n in (27, 12, BIG_ROWS - 4))
    assert expected == 1 + 1 + 1 + math.ceil((BIG_ROWS - 4) / 1000)
    assert spent == expected == report.api_calls
    assert by_table["Big"].api_calls == 3

    after = _all_rows(pipeline)
    gone = {"contacts": {1, 7, 30}, "big": {1, 1000, 1001, 2500}, "notes": set()}
    for table, rows in before.items():
        assert after[table] == [r for r in rows if r["pk_id"] not in gone[table]], table

    # a second pass finds nothing more and still costs the same
    again = reconcile(pipeline, client, table_options={})
    assert sum(t.applied for t in again.tables) == 0


def test_mark_mode_sets_deleted_at_and_survives_the_next_sync(
    caspio_emulator_factory: Any, destination: tuple[Any, str], tmp_path: Path
) -> None:
    emu = caspio_emulator_factory(dataset=CONTACTS_AND_NOTES)
    dest, dataset = destination
    pipeline = _sync(emu, dest, dataset, tmp_path)
    before = _all_rows_small(pipeline)
    assert api_delete(emu, "Contacts", "PK_ID IN (2, 3)") == 2

    options = {"Contacts": {"deletes": "mark"}, "notes": {"deletes": "off"}}
    report = reconcile(pipeline, client_for(emu), table_options=options)
    assert [t.table for t in report.tables] == ["Contacts"]
    assert report.tables[0].applied == 2 and "Notes" in report.skipped

    contacts = read_rows(pipeline, "contacts")
    assert len(contacts) == 30  # marked, not deleted
    for row, old in zip(contacts, before["contacts"], strict=True):
        marked = row.pop(DELETED_AT_COLUMN)
        assert (marked is not None) == (row["pk_id"] in (2, 3))
        assert row == old  # every other value unchanged
    assert read_rows(pipeline, "notes") == before["notes"]

    # the next incremental sync keeps the marks; a second pass marks nothing again
    emu.update("Contacts", "PK_ID = 4", {"Score": 400})
    _sync(emu, dest, dataset, tmp_path)
    by_pk = {r["pk_id"]: r for r in read_rows(pipeline, "contacts")}
    assert by_pk[4]["score"] == 400
    assert {k for k, r in by_pk.items() if r[DELETED_AT_COLUMN] is not None} == {2, 3}
    stamps = {k: by_pk[k][DELETED_AT_COLUMN] for k in (2, 3)}
    again = reconcile(pipeline, client_for(emu), table_options=options)
    assert again.tables[0].missing == 0
    by_pk = {r["pk_id"]: r for r in read_rows(pipeline, "contacts")}
    assert {k: by_pk[k][DELETED_AT_COLUMN] for k in (2, 3)} == stamps


def _all_rows_small(pipeline: Any) -> dict[str, list[dict[str, Any]]]:
    return {t: read_rows(pipeline, t) for t in ("contacts", "notes")}


def test_delete_mode_option_is_validated() -> None:
    def mode(options: dict[str, Any]) -> str:
        return validate_table_options(options).for_object("Orders").deletes

    assert mode({"orders": {"deletes": "mark"}}) == "mark"
    assert mode({}) == "delete"
    assert mode({"Orders": {"deletes": False}}) == "off"
    assert mode({"Ord*": {"deletes": "mark"}, "Orders": {"lag": 5}}) == "mark"
    with pytest.raises(CaspioConfigError, match="deletes"):
        mode({"Orders": {"deletes": "purge"}})


def test_missing_keys_is_a_set_difference() -> None:
    dest = np.array([5, 1, 3, 9], dtype=np.int64)
    live = np.array([1, 2, 3], dtype=np.int64)
    assert missing_keys(dest, live).tolist() == [5, 9]
    assert scan_cost(0) == 1 and scan_cost(1000) == 1 and scan_cost(1001) == 2
