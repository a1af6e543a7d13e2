"""Views read like tables (issue 17): paged by their ``_PK_ID_<Table>`` keys with a composite
keyset, in concurrent ``k1`` ranges; priced by ``plan`` as the run spends; a view whose keys
Caspio refuses falls back to its string ``PK_ID`` and loads the same table."""

from __future__ import annotations

import math
import random
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import dlt
import duckdb
import pytest

from pipelines.caspio_pipeline import run_sync
from sources.caspio import CaspioClient, price_view_read
from sources.caspio.reader import RecordReader
from sources.caspio.schema import ObjectSchema, build_schema
from sources.caspio.view_keyset import ViewKeys, key_params, split_ranges, view_keys
from sources.caspio.view_pager import ViewKeysetReader
from tests.helpers import expected_rows

from .conftest import record_calls, reset_log

MakeClient = Callable[..., CaspioClient]
VIEW = "Cust_Orders"
PAGE = 50
TYPES = {"Name": "STRING", "Customer_ID": "INTEGER", "Amount": "CURRENCY", "Note": "STRING"}


def dataset(
    customers: int = 90, orders: int = 2600, seed: int = 7, orders_first: bool = False
) -> dict[str, Any]:
    """Customers first in the view: its key repeats once per order (about 29 times); or
    Orders first: a unique, dense first key."""
    rng = random.Random(seed)
    fields = ["Customers.Name", "Customers.Customer_ID", "Orders.Amount", "Orders.Note"]
    return {
        "tables": {
            "Customers": {
                "fields": [
                    {"Name": "Customer_ID", "Type": "INTEGER"},
                    {"Name": "Name", "Type": "STRING"},
                ],
                "rows": [{"Customer_ID": i, "Name": f"customer {i}"} for i in range(customers)],
            },
            "Orders": {
                "fields": [
                    {"Name": "Customer_ID", "Type": "INTEGER"},
                    {"Name": "Amount", "Type": "CURRENCY"},
                    {"Name": "Note", "Type": "STRING"},
                ],
                "rows": [
                    {
                        "Customer_ID": rng.randrange(customers),
                        "Amount": round(rng.uniform(1, 900), 2),
                        "Note": f"order {i}",
                    }
                    for i in range(orders)
                ],
            },
        },
        "views": {
            VIEW: {
                "from": ["Customers", "Orders"],
                "join": "Customers.Customer_ID = Orders.Customer_ID",
                "fields": fields[2:] + fields[:2] if orders_first else fields,
            }
        },
    }


def view_schema(client: CaspioClient) -> ObjectSchema:
    return build_schema(VIEW, "views", client.get_fields("views", VIEW))


def sync(client: CaspioClient, tmp_path: Path, name: str) -> str:
    path = str(tmp_path / f"{name}.duckdb")
    run_sync(
        destination=dlt.destinations.duckdb(credentials=path),
        pipeline_name=name,
        pipelines_dir=str(tmp_path / "pipelines"),
        client=client,
        tables=[VIEW],
        source_options={"page_size": PAGE},
    )
    return path


