"""Type mapping for every Caspio field type, Arrow conversion, time zones and DST."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

import pyarrow as pa
import pytest

from sources.caspio import CaspioConfigError
from sources.caspio.arrow import page_to_arrow
from sources.caspio.schema import build_schema
from sources.caspio.timezones import iana_name, local_to_utc, utc_to_local_lower_bound, zone

UTC = dt.timezone.utc

FIELDS: list[dict[str, Any]] = [
    {"Name": "S", "Type": "STRING", "Label": "Short text", "Description": "shown in lists"},
    {"Name": "T", "Type": "TEXT"},
    {"Name": "F", "Type": "FILE"},
    {"Name": "G", "Type": "GUID"},
    {"Name": "R", "Type": "RANDOM ID"},
    {"Name": "P", "Type": "PREFIXED AUTONUMBER"},
    {"Name": "A", "Type": "ATTACHMENT"},
    {"Name": "N", "Type": "NUMBER"},
    {"Name": "I", "Type": "INTEGER"},
    {"Name": "AN", "Type": "AUTONUMBER"},
    {"Name": "C", "Type": "CURRENCY"},
    {"Name": "Y", "Type": "YES/NO"},
    {"Name": "D", "Type": "DATE/TIME"},
    {"Name": "TS", "Type": "TIMESTAMP", "TimeZone": "Pacific Standard Time", "OnUpdate": True},
    {"Name": "LS", "Type": "LIST-STRING"},
    {"Name": "LN", "Type": "LIST-NUMBER"},
    {"Name": "LD", "Type": "LIST-DATE/TIME"},
    {"Name": "PW", "Type": "PASSWORD"},
    {"Name": "FX", "Type": "NUMBER", "IsFormula": True},
]

EXPECTED = {
    "PK_ID": ("bigint", pa.int64()),
    "S": ("text", pa.string()),
    "T": ("text", pa.string()),
    "F": ("text", pa.string()),
    "G": ("text", pa.string()),
    "R": ("text", pa.string()),
    "P": ("text", pa.string()),
    "A": ("text", pa.string()),
    "N": ("double", pa.float64()),
    "I": ("bigint", pa.int64()),
    "AN": ("bigint", pa.int64()),
    "C": ("decimal", pa.decimal128(19, 4)),
    "Y": ("bool", pa.bool_()),
    "D": ("timestamp", pa.timestamp("us")),
    "TS": ("timestamp", pa.timestamp("us", tz="UTC")),
    "LS": ("json", pa.string()),
    "LN": ("json", pa.string()),
    "LD": ("json", pa.string()),
    "FX": ("double", pa.float64()),
}


def test_every_type_maps() -> None:
    schema = build_schema("All", "tables", FIELDS)
    cols = schema.columns
    assert list(cols) == list(EXPECTED)
    for name, (dlt_type, arrow_type) in EXPECTED.items():
        assert cols[name]["data_type"] == dlt_type, name
        assert schema.arrow_schema.field(name).type == arrow_type, name
    assert cols["PK_ID"]["primary_key"] is True and cols["PK_ID"]["nullable"] is False
    assert cols["C"]["precision"] == 19 and cols["C"]["scale"] == 4
    assert cols["D"]["timezone"] is False and cols["TS"]["timezone"] is True
    assert cols["S"]["description"] == "Short text - shown in lists"
    assert "PW" not in cols


def test_view_pk_is_text() -> None:
    schema = build_schema("V", "views", [{"Name": "X", "Type": "STRING"}])
    assert schema.columns["PK_ID"]["data_type"] == "text"
    assert schema.arrow_schema.field("PK_ID").type == pa.string()


def test_selected_fields_and_unknown_selection() -> None:
    schema = build_schema("All", "tables", FIELDS, ["S", "c"])
    assert [f.name for f in schema.fields] == ["PK_ID", "S", "C"]
    with pytest.raises(CaspioConfigError, match="Nope"):
        build_schema("All", "tables", FIELDS, ["Nope"])


def test_page_to_arrow_values() -> None:
    schema = build_schema("All", "tables", FIELDS)
    rows = [
        {
            "PK_ID": 1,
            "S": "O'Brien",
            "T": "x" * 70000,
            "F": "/a/b.png",
            "G": "g-1",
            "R": "AB12CD",
            "P": "INV-0001",
            "A": None,
            "N": 1.5,
            "I": 7,
            "AN": 3,
            "C": 12.3456,
            "Y": True,
            "D": "2024-05-15T13:45:00",
            "TS": "2024-03-10T01:59:59",
            "LS": {"1": "Red", "3": "Blue"},
            "LN": {"2": 5},
            "LD": {"1": "2024-01-01T00:00:00"},
            "FX": 2,
        },
        {"PK_ID": 2, "S": 42, "N": "3", "I": 4.0, "C": None, "TS": "2024-11-03T01:30:00"},
    ]
    table = page_to_arrow(rows, schema)
    got = table.to_pylist()
    assert got[0]["C"] == decimal.Decimal("12.3456")
    assert got[0]["D"] == dt.datetime(2024, 5, 15, 13, 45)
    assert got[0]["TS"] == dt.datetime(2024, 3, 10, 9, 59, 59, tzinfo=UTC)  # PST = UTC-8
    assert got[0]["LS"] == '{"1":"Red","3":"Blue"}'
    assert got[0]["T"] == "x" * 70000
    # the ambiguous hour on 2024-11-03 (01:00-02:00 happens twice): the earlier instant (PDT)
    assert got[1]["TS"] == dt.datetime(2024, 11, 3, 8, 30, tzinfo=UTC)
    assert got[1]["S"] == "42" and got[1]["N"] == 3.0 and got[1]["I"] == 4  # odd values coerced
    assert got[1]["T"] is None
    assert page_to_arrow([], schema).num_rows == 0


def test_windows_zone_ids() -> None:
    assert iana_name("Pacific Standard Time") == "America/Los_Angeles"
    assert iana_name("W. Europe Standard Time") == "Europe/Berlin"
    assert iana_name("UTC") in ("Etc/GMT", "UTC", "Etc/UTC")
    assert iana_name("Europe/Paris") == "Europe/Paris"
    assert iana_name(None) == "UTC"
    with pytest.raises(CaspioConfigError, match="Unknown Caspio TimeZone"):
        iana_name("Mars Standard Time")


def test_local_to_utc_across_dst() -> None:
    pac = zone("Pacific Standard Time")
    assert local_to_utc(dt.datetime(2024, 1, 15, 12), pac) == dt.datetime(
        2024, 1, 15, 20, tzinfo=UTC
    )
    assert local_to_utc(dt.datetime(2024, 7, 15, 12), pac) == dt.datetime(
        2024, 7, 15, 19, tzinfo=UTC
    )


@pytest.mark.parametrize(
    "mark",
    [
        dt.datetime(2024, 11, 3, 8, 10, tzinfo=UTC),  # 01:10 PDT, 50 min before clocks go back
        dt.datetime(2024, 11, 3, 9, 10, tzinfo=UTC),  # 01:10 PST (second pass)
        dt.datetime(2024, 3, 10, 9, 59, tzinfo=UTC),  # just before the spring gap
        dt.datetime(2024, 7, 1, 12, 0, tzinfo=UTC),
    ],
)
def test_filter_lower_bound_never_misses_a_later_row(mark: dt.datetime) -> None:
    """Every instant after the mark, written on the local clock, is >= the filter value."""
    pac = zone("Pacific Standard Time")
    bound = utc_to_local_lower_bound(mark, pac)
    for minutes in range(0, 6 * 60, 5):
        later = (mark + dt.timedelta(minutes=minutes)).astimezone(pac).replace(tzinfo=None)
        assert later >= bound, (minutes, later, bound)
    # and it is tight outside DST changes
    if mark.month == 7:
        assert bound == mark.astimezone(pac).replace(tzinfo=None)
