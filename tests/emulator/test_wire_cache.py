"""The stored star-select JSON: every table row keeps its wire JSON in a hidden generated column.

A star page (no ``q.select`` or ``q.select=*``, no ``q.groupBy``) is read from that column
instead of being built by ``json_object`` per request. These tests pin what makes that safe:
the stored text is byte for byte what the json_object path builds, every write path keeps it
current, and no client can see, select, filter, sort or write the column.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import orjson
import pytest

from caspio_emulator import Emulator
from caspio_emulator.dataset import generate
from caspio_emulator.sql import WIRE_COLUMN, Compiled, Scope, compile_query
from caspio_emulator.store import Store

from .conftest import Api

# one field of every type, with awkward values: nulls, quotes, backslashes, control characters,
# unicode outside the BMP, extreme numbers, list items that need escaping
ALL_TYPES: dict[str, Any] = {
    "tables": {
        "Every": {
            "fields": [
                {"Name": "S", "Type": "STRING"},
                {"Name": "T", "Type": "TEXT"},
                {"Name": "N", "Type": "NUMBER"},
                {"Name": "I", "Type": "INTEGER"},
                {"Name": "C", "Type": "CURRENCY"},
                {"Name": "D", "Type": "DATE/TIME"},
                {"Name": "B", "Type": "YES/NO"},
                {"Name": "F", "Type": "FILE"},
                {"Name": "A", "Type": "ATTACHMENT"},
                {"Name": "Auto", "Type": "AUTONUMBER"},
                {"Name": "Pre", "Type": "PREFIXED AUTONUMBER", "Prefix": "P'\"-", "Format": "001"},
                {"Name": "G", "Type": "GUID"},
                {"Name": "R", "Type": "RANDOM ID", "Format": "0", "Length": 6},
                {"Name": "Pw", "Type": "PASSWORD"},
                {"Name": "LS", "Type": "LIST-STRING", "ListField": ['a"b', "c\\d", "Zoë's", "🎉"]},
                {"Name": "LN", "Type": "LIST-NUMBER", "ListField": [1, 2.5, -0.001, 1e20]},
                {
                    "Name": "LD",
                    "Type": "LIST-DATE/TIME",
                    "ListField": ["2024-01-01T00:00:00", "1999-12-31T23:59:59"],
                },
                {"Name": "Ins", "Type": "TIMESTAMP", "OnInsert": True, "TimeZone": "UTC"},
                {
                    "Name": "Upd",
                    "Type": "TIMESTAMP",
                    "OnInsert": True,
                    "OnUpdate": True,
                    "TimeZone": "Pacific Standard Time",
                },
            ],
            "rows": [
                {
                    "S": 'O\'Brien "Slim" \\ back/slash',
                    "T": "line\nbreak\ttab\u0001ctl \u2028 🎉 naïve 李",
                    "N": 1e-7,
                    "I": -2147483647,
                    "C": 12.3456,
                    "D": "2024-02-29T23:59:59",
                    "B": True,
                    "F": "/Files/a b.pdf",
                    "A": "photo.png",
                    "Pw": "secret",
                    "LS": [1, 2, 3, 4],
                    "LN": [2, 3, 4],
                    "LD": [1, 2],
                },
                {"B": False, "N": 1e20, "C": -0.5, "I": 0, "S": "", "LS": []},
                {"N": -0.0, "C": 1234567.8901, "T": "x" * 5000},
                {},
            ],
        },
    },
}


def wide_fields(n: int) -> list[dict[str, Any]]:
    """More fields than one json_object call takes (127 arguments): the JSON is spliced."""
    types = ["STRING", "NUMBER", "INTEGER", "YES/NO", "DATE/TIME", "CURRENCY"]
    return [{"Name": f"F{i:03d}", "Type": types[i % len(types)]} for i in range(n)]


def page(store: Store, comp: Compiled, cached: bool, limit: int, offset: int) -> list[bytes]:
    """A star page through the stored column (cached) or built by json_object (not)."""
    comp.wire_column = comp.scope.wire_column if cached else None
    rows, _ = store.run_json(comp, limit, offset, False)
    return rows


def star(store: Store, scope: Scope, **clauses: str) -> Compiled:
    return compile_query(scope, store.resolve_scope, store.now_text, **clauses)


def assert_every_row_identical(store: Store, scope: Scope, batch: int = 1000) -> int:
    """Compare both paths over every row of `scope`; returns the number of rows compared."""
    comp = star(store, scope)
    assert comp.wire_column == WIRE_COLUMN  # a star select does use the stored JSON
    offset = 0
    while True:
        cached = page(store, comp, True, batch, offset)
        assert cached == page(store, comp, False, batch, offset)
        if not cached:
            return offset
        offset += len(cached)


def test_stored_json_is_byte_identical_for_every_field_type() -> None:
    with Emulator(dataset=ALL_TYPES) as emu:
        store = emu.store
        t = store.table("Every")
        assert t is not None
        assert assert_every_row_identical(store, t.scope) == 4
        first = orjson.loads(page(store, star(store, t.scope), True, 1, 0)[0])
        assert list(first) == ["PK_ID", *(f.Name for f in t.fields if f.Type != "PASSWORD")]
        assert first["LS"] == {"1": 'a"b', "2": "c\\d", "3": "Zoë's", "4": "🎉"}
        assert first["B"] is True and first["N"] == 1e-7


def test_stored_json_is_byte_identical_for_a_generated_table() -> None:
    # the wide synthetic table: every generated type, nulls, unicode, quotes, long texts
    # (rows 500 and 1497 carry the 1 KB and 4 KB notes)
    store = Store(seed=3)
    t = generate(store, "Big", 3000, seed=3)
    assert assert_every_row_identical(store, t.scope) == 3000
    generate(store, "Big", 500, seed=5)  # appended rows are stored with their JSON too
    assert assert_every_row_identical(store, t.scope, batch=777) == 3500


def test_stored_json_is_byte_identical_past_json_objects_argument_limit() -> None:
    fields = wide_fields(130)
    values = {
        "STRING": 'Zoë "q" it\'s',
        "NUMBER": 3.25,
        "INTEGER": 42,
        "YES/NO": False,
        "DATE/TIME": "2024-05-06T07:08:09",
        "CURRENCY": 9.99,
    }
    rows = [
        {f["Name"]: None if (i + j) % 3 == 0 else values[f["Type"]] for j, f in enumerate(fields)}
        for i in range(6)
    ]
    with Emulator(dataset={"tables": {"Wide": {"fields": fields, "rows": rows}}}) as emu:
        t = emu.store.table("Wide")
        assert t is not None
        assert assert_every_row_identical(emu.store, t.scope) == len(rows)
        obj = orjson.loads(page(emu.store, star(emu.store, t.scope), True, 1, 0)[0])
        assert list(obj) == ["PK_ID", *(f["Name"] for f in fields)]


def test_filtered_and_sorted_star_pages_match_the_json_object_path() -> None:
    store = Store()
    t = generate(store, "Big", 2000)
    for clauses in (
        {"where": "Name LIKE '%o%'", "order_by": "Name DESC, PK_ID"},
        {"where": "Updated > '2023-01-02'", "order_by": "Updated, PK_ID"},
        {"where": "PK_ID > 1500", "order_by": "PK_ID"},
        {"order_by": "Amount, PK_ID DESC"},
        {"select": "*", "where": "Active = 1"},
    ):
        comp = star(store, t.scope, **clauses)
        assert comp.wire_column == WIRE_COLUMN, clauses
        for offset in (0, 250, 1900):
            assert page(store, comp, True, 100, offset) == page(store, comp, False, 100, offset)


def test_only_star_selects_over_tables_use_the_stored_json(api: Api) -> None:
    store = api.emu.store
    t = store.table("Customers")
    v = store.view("Customer_Orders")
    assert t is not None and v is not None
    assert star(store, t.scope).wire_column == WIRE_COLUMN
    assert star(store, t.scope, select=" * ").wire_column == WIRE_COLUMN
    assert star(store, t.scope, select="Name").wire_column is None
    assert star(store, t.scope, select="*, Name").wire_column is None
    assert star(store, t.scope, group_by="Segment").wire_column is None
    assert star(store, v.scope).wire_column is None  # views keep json_object
    for d in store.directories.values():
        assert_every_row_identical(store, d.scope)  # directory users: no PK_ID, cached


def test_put_restamps_and_star_pages_show_it(caspio_emulator: Emulator) -> None:
    api = Api(caspio_emulator)
    caspio_emulator.set_clock(datetime(2024, 7, 1, 19, 0, 0, tzinfo=timezone.utc))

    def row(pk: int) -> dict[str, Any]:
        r = api.get("/tables/Customers/records", **{"q.where": f"PK_ID = {pk}"})
        assert r.status_code == 200
        (only,) = r.json()["Result"]
        return only

    before = row(5)
    r = api.write(
        "PUT", "/tables/Customers/records", {"City": 'Zoë\'s "town"'}, **{"q.where": "PK_ID = 5"}
    )
    assert r.json()["RecordsAffected"] == 1
    after = row(5)
    assert after["City"] == 'Zoë\'s "town"'
    assert after["Updated"] == "2024-07-01T12:00:00" != before["Updated"]  # OnUpdate, PDT
    assert {k: v for k, v in after.items() if k not in ("City", "Updated")} == {
        k: v for k, v in before.items() if k not in ("City", "Updated")
    }
    # the in-process helper is another write path
    caspio_emulator.set_clock(datetime(2024, 1, 15, 20, 0, 0, tzinfo=timezone.utc))
    assert caspio_emulator.update("Customers", "PK_ID = 5", {"City": None}) == 1
    assert row(5)["City"] is None and row(5)["Updated"] == "2024-01-15T12:00:00"
    t = caspio_emulator.store.table("Customers")
    assert t is not None
    assert_every_row_identical(caspio_emulator.store, t.scope)


def test_post_shows_generated_values_and_delete_removes(caspio_emulator: Emulator) -> None:
    api = Api(caspio_emulator)
    caspio_emulator.set_clock(datetime(2024, 1, 15, 20, 0, 0, tzinfo=timezone.utc))
    r = api.write(
        "POST", "/tables/Orders/records", {"Customer_ID": 1001, "Total": 1.23456}, response="rows"
    )
    (posted,) = r.json()["Result"]
    r = api.get("/tables/Orders/records", **{"q.where": f"PK_ID = {posted['PK_ID']}"})
    (got,) = r.json()["Result"]
    assert got == posted
    assert got["Order_ID"] == 6401 and got["Order_Number"] == "SO-001401"
    assert got["Tracking_Code"] and got["Updated"] == "2024-01-15T20:00:00"
    pk = caspio_emulator.insert("Orders", {"Customer_ID": 1002})
    r = api.get("/tables/Orders/records", **{"q.where": f"PK_ID >= {posted['PK_ID']}"})
    assert [x["PK_ID"] for x in r.json()["Result"]] == [posted["PK_ID"], pk]
    assert r.json()["Result"][1]["Order_ID"] == 6402
    r = api.write("DELETE", "/tables/Orders/records", **{"q.where": f"PK_ID = {pk}"})
    assert r.json() == {"RecordsAffected": 1}
    r = api.get("/tables/Orders/records", **{"q.where": f"PK_ID >= {posted['PK_ID']}"})
    assert [x["PK_ID"] for x in r.json()["Result"]] == [posted["PK_ID"]]
    t = caspio_emulator.store.table("Orders")
    assert t is not None
    assert_every_row_identical(caspio_emulator.store, t.scope)


def test_the_hidden_column_never_appears(api: Api) -> None:
    fields = api.get("/tables/Customers/fields").json()["Result"]
    assert all(not f["Name"].startswith("_") for f in fields)
    assert api.get(f"/tables/Customers/fields/{WIRE_COLUMN}").status_code == 404
    t = api.emu.store.table("Customers")
    assert t is not None
    columns = [r[1] for r in api.emu.store.conn.execute(f"PRAGMA table_xinfo({t.relation})")]
    assert columns[-1] == WIRE_COLUMN  # it is there, in SQLite only
    expected = ["PK_ID", *(f.Name for f in t.fields if f.Type != "PASSWORD")]
    for params in ({}, {"q.select": "*"}, {"q.select": "*", "q.where": "PK_ID < 3"}):
        r = api.get("/tables/Customers/records", **params)
        assert r.status_code == 200
        for rec in r.json()["Result"]:
            assert list(rec) == expected
        assert WIRE_COLUMN.encode() not in r.content


@pytest.mark.parametrize("name", [WIRE_COLUMN, "_json", WIRE_COLUMN.upper(), f"[{WIRE_COLUMN}]"])
@pytest.mark.parametrize(
    "params",
    [
        {"q.select": "{}"},
        {"q.select": "PK_ID, {}"},
        {"q.select": "*, {}"},
        {"q.select": "COUNT({})"},
        {"q.where": "{} IS NOT NULL"},
        {"q.where": "{} LIKE '%PK_ID%'"},
        {"q.where": "PK_ID IN (SELECT {} FROM Customers)"},
        {"q.orderBy": "{}"},
        {"q.groupBy": "{}", "q.select": "COUNT(*)"},
    ],
)
def test_the_hidden_column_cannot_be_queried(api: Api, name: str, params: dict[str, str]) -> None:
    r = api.get("/tables/Customers/records", **{k: v.format(name) for k, v in params.items()})
    assert r.status_code == 404, r.text
    assert r.json()["Code"] == "FieldNotFound"
    assert b"{" not in r.content.split(b'"Message"')[1].split(b'"Resource"')[0]  # no row leaked


def test_the_hidden_column_cannot_be_written(fresh_api: Api) -> None:
    r = fresh_api.write("POST", "/tables/Customers/records", {"Name": "x", WIRE_COLUMN: "{}"})
    assert r.status_code == 404 and r.json()["Code"] == "FieldNotFound"
    r = fresh_api.write(
        "PUT", "/tables/Customers/records", {WIRE_COLUMN: "{}"}, **{"q.where": "PK_ID = 1"}
    )
    assert r.status_code == 404 and r.json()["Code"] == "FieldNotFound"
    r = fresh_api.write("DELETE", "/tables/Customers/records", **{"q.where": f"{WIRE_COLUMN} = 1"})
    assert r.status_code == 404 and r.json()["Code"] == "FieldNotFound"


def test_a_directory_field_named_like_the_hidden_column_falls_back() -> None:
    ds = {
        "directories": [
            {
                "Id": "1f2e3d4c-0000-4000-8000-00000000d009",
                "Name": "Odd",
                "users": [{"Email": "a@example.com", WIRE_COLUMN: "mine", "_status": "Active"}],
            }
        ]
    }
    with Emulator(dataset=ds) as emu:
        (d,) = emu.store.directories.values()
        assert d.scope.wire_column is None  # the name is taken: pages are built per request
        api = Api(emu)
        r = api.get("/directories/1f2e3d4c-0000-4000-8000-00000000d009/users")
        assert r.status_code == 200, r.text
        assert r.json()["Result"] == [
            {"Email": "a@example.com", WIRE_COLUMN: "mine", "_status": "Active"}
        ]


def test_without_generated_columns_pages_are_built_per_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # an SQLite older than 3.31 has no generated columns: the json_object path answers alone
    from caspio_emulator import store as store_module

    monkeypatch.setattr(store_module, "GENERATED_COLUMNS", False)
    with Emulator(dataset=ALL_TYPES) as emu:
        t = emu.store.table("Every")
        assert t is not None and t.scope.wire_column is None
        columns = [r[1] for r in emu.store.conn.execute(f"PRAGMA table_xinfo({t.relation})")]
        assert WIRE_COLUMN not in columns
        r = Api(emu).get("/tables/Every/records")
        assert r.status_code == 200 and len(r.json()["Result"]) == 4


def test_a_select_list_past_json_objects_argument_limit(api: Api) -> None:
    # built per request: more than 60 keys are spliced from several json_object calls, each
    # key bound once (this once failed with "Incorrect number of bindings")
    select = ", ".join(f"Name AS n{i}" for i in range(130))
    r = api.get("/tables/Big/records", **{"q.select": select, "q.limit": 3})
    assert r.status_code == 200, r.text
    rows = r.json()["Result"]
    assert len(rows) == 3
    assert all(list(row) == [f"n{i}" for i in range(130)] for row in rows)
    assert len({v for row in rows[:1] for v in row.values()}) == 1