def loaded(path: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The view's loaded columns (dlt's own left out) and rows, sorted by pk_id."""
    with duckdb.connect(path, read_only=True) as conn:
        columns = [
            r[0]
            for r in conn.execute(
                "select column_name from information_schema.columns where table_schema = "
                "'caspio' and table_name = 'cust_orders' order by ordinal_position"
            ).fetchall()
            if not r[0].startswith("_dlt")
        ]
        names = ", ".join(columns)
        rows = conn.execute(f"select {names} from caspio.cust_orders").fetchall()
    return columns, sorted(rows, key=lambda r: r[0])


def where_of(entry: Any) -> str:
    return parse_qs(entry.query).get("q.where", [""])[0]


def range_of(entry: Any) -> str:
    """The k1 range a keyed call belongs to: its upper bound, or "open"."""
    upper = re.search(r"_PK_ID_Customers <= (\d+)", where_of(entry))
    return upper.group(1) if upper else "open"


def test_a_view_with_a_repeating_first_key_loads_exactly_in_concurrent_ranges(
    caspio_emulator_factory: Callable[..., Any], make_client: MakeClient, tmp_path: Path
) -> None:
    emu = caspio_emulator_factory(dataset=dataset(), latency_ms=20)
    client = make_client(emu, max_workers=4)
    price = price_view_read(client, view_schema(client), None, None, PAGE)
    reset_log(emu)
    path = sync(client, tmp_path, "view_ranges")

    oracle = expected_rows(emu, VIEW, TYPES)
    rows = len(oracle)
    assert rows == 2600
    columns, got = loaded(path)
    assert columns == ["pk_id", "name", "customer_id", "amount", "note"]  # no key columns
    assert got == sorted(oracle, key=lambda r: r[0])

    calls = record_calls(emu, VIEW)
    keyed = calls[1:]
    bounds = {range_of(e) for e in keyed}
    assert len(bounds) == 4 and "open" in bounds, bounds  # 3 bounded ranges and the open one
    assert math.ceil(rows / PAGE) <= len(calls) <= math.ceil(rows / PAGE) + len(bounds)
    assert len(calls) == price.page_calls, "plan prices the view as the run spends it"
    assert price.rows == rows
    # pages of different ranges were on the wire at the same time
    spans = [(e.time - e.duration_ms / 1000, e.time, range_of(e)) for e in keyed]
    assert any(
        a[0] < b[1] and b[0] < a[1] and a[2] != b[2] for a in spans for b in spans if a is not b
    ), "the ranges were read one after another"
    # a page continues a range after its last key tuple, not after its first key alone
    assert any("_PK_ID_Customers = " in where_of(e) for e in keyed)


def test_rows_written_during_the_read_never_double_nor_drop_an_old_row(
    caspio_emulator_factory: Callable[..., Any], make_client: MakeClient
) -> None:
    emu = caspio_emulator_factory(dataset=dataset())
    client = make_client(emu, max_workers=4)
    before = {r["PK_ID"] for r in emu.table_rows(VIEW)}
    reader = RecordReader(client, view_schema(client), page_size=PAGE)
    seen: list[str] = []
    gone: set[str] = set()
    for i, table in enumerate(reader.tables()):
        seen += table.column("PK_ID").to_pylist()
        if i == 2:
            # new orders of old customers land inside ranges, behind and ahead of their cursors
            for customer in (0, 20, 45, 70, 89):
                for _ in range(3):
                    emu.insert("Orders", {"Customer_ID": customer, "Amount": 1, "Note": "new"})
            doomed = sorted(before, key=lambda pk: int(pk.split(",")[1]))[::97]
            emu.delete("Orders", f"PK_ID IN ({', '.join(pk.split(',')[1] for pk in doomed)})")
            gone = set(doomed)
    assert len(seen) == len(set(seen)), "a row was read twice"
    missing = (before - gone) - set(seen)
    assert not missing, f"rows that existed all along were skipped: {sorted(missing)[:5]}"


def test_a_view_without_keys_is_read_by_its_string_pk_id_into_the_same_table(
    caspio_emulator_factory: Callable[..., Any], make_client: MakeClient, tmp_path: Path
) -> None:
    emu = caspio_emulator_factory(dataset=dataset(orders=700))
    keyed = loaded(sync(make_client(emu), tmp_path, "keyed"))
    view = emu.store.view(VIEW)
    assert view is not None
    view.scope.hidden = {}  # an older view: Caspio answers 404 FieldNotFound for its keys
    client = make_client(emu)
    price = price_view_read(client, view_schema(client), None, None, PAGE)
    reset_log(emu)
    plain = loaded(sync(client, tmp_path, "plain"))

    assert plain == keyed, "the keys change how a view is read, never what is loaded"
    calls = record_calls(emu, VIEW)
    refused, *pages = calls
    assert refused.status == 404 and "_PK_ID_" in refused.query
    assert all(e.status == 200 and "_PK_ID_" not in e.query for e in pages)
    assert len(pages) == math.ceil(700 / PAGE)
    assert price.page_calls == len(calls) and price.rows == 700


def test_plan_prices_ranges_that_end_on_a_full_page(
    caspio_emulator_factory: Callable[..., Any], make_client: MakeClient
) -> None:
    """Orders first: 850 rows, 50 a page, 4 ranges of exactly 200 rows after the first page.
    A range stops only on a short page, so each costs an empty page more: plan says so."""
    emu = caspio_emulator_factory(dataset=dataset(orders=850, orders_first=True))
    client = make_client(emu, max_workers=4)
    schema = view_schema(client)
    price = price_view_read(client, schema, None, None, PAGE)
    reset_log(emu)
    reader = RecordReader(client, schema, page_size=PAGE)
    assert sum(t.num_rows for t in reader.tables()) == 850
    assert isinstance(reader.pager, ViewKeysetReader) and len(reader.pager.ranges) == 4
    calls = record_calls(emu, VIEW)
    assert len(calls) == price.page_calls == math.ceil(850 / PAGE) + 4
    assert sum(1 for e in calls if e.status == 200) == len(calls)


@pytest.mark.parametrize("null_rows", [3, 40])
def test_the_composite_keyset_is_exact_over_null_keys(null_rows: int) -> None:
    """Outer joins give NULL keys, which SQL Server (like SQLite, used here) sorts first: every
    row is read exactly once through the first page, the ranges and their pages, including
    rows whose keys are all NULL and differ only by PK_ID."""
    rng = random.Random(null_rows)
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE v (_PK_ID_A INTEGER, _PK_ID_B INTEGER, PK_ID TEXT)")
    rows: list[tuple[int | None, int | None, str]] = [
        (None, rng.choice([None, rng.randrange(50)]), f"n{i}") for i in range(null_rows)
    ]
    rows += [
        (rng.randrange(1, 60), rng.choice([None, rng.randrange(9)]), f"r{i}") for i in range(400)
    ]
    conn.executemany("INSERT INTO v VALUES (?, ?, ?)", rows)
    keys = ViewKeys(("_PK_ID_A", "_PK_ID_B"))
    page_size = 7

    def page(lower: Any = None, upper: int | None = None) -> list[tuple[Any, ...]]:
        params = key_params(keys, page_size, "", None, lower, upper)
        where = params.get("q.where") or "1 = 1"
        sql = f"SELECT * FROM v WHERE {where} ORDER BY {params['q.orderBy']} LIMIT {page_size}"
        return conn.execute(sql).fetchall()

    first = page()
    got = list(first)
    ranges = split_ranges([r[0] for r in first], first[-1], len(rows), page_size, 4)
    assert (len(ranges) == 1) == (null_rows >= page_size)  # a NULL k1 cannot be split on
    for cursor in ranges:
        lower = cursor.lower
        while True:
            part = page(lower, cursor.upper)
            got += part
            if len(part) < page_size:
                break
            lower = part[-1]
    assert sorted(got, key=repr) == sorted(rows, key=repr)


def test_which_views_are_paged_by_keys(caspio_emulator: Any, make_client: MakeClient) -> None:
    client = make_client(caspio_emulator)
    fields = client.get_fields("views", "Customer_Orders")
    schema = build_schema("Customer_Orders", "views", fields)
    keys = view_keys(schema, None, None, 1000)
    assert keys is not None and keys.columns == ("_PK_ID_Orders", "_PK_ID_Customers", "PK_ID")
    no_sources = [{k: v for k, v in f.items() if k != "TableFieldName"} for f in fields]
    assert view_keys(build_schema("V", "views", no_sources), None, None, 1000) is None
    assert view_keys(build_schema("T", "tables", fields), None, None, 1000) is None
    # naming every field, the keys and the composite would pass Caspio's URI limit
    assert view_keys(schema, None, "Name LIKE '" + "x" * 1500 + "'", 1000) is None
