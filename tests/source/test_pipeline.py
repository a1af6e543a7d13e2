"""The source in a dlt pipeline into DuckDB: parity with the emulator value for value, the
call budget, incremental runs, schema changes, state and cost reporting."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import dlt
import duckdb
import pytest

from sources.caspio import CaspioClient, caspio, reset_token_providers
from tests.helpers import design
from tests.zone_oracle import expected_utc

from .conftest import credentials_for, reset_log, settled_log, token_calls

MakeClient = Callable[..., CaspioClient]
OBJECTS = ["Customers", "Products", "Orders", "Order_Items", "Customer_Orders"]


def make_pipeline(tmp_path: Path, name: str = "t") -> Any:
    return dlt.pipeline(
        name,
        destination=dlt.destinations.duckdb(str(tmp_path / f"{name}.duckdb")),
        pipelines_dir=str(tmp_path / "pipelines"),
        dataset_name="caspio",
    )


def run(pipeline: Any, emu: Any, client: CaspioClient, **kw: Any) -> Any:
    return pipeline.run(caspio(credentials=credentials_for(emu), client=client, **kw))


def query(tmp_path: Path, sql: str, name: str = "t") -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(tmp_path / f"{name}.duckdb"), read_only=True)
    try:
        return con.sql(sql).fetchall()
    finally:
        con.close()


def expected_value(field: dict[str, Any], value: Any) -> Any:
    """What a wire value must become in DuckDB (TIMESTAMPs by the independent zone oracle)."""
    if value is None:
        return None
    t = field["Type"]
    if t == "CURRENCY":
        return decimal.Decimal(str(value)).quantize(decimal.Decimal("0.0001"))
    if t == "DATE/TIME":
        return dt.datetime.fromisoformat(value)
    if t == "TIMESTAMP":
        return expected_utc(dt.datetime.fromisoformat(value), field.get("TimeZone"))
    if t.startswith("LIST-"):
        return value  # compared after json.loads
    if t == "NUMBER":
        return float(value)
    return value


def test_full_sync_equals_emulator_value_for_value(
    caspio_emulator: Any, make_client: MakeClient, tmp_path: Path
) -> None:
    emu = caspio_emulator
    client = make_client(emu)
    pipeline = make_pipeline(tmp_path)
    run(pipeline, emu, client)
    for obj in OBJECTS:
        kind: Literal["tables", "views"] = "views" if obj == "Customer_Orders" else "tables"
        fields = {f["Name"]: f for f in client.get_fields(kind, obj)}
        wire = emu.table_rows(obj)
        con = duckdb.connect(str(tmp_path / "t.duckdb"), read_only=True)
        con.execute("SET TimeZone = 'UTC'")
        table = obj.lower()
        cur = con.execute(f"SELECT * FROM caspio.{table} ORDER BY pk_id")
        names = [d[0] for d in cur.description]
        loaded = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        con.close()
        assert len(loaded) == len(wire), obj
        wire_sorted = sorted(wire, key=lambda r: str(r["PK_ID"]) if kind == "views" else r["PK_ID"])
        loaded_sorted = sorted(loaded, key=lambda r: r["pk_id"])
        for w, got in zip(wire_sorted, loaded_sorted, strict=True):
            assert got["pk_id"] == w["PK_ID"]
            for name, value in w.items():
                if name == "PK_ID":
                    continue
                field = fields[name]
                col = got[name.lower()]
                exp = expected_value(field, value)
                if field["Type"].startswith("LIST-") and col is not None:
                    col = json.loads(col)
                if isinstance(col, dt.datetime) and col.tzinfo is not None:
                    col = col.astimezone(dt.timezone.utc)
                assert type(col) is type(exp) and col == exp, (obj, w["PK_ID"], name, value, col)
        assert all(
            f["Type"] != "PASSWORD" or f["Name"].lower() not in loaded[0] for f in fields.values()
        )


def test_column_types_in_duckdb(
    caspio_emulator: Any, make_client: MakeClient, tmp_path: Path
) -> None:
    run(
        make_pipeline(tmp_path), caspio_emulator, make_client(caspio_emulator), tables=["Customers"]
    )
    types = dict(
        query(
            tmp_path,
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'caspio' AND table_name = 'customers'",
        )
    )
    assert types["pk_id"] == "BIGINT"
    assert types["customer_id"] == "BIGINT"
    assert types["credit_limit"] == "DECIMAL(19,4)"
    assert types["tags"] == "JSON"
    assert types["active"] == "BOOLEAN"
    assert types["signup_date"] == "TIMESTAMP"
    assert types["updated"] == "TIMESTAMP WITH TIME ZONE"
    assert "portal_password" not in types


def test_call_budget_full_then_incremental(
    caspio_emulator: Any, make_client: MakeClient, tmp_path: Path
) -> None:
    emu = caspio_emulator
    pipeline = make_pipeline(tmp_path)
    client = make_client(emu)
    client.list_tables()  # a valid cached token exists before the sync
    reset_token_providers()
    reset_log(emu)
    client = make_client(emu)
    info = run(pipeline, emu, client)
    log = settled_log(emu)
    sizes = {o: len(emu.table_rows(o)) for o in OBJECTS}
    budget = sum(math.ceil(n / 1000) for n in sizes.values()) + len(OBJECTS) + 2
    assert emu.calls <= budget, (emu.calls, budget)
    assert token_calls(emu) == 0
    assert client.stats.calls == emu.calls
    assert sum(1 for e in log if e.path.endswith("/fields")) == len(OBJECTS)
    # cost per object shows in dlt's own load info
    metrics = pipeline.last_trace.last_extract_info.metrics[info.loads_ids[0]][0]
    custom = {k: v.custom_metrics for k, v in metrics["resource_metrics"].items()}
    assert custom["order_items"]["caspio_record_calls"] == math.ceil(sizes["Order_Items"] / 1000)
    assert custom["order_items"]["caspio_rows"] == sizes["Order_Items"]

    # second run, nothing changed: per object its /fields (design changes) and one page
    # (+ 2 listing calls), no rows loaded
    reset_log(emu)
    client2 = make_client(emu)
    run(pipeline, emu, client2)
    assert emu.calls == 2 * len(OBJECTS) + 2
    assert client2.stats.by_call["fields"] == len(OBJECTS)
    assert client2.stats.rows == sizes["Products"], "only the cursor-less table is re-read"

    # named tables: no listing at all on an incremental run
    reset_log(emu)
    client3 = make_client(emu)
    run(pipeline, emu, client3, tables=["Customers", "Orders"])
    assert emu.calls == 4 and client3.stats.by_call["listing"] == 0


def test_incremental_picks_up_changes(
    caspio_emulator: Any, make_client: MakeClient, tmp_path: Path
) -> None:
    emu = caspio_emulator
    pipeline = make_pipeline(tmp_path)
    run(pipeline, emu, make_client(emu), tables=["Customers"])
    n = len(emu.table_rows("Customers"))
    emu.set_clock(None)
    changed = emu.update("Customers", "PK_ID <= 3", {"City": "Changed City"})
    assert changed == 3
    new_pk = emu.insert("Customers", {"Name": "Brand New", "City": "Nowhere"})
    client = make_client(emu)
    run(pipeline, emu, client, tables=["Customers"])
    assert client.stats.rows == 4
    rows = query(tmp_path, "SELECT pk_id, city FROM caspio.customers WHERE pk_id <= 3 ORDER BY 1")
    assert rows == [(1, "Changed City"), (2, "Changed City"), (3, "Changed City")]
    assert query(tmp_path, "SELECT count(*), count(DISTINCT pk_id) FROM caspio.customers") == [
        (n + 1, n + 1)
    ]
    assert query(tmp_path, f"SELECT name FROM caspio.customers WHERE pk_id = {new_pk}") == [
        ("Brand New",)
    ]
    state = pipeline.state["sources"]["caspio"]["resources"]["customers"]
    assert state["cursor"]["field"] == "Updated"
    assert set(state) >= {"kind", "fields", "cursor"}
    dumped = json.dumps(pipeline.state, default=str)
    for secret in client._tokens.secrets():  # client secret, access and refresh token
        assert secret not in dumped


def test_unknown_table_lists_what_exists(
    caspio_emulator: Any, make_client: MakeClient, tmp_path: Path
) -> None:
    with pytest.raises(Exception) as ei:
        run(make_pipeline(tmp_path), caspio_emulator, make_client(caspio_emulator), tables=["Nope"])
    assert "Unknown Caspio table or view 'Nope'" in str(ei.value)
    assert "Customers" in str(ei.value)
    with pytest.raises(Exception, match="'Zz\\*'"):
        caspio(
            credentials=credentials_for(caspio_emulator),
            client=make_client(caspio_emulator),
            tables=["Zz*"],
        )


def test_globs_and_table_options(
    caspio_emulator: Any, make_client: MakeClient, tmp_path: Path
) -> None:
    emu = caspio_emulator
    source = caspio(
        credentials=credentials_for(emu),
        client=make_client(emu),
        tables=["Order*"],
        table_options={
            "Orders": {"fields": ["Order_ID", "Total"], "cursor_field": False},
            "Order_Items": {"write_disposition": "append"},
        },
    )
    assert sorted(source.resources) == ["order_items", "orders"]
    pipeline = make_pipeline(tmp_path)
    pipeline.run(source)
    cols = [
        r[0]
        for r in query(
            tmp_path,
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema='caspio' AND table_name='orders'",
        )
    ]
    assert set(cols) - {"_dlt_load_id", "_dlt_id"} == {"pk_id", "order_id", "total"}
    tables = pipeline.default_schema.tables
    assert tables["orders"]["write_disposition"] == "replace"
    # a first run reads everything: nothing to merge with, so the table is replaced
    assert tables["order_items"]["write_disposition"] == "replace"
    # append by PK_ID: a second run reads only new rows
    new_pk = emu.insert("Order_Items", {"Order_ID": 1, "Quantity": 2})
    client = make_client(emu)
    pipeline.run(
        caspio(
            credentials=credentials_for(emu),
            client=client,
            tables=["Order_Items"],
            table_options={"Order_Items": {"write_disposition": "append"}},
        )
    )
    assert client.stats.rows == 1
    assert query(tmp_path, f"SELECT count(*) FROM caspio.order_items WHERE pk_id = {new_pk}") == [
        (1,)
    ]
    # ...and loads them as a delete-insert merge on PK_ID: idempotent if a load package is
    # replayed after a crash (tests/reliability/test_crash_and_quota.py)
    tables = pipeline.default_schema.tables
    assert tables["order_items"]["write_disposition"] == "merge"
    assert tables["order_items"].get("x-merge-strategy") == "delete-insert"
    assert query(tmp_path, "SELECT count(*) FROM caspio.order_items") == [
        (len(emu.table_rows("Order_Items")),)
    ]


def test_field_added_in_caspio_appears_as_column(
    caspio_emulator_factory: Callable[..., Any], make_client: MakeClient, tmp_path: Path
) -> None:
    dataset = {
        "tables": {
            "Notes": {
                "fields": [
                    {"Name": "Body", "Type": "STRING"},
                    {
                        "Name": "Updated",
                        "Type": "TIMESTAMP",
                        "OnInsert": True,
                        "OnUpdate": True,
                        "TimeZone": "UTC",
                    },
                ],
                "rows": [{"Body": "a"}, {"Body": "b"}],
            }
        }
    }
    emu = caspio_emulator_factory(dataset=dataset)
    pipeline = make_pipeline(tmp_path)
    run(pipeline, emu, make_client(emu), tables=["Notes"])
    # a field added in Caspio (Caspio's own design API), filled for one old row and a new one
    design(emu, "POST", "tables/Notes/fields", {"Name": "Priority", "Type": "INTEGER"})
    emu.set_clock(None)
    emu.update("Notes", "PK_ID = 2", {"Priority": 2})
    emu.insert("Notes", {"Body": "c", "Priority": 3})
    design(emu, "PUT", "tables/Notes/fields/Priority", {"Label": "relabelled"})
    emu.update("Notes", "PK_ID = 1", {"Priority": 1})
    client = make_client(emu)
    pipeline.run(caspio(credentials=credentials_for(emu), client=client, tables=["Notes"]))
    assert client.stats.by_call["fields"] == 1, "one /fields call per object and run"
    assert "field(s) added in Caspio: Priority" in client.stats.notes["Notes"][0]
    assert query(tmp_path, "SELECT body, priority FROM caspio.notes ORDER BY pk_id") == [
        ("a", 1),
        ("b", 2),
        ("c", 3),
    ]


def test_debug_logs_hold_no_secrets(
    caspio_emulator: Any,
    make_client: MakeClient,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    emu = caspio_emulator
    caplog.set_level(logging.DEBUG)
    client = make_client(emu)
    emu.script_faults(["500"])  # a retry is logged too
    run(make_pipeline(tmp_path), emu, client, tables=["Customers", "Products"])
    emu.expire_tokens()
    client.list_tables()  # a 401 replay and a refresh-token grant, logged at DEBUG
    assert "sources.caspio" in caplog.text or "GET /integrations" in caplog.text
    secrets = [emu.client_secret, *client._tokens.secrets()]
    assert len(secrets) >= 3
    for secret in secrets:
        assert secret not in caplog.text
    assert "Authorization" not in caplog.text
