"""``planning.py``: what a run reads for one object, decided from its fields, state and options
(no HTTP, no dlt): each rule checked against hand-written field lists."""

from __future__ import annotations

from typing import Any

import pytest

from sources.caspio import (
    CaspioConfigError,
    CaspioDesignChangeError,
    TableOptions,
    design_changes,
    plan_object,
)

STAMP = {"Name": "Updated", "Type": "TIMESTAMP", "OnUpdate": True, "TimeZone": "UTC"}
FIELDS: list[dict[str, Any]] = [
    {"Name": "Name", "Type": "STRING"},
    {"Name": "Total", "Type": "CURRENCY"},
    STAMP,
]
LOADED = {
    "kind": "tables",
    "fields": FIELDS,
    "cursor": {"field": "Updated", "value": "2024-05-01T10:00:00+00:00"},
}


def test_a_first_run_reads_everything_and_replaces() -> None:
    plan = plan_object("T", "tables", FIELDS, {}, TableOptions())
    assert plan.where is None and plan.write_disposition == "merge" and plan.reads_everything
    assert not plan.incremental and plan.full_read_reason is None


def test_an_unchanged_table_continues_from_its_mark() -> None:
    plan = plan_object("T", "tables", FIELDS, LOADED, TableOptions())
    assert plan.where == "Updated > '2024-05-01T10:00:00'"
    assert plan.incremental and not plan.reads_everything and not plan.design


def test_a_field_added_reads_the_table_in_full_once() -> None:
    fields = [*FIELDS, {"Name": "Nick", "Type": "STRING"}]
    plan = plan_object("T", "tables", fields, LOADED, TableOptions())
    assert plan.design.added == ("Nick",)
    assert plan.where is None and plan.reads_everything
    assert plan.full_read_reason == "field(s) added in Caspio: Nick"


def test_a_field_deleted_keeps_reading_incrementally() -> None:
    fields = [f for f in FIELDS if f["Name"] != "Total"]
    plan = plan_object("T", "tables", fields, LOADED, TableOptions())
    assert plan.design.deleted == ("Total",) and plan.incremental
    assert plan.full_read_reason is None


def test_a_rename_is_one_delete_and_one_add() -> None:
    fields = [{"Name": "Full_Name", "Type": "STRING"}, *FIELDS[1:]]
    changes = design_changes(FIELDS, fields)
    assert (changes.added, changes.deleted) == (("Full_Name",), ("Name",))


def test_a_retyped_column_stops_with_the_reload_command() -> None:
    fields = [FIELDS[0], {"Name": "Total", "Type": "STRING"}, STAMP]
    with pytest.raises(CaspioDesignChangeError) as stopped:
        plan_object("T", "tables", fields, LOADED, TableOptions())
    message = str(stopped.value)
    assert "Total from CURRENCY to STRING (column decimal(19,4) -> text)" in message
    assert "caspio-sync run --tables T --full-refresh" in message


def test_a_retype_into_the_same_column_type_is_no_change() -> None:
    fields = [{"Name": "Name", "Type": "TEXT"}, *FIELDS[1:]]
    assert not design_changes(FIELDS, fields)


def test_a_stamp_whose_zone_changed_is_read_in_full() -> None:
    fields = [*FIELDS[:2], {**STAMP, "TimeZone": "Pacific Standard Time"}]
    plan = plan_object("T", "tables", fields, LOADED, TableOptions())
    assert plan.design.rezoned == ("Updated",) and plan.reads_everything


def test_changes_to_fields_not_selected_do_not_count() -> None:
    fields = [*FIELDS, {"Name": "Nick", "Type": "STRING"}]
    plan = plan_object("T", "tables", fields, LOADED, TableOptions(fields=("Name",)))
    assert not plan.design and plan.incremental


def test_state_for_another_destination_is_read_as_a_first_run() -> None:
    plan = plan_object("T", "tables", FIELDS, LOADED, TableOptions(), stale="another place")
    assert plan.where is None and plan.full_read_reason == "another place"


def test_append_reads_new_keys_and_refuses_views() -> None:
    plan = plan_object(
        "T", "tables", FIELDS, {**LOADED, "last_pk": 41}, TableOptions(write_disposition="append")
    )
    assert plan.start_after == 41 and plan.incremental
    with pytest.raises(CaspioConfigError, match="is a view"):
        plan_object("V", "views", FIELDS, {}, TableOptions(write_disposition="append"))


def test_a_mark_read_with_another_where_or_fields_is_not_applied() -> None:
    """A first run with a ``where`` (a backfill window) must not let a plain run skip the rows
    the window left out; neither may a widened ``fields`` selection keep old rows half empty."""
    windowed = {**LOADED, "read_with": {"where": "Total > 5", "fields": None}}
    plan = plan_object("T", "tables", FIELDS, windowed, TableOptions())
    assert plan.where is None and plan.reads_everything
    assert plan.full_read_reason is not None and "where 'Total > 5'" in plan.full_read_reason
    same = plan_object("T", "tables", FIELDS, windowed, TableOptions(where="Total > 5"))
    assert same.incremental and same.full_read_reason is None
    narrow = {**LOADED, "read_with": {"where": None, "fields": ["name"]}}
    wider = plan_object("T", "tables", FIELDS, narrow, TableOptions(fields=("Name", "Total")))
    assert wider.reads_everything and wider.read_with["fields"] == ["name", "total"]
