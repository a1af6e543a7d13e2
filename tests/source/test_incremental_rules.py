"""Cursor choice, filters and marks, with expected values written by hand.

Added for the mutation check (docs/mutation.md): these rules survived flipped comparisons
because only whole syncs exercised them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pytest

from sources.caspio.errors import CaspioConfigError
from sources.caspio.incremental import HighWaterMark, cursor_filter, find_cursor

PST = "Pacific Standard Time"
STAMP: dict[str, Any] = {"Name": "Updated", "Type": "TIMESTAMP", "OnUpdate": True, "TimeZone": PST}


def test_the_first_on_update_stamp_is_the_cursor_and_is_zoned() -> None:
    fields = [{"Name": "Made", "Type": "TIMESTAMP", "OnInsert": True}, STAMP]
    cursor = find_cursor("T", fields, None)
    assert cursor is not None and cursor.name == "Updated" and cursor.zoned
    assert find_cursor("T", [{"Name": "Made", "Type": "TIMESTAMP"}], None) is None


def test_a_configured_date_time_cursor_is_not_zoned() -> None:
    cursor = find_cursor("T", [{"Name": "Due", "Type": "DATE/TIME"}], "due")
    assert cursor is not None and cursor.name == "Due" and not cursor.zoned


def test_a_configured_cursor_must_exist_and_be_a_date() -> None:
    with pytest.raises(CaspioConfigError, match="does not exist"):
        find_cursor("T", [STAMP], "Nope")
    with pytest.raises(CaspioConfigError, match="not a date/time"):
        find_cursor("T", [STAMP, {"Name": "City", "Type": "STRING"}], "City")


def test_a_view_ors_the_stamps_of_its_other_source_tables_only() -> None:
    fields = [
        {**STAMP, "Name": "Orders_Updated", "TableFieldName": "Orders.Updated"},
        {**STAMP, "Name": "Orders_Changed", "TableFieldName": "Orders.Changed"},
        {**STAMP, "Name": "Customers_Updated", "TableFieldName": "Customers.Updated"},
    ]
    cursor = find_cursor("V", fields, None)
    assert cursor is not None
    assert [c.name for c in cursor.companions] == ["Customers_Updated"]
    assert cursor_filter(cursor, "2024-07-01T12:00:00+00:00") == (
        "(Orders_Updated > '2024-07-01T05:00:00' OR Customers_Updated > '2024-07-01T05:00:00')"
    )


def test_filters_in_the_fields_own_zone() -> None:
    cursor = find_cursor("T", [STAMP], None)
    assert cursor is not None
    assert cursor_filter(cursor, None) is None
    # a naive mark is UTC: 12:00 UTC is 05:00 in Los Angeles in July (PDT, UTC-7)
    assert cursor_filter(cursor, "2024-07-01T12:00:00") == "Updated > '2024-07-01T05:00:00'"
    # with a lag the bound moves back and becomes inclusive
    assert cursor_filter(cursor, "2024-07-01T12:00:00+00:00", 60) == (
        "Updated >= '2024-07-01T04:59:00'"
    )
    due = find_cursor("T", [{"Name": "Due", "Type": "DATE/TIME"}], "Due")
    assert due is not None
    assert cursor_filter(due, "2024-07-01T12:00:00") == "Due >= '2024-07-01T12:00:00'"


def test_a_one_row_page_moves_the_mark() -> None:
    cursor = find_cursor("T", [STAMP], None)
    assert cursor is not None
    mark = HighWaterMark(cursor, None)
    stamp = dt.datetime(2024, 7, 1, 12, tzinfo=dt.timezone.utc)
    mark.observe(pa.table({"Updated": pa.array([stamp], pa.timestamp("us", tz="UTC"))}))
    assert mark.max_seen == stamp
    later = dt.datetime(2024, 7, 2, tzinfo=dt.timezone.utc)
    assert mark.next_mark(later) is not None
